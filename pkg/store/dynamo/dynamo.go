package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// API is the part of the DynamoDB client the store uses.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store is the DynamoDB store. Its methods are safe for concurrent use.
type Store struct {
	db    API
	table string

	maxOutboxBytes int // event JSON an outbox holds at most

	mu sync.Mutex
	// recentLens holds, per session and lease owner, the length of the
	// session's recent-ids list when this Store took the lease for owner, so
	// that the Ack releasing it can trim the list without reading it first.
	recentLens map[string]recentTrim
}

// recentTrim is what an Ack may trim of the recent-ids list: its first Trim
// ids and first TrimAt times, while the list still has at least Len ids.
type recentTrim struct{ Len, Trim, TrimAt int }

func (it *sessionItem) recentTrim(now time.Time) recentTrim {
	n := it.trimmable(now)
	return recentTrim{Len: len(it.Recent), Trim: n, TrimAt: max(n-(len(it.Recent)-len(it.RecentAt)), 0)}
}

var _ hitl.Store = (*Store)(nil)

// New returns a store on table, which must have the schema CreateTable makes.
func New(db API, table string) *Store {
	return &Store{db: db, table: table, maxOutboxBytes: maxOutboxBytes, recentLens: map[string]recentTrim{}}
}

// Tuning.
const (
	recentIDs      = 100       // event ids remembered per session, at least
	maxTrim        = 40        // recent ids removed by one write, to bound the expression
	maxOutboxBytes = 300 << 10 // event JSON per outbox, leaving room in the 400 KB item
	retention      = 30 * 24 * time.Hour
	convRetention  = 365 * 24 * time.Hour
	leaseRetention = 24 * time.Hour
	attempts       = 5 // tries of a write that lost a race before giving up
)

// Key prefixes and index partitions.
const (
	userPrefix    = "USER#"
	heldPrefix    = "HELD#"
	settingPrefix = "SETTING#"
	sessionPrefix = "SESSION#"
	convPrefix    = "CONV#"
	idemPrefix    = "IDEM#"
	leasePrefix   = "LEASE#"
	deadPrefix    = "DEAD#"

	sessionSK = "SESSION"

	dueOutbox   = "OUTBOX"  // gsi1pk of due outboxes
	deadLetters = "DEAD"    // gsi1pk of dead letters
	visitors    = "VISITOR" // gsi2pk of expiring visitor tokens
	idle        = "IDLE"    // gsi3pk of sessions with an idle deadline
)

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

func sessionKey(id string) map[string]types.AttributeValue { return key(sessionPrefix+id, sessionSK) }

// ts formats t so that string order is time order.
func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z")
}

func parseTS(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s) // written by ts; "" is the zero time
	return t
}

func ttl(t time.Time) int64 { return t.Unix() }

// idDigest shortens an event id for the recent list: 72 bits of its hash,
// which do not collide among a session's recent ids.
func idDigest(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// errNotHolder is returned when the caller does not hold the delivery lease
// it acts under.
var errNotHolder = hitl.Errorf(hitl.CodeConflict, "the delivery lease is not held by this owner")

// errContention is returned when a write kept losing races.
var errContention = errors.New("too many concurrent writes, try again")

// sessionItem is the session item; delivery state lives beside the session.
type sessionItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI2PK string `dynamodbav:"gsi2pk,omitempty"`
	GSI2SK string `dynamodbav:"gsi2sk,omitempty"`
	GSI3PK string `dynamodbav:"gsi3pk,omitempty"`
	GSI3SK string `dynamodbav:"gsi3sk,omitempty"`

	ID                     string            `dynamodbav:"id"`
	UserID                 string            `dynamodbav:"userId"`
	Provider               string            `dynamodbav:"provider"`
	Channel                string            `dynamodbav:"channel"`
	BotConversationID      string            `dynamodbav:"botConversationId,omitempty"`
	ProviderConversationID string            `dynamodbav:"providerConversationId,omitempty"`
	AltConversationIDs     []string          `dynamodbav:"altConversationIds,omitempty"`
	OpenedAt               string            `dynamodbav:"openedAt,omitempty"`
	Status                 hitl.Status       `dynamodbav:"status"`
	Agent                  *agentItem        `dynamodbav:"agent,omitempty"`
	Queue                  *hitl.Queue       `dynamodbav:"queue,omitempty"`
	AssignedAt             string            `dynamodbav:"assignedAt,omitempty"`
	FirstReplyAt           string            `dynamodbav:"firstReplyAt,omitempty"`
	Context                map[string]string `dynamodbav:"context,omitempty"` // while opening
	CloseReason            string            `dynamodbav:"closeReason,omitempty"`
	CreatedAt              string            `dynamodbav:"createdAt"`
	UpdatedAt              string            `dynamodbav:"updatedAt"`
	ClosedAt               string            `dynamodbav:"closedAt,omitempty"`
	VisitorID              string            `dynamodbav:"visitorId,omitempty"`
	VisitorToken           string            `dynamodbav:"visitorToken,omitempty"`
	VisitorTokenExpiresAt  string            `dynamodbav:"visitorTokenExpiresAt,omitempty"`
	VisitorCookies         []string          `dynamodbav:"visitorCookies,omitempty"`
	Title                  string            `dynamodbav:"title,omitempty"`
	Description            string            `dynamodbav:"description,omitempty"`
	Transcript             []string          `dynamodbav:"transcript,omitempty"`      // entry JSON, oldest first, while pending
	TranscriptBytes        int               `dynamodbav:"transcriptBytes,omitempty"` // length of the transcript JSON
	IdleUntil              string            `dynamodbav:"idleUntil,omitempty"`

	Outbox      []string   `dynamodbav:"outbox,omitempty"`      // event JSON, oldest first; absent when empty
	OutboxBytes int        `dynamodbav:"outboxBytes,omitempty"` // length of the outbox JSON
	Recent      []string   `dynamodbav:"recent,omitempty"`      // idDigest of recent event ids, oldest first
	RecentAt    []int64    `dynamodbav:"recentAt,omitempty"`    // when each of Recent was recorded (Unix seconds)
	LeaseOwner  string     `dynamodbav:"leaseOwner,omitempty"`
	LeaseUntil  string     `dynamodbav:"leaseUntil,omitempty"`
	Retry       *retryItem `dynamodbav:"retry,omitempty"`
}

type agentItem struct {
	ID        string `dynamodbav:"id"`
	Name      string `dynamodbav:"name,omitempty"`
	AvatarURL string `dynamodbav:"avatarUrl,omitempty"`
}

type retryItem struct {
	At       string `dynamodbav:"at"`
	Attempts int    `dynamodbav:"attempts"`
	Since    string `dynamodbav:"since"`
}

// Attribute names used in expressions.
const (
	attrStatus      = "status"
	attrOutbox      = "outbox"
	attrOutboxBytes = "outboxBytes"
	attrRecent      = "recent"
	attrRecentAt    = "recentAt"
	attrLeaseOwner  = "leaseOwner"
	attrLeaseUntil  = "leaseUntil"
	attrRetry       = "retry"
	attrExpiresAt   = "expiresAt"
	attrTranscript  = "transcript"
	attrTransBytes  = "transcriptBytes"
	attrIdleUntil   = "idleUntil"
	attrUpdatedAt   = "updatedAt"
)

func newSessionItem(s hitl.Session) (sessionItem, error) {
	it := sessionItem{
		PK: sessionPrefix + s.ID, SK: sessionSK,
		ID: s.ID, UserID: s.UserID, Provider: s.Provider, Channel: s.Channel,
		BotConversationID: s.BotConversationID, ProviderConversationID: s.ProviderConversationID,
		Status: s.Status, Agent: newAgentItem(s.Agent), CloseReason: s.CloseReason,
		CreatedAt: ts(s.CreatedAt), UpdatedAt: ts(s.UpdatedAt), ClosedAt: ts(s.ClosedAt),
		VisitorID: s.Visitor.ID, VisitorToken: s.Visitor.Token,
		VisitorTokenExpiresAt: ts(s.Visitor.TokenExpiresAt), VisitorCookies: s.Visitor.Cookies,
		Title: s.Title, Description: s.Description, IdleUntil: ts(s.IdleUntil),
		Queue: s.Queue, AssignedAt: ts(s.AssignedAt), FirstReplyAt: ts(s.FirstReplyAt), Context: s.Context,
	}
	for _, e := range s.Transcript {
		raw, err := json.Marshal(e)
		if err != nil {
			return sessionItem{}, fmt.Errorf("encode transcript entry: %w", err)
		}
		it.Transcript = append(it.Transcript, string(raw))
	}
	it.TranscriptBytes = jsonBytes(it.Transcript)
	if !s.Closed() && it.VisitorTokenExpiresAt != "" {
		it.GSI2PK, it.GSI2SK = visitors, it.VisitorTokenExpiresAt
	}
	if !s.Closed() && it.IdleUntil != "" {
		it.GSI3PK, it.GSI3SK = idle, it.IdleUntil
	}
	return it, nil
}

func newAgentItem(a *hitl.Agent) *agentItem {
	if a == nil {
		return nil
	}
	return &agentItem{ID: a.ID, Name: a.Name, AvatarURL: a.AvatarURL}
}

func (it *sessionItem) session() (hitl.Session, error) {
	s := hitl.Session{
		ID: it.ID, UserID: it.UserID, Provider: it.Provider, Channel: it.Channel,
		BotConversationID: it.BotConversationID, ProviderConversationID: it.ProviderConversationID,
		AltConversationIDs: it.AltConversationIDs, Status: it.Status, CloseReason: it.CloseReason,
		CreatedAt: parseTS(it.CreatedAt), OpenedAt: parseTS(it.OpenedAt), UpdatedAt: parseTS(it.UpdatedAt), ClosedAt: parseTS(it.ClosedAt),
		Visitor: hitl.Visitor{
			ID: it.VisitorID, Token: it.VisitorToken,
			TokenExpiresAt: parseTS(it.VisitorTokenExpiresAt), Cookies: it.VisitorCookies,
		},
		Title: it.Title, Description: it.Description, IdleUntil: parseTS(it.IdleUntil),
		Queue: it.Queue, AssignedAt: parseTS(it.AssignedAt), FirstReplyAt: parseTS(it.FirstReplyAt), Context: it.Context,
	}
	if it.Agent != nil {
		s.Agent = &hitl.Agent{ID: it.Agent.ID, Name: it.Agent.Name, AvatarURL: it.Agent.AvatarURL}
	}
	for _, raw := range it.Transcript {
		var e hitl.TranscriptEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return hitl.Session{}, fmt.Errorf("decode transcript of session %s: %w", it.ID, err)
		}
		s.Transcript = append(s.Transcript, e)
	}
	return s, nil
}

// pending decodes the outbox; the events take the session's routing fields.
func (it *sessionItem) pending() ([]hitl.Event, error) {
	return decodeEvents(it.Outbox, it.Channel, it.UserID)
}

func (it *sessionItem) retry() hitl.Retry {
	if it.Retry == nil {
		return hitl.Retry{}
	}
	return hitl.Retry{At: parseTS(it.Retry.At), Attempts: it.Retry.Attempts, Since: parseTS(it.Retry.Since)}
}

func decodeEvents(raw []string, channel, userID string) ([]hitl.Event, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	events := make([]hitl.Event, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal([]byte(r), &events[i]); err != nil {
			return nil, fmt.Errorf("decode stored event: %w", err)
		}
		events[i].Channel, events[i].UserID = channel, userID
	}
	return events, nil
}

func jsonBytes(raw []string) int {
	n := 0
	for _, r := range raw {
		n += len(r)
	}
	return n
}

// itemTooLarge reports whether err is DynamoDB refusing to grow an item past
// its size limit.
func itemTooLarge(err error) bool {
	apiErr, ok := errors.AsType[smithy.APIError](err)
	return ok && apiErr.ErrorCode() == "ValidationException" && strings.Contains(apiErr.ErrorMessage(), "Item size")
}

// getSessionItem reads a session item; found is false when there is none.
func (s *Store) getSessionItem(ctx context.Context, id string) (it sessionItem, found bool, err error) {
	found, err = s.getItem(ctx, sessionKey(id), &it)
	return it, found, err
}

// mustGetSessionItem reads a session item, or returns hitl.ErrNotFound.
func (s *Store) mustGetSessionItem(ctx context.Context, id string) (sessionItem, error) {
	it, found, err := s.getSessionItem(ctx, id)
	if err == nil && !found {
		err = fmt.Errorf("session %s: %w", id, hitl.ErrNotFound)
	}
	return it, err
}

// update runs an UpdateItem on the item at k. ok is false when cond
// failed; old is then the item as it was, nil if there was none.
func (s *Store) update(ctx context.Context, k map[string]types.AttributeValue, up expression.UpdateBuilder, cond expression.ConditionBuilder, returnNew bool) (item, old map[string]types.AttributeValue, ok bool, err error) {
	b := expression.NewBuilder().WithUpdate(up)
	if cond.IsSet() {
		b = b.WithCondition(cond)
	}
	expr, err := b.Build()
	if err != nil {
		return nil, nil, false, fmt.Errorf("build update expression: %w", err)
	}
	in := &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: k,
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if returnNew {
		in.ReturnValues = types.ReturnValueAllNew
	}
	out, err := s.db.UpdateItem(ctx, in)
	if failed, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
		return nil, failed.Item, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	return out.Attributes, nil, true, nil
}

// cancelReasons returns the reasons of a cancelled transaction, one per
// action, or nil if err is not a cancellation.
func cancelReasons(err error) []types.CancellationReason {
	if cancelled, ok := errors.AsType[*types.TransactionCanceledException](err); ok {
		return cancelled.CancellationReasons
	}
	return nil
}

// failedAt reports whether action i of a cancelled transaction failed its
// condition (rather than, say, conflicting with another transaction).
func failedAt(reasons []types.CancellationReason, i int) bool {
	return i < len(reasons) && aws.ToString(reasons[i].Code) == conditionFailed
}

const conditionFailed = "ConditionalCheckFailed"

// backoff waits before the next try of a write that lost a race.
func backoff(ctx context.Context, attempt int) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		return nil
	}
}

// trimmable returns how many of the item's first recent ids may go: those
// beyond the last recentIDs that were recorded more than hitl.DedupeSpan
// before now (ids from before recentAt existed count as old).
func (it *sessionItem) trimmable(now time.Time) int {
	old := len(it.Recent) - len(it.RecentAt)
	n := 0
	for n < len(it.Recent)-recentIDs && n < maxTrim &&
		(n < old || now.Sub(time.Unix(it.RecentAt[n-old], 0)) > hitl.DedupeSpan) {
		n++
	}
	return n
}

// leaseKey keys recentLens.
func leaseKey(sessionID, owner string) string { return sessionID + "\x00" + owner }

// rememberRecent notes, when owner took the lease, the recent list's length
// and how many of its first ids the Ack may trim.
func (s *Store) rememberRecent(sessionID, owner string, n recentTrim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recentLens) >= 10000 { // leases lost without an Ack; the notes are only hints
		clear(s.recentLens)
	}
	s.recentLens[leaseKey(sessionID, owner)] = n
}

// recalledRecent returns and forgets what rememberRecent noted, zero if nothing.
func (s *Store) recalledRecent(sessionID, owner string) recentTrim {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := leaseKey(sessionID, owner)
	n := s.recentLens[k]
	delete(s.recentLens, k)
	return n
}
