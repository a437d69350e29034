package dynamo

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
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
	// leases holds, per session and lease owner, the delivery item as this
	// Store saw it when it took the lease, so that the Ack releasing it can
	// spill the remembered event ids without reading the item first.
	leases map[string]deliveryItem
	// spilled holds, per session, the spilled event ids this Store knows
	// (dedupe.go).
	spilled map[string]*spillCache
}

var _ hitl.Store = (*Store)(nil)

// New returns a store on table, which must have the schema CreateTable makes.
func New(db API, table string) *Store {
	return &Store{db: db, table: table, maxOutboxBytes: maxOutboxBytes, leases: map[string]deliveryItem{}, spilled: map[string]*spillCache{}}
}

// Tuning.
const (
	spillAt        = 24        // remembered event ids that make the lease holder spill them (dedupe.go)
	maxOutboxBytes = 300 << 10 // event JSON per outbox, leaving room in the 400 KB item
	deliveryShards = 4         // partitions of the delivery items, which the sweep reads
	retention      = 30 * 24 * time.Hour
	convRetention  = 365 * 24 * time.Hour
	leaseRetention = 24 * time.Hour
	attempts       = 5 // tries of a write that lost a race before giving up
)

// Key prefixes and index partitions.
const (
	userPrefix     = "USER#"
	heldPrefix     = "HELD#"
	settingPrefix  = "SETTING#"
	sessionPrefix  = "SESSION#"
	deliveryPrefix = "OUTBOX#"
	convPrefix     = "CONV#"
	idemPrefix     = "IDEM#"
	leasePrefix    = "LEASE#"
	deadPrefix     = "DEAD#"
	spillPrefix    = "SPILL#"
	latePrefix     = "LATE#" // sk of a late event's marker, in the session's partition

	sessionSK = "SESSION"

	deadLetters = "DEAD"    // gsi1pk of dead letters
	visitors    = "VISITOR" // gsi2pk of expiring visitor credentials
	idle        = "IDLE"    // gsi3pk of sessions with an idle deadline
)

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

func sessionKey(id string) map[string]types.AttributeValue { return key(sessionPrefix+id, sessionSK) }

// deliveryPK is the partition of a session's delivery item: one of
// deliveryShards, by a hash of the session id.
func deliveryPK(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("%s%d", deliveryPrefix, h.Sum32()%deliveryShards)
}

func deliveryKey(id string) map[string]types.AttributeValue { return key(deliveryPK(id), id) }

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

// idDigest shortens an event id for the remembered ids: 72 bits of its
// hash, which do not collide among a session's recent ids.
func idDigest(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// errNotHolder is returned when the caller does not hold the delivery lease
// it acts under.
var errNotHolder = hitl.Errorf(hitl.CodeConflict, "the delivery lease is not held by this owner")

// errContention is returned when a write kept losing races.
var errContention = errors.New("too many concurrent writes, try again")

// sessionItem is the session item: what changes with the session's state,
// not with each event (deliveryItem).
type sessionItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI2PK string `dynamodbav:"gsi2pk,omitempty"`
	GSI2SK string `dynamodbav:"gsi2sk,omitempty"`

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
	Context                map[string]string `dynamodbav:"context,omitempty"` // while opening
	CloseReason            string            `dynamodbav:"closeReason,omitempty"`
	CloseNote              string            `dynamodbav:"closeNote,omitempty"`
	CreatedAt              string            `dynamodbav:"createdAt"`
	UpdatedAt              string            `dynamodbav:"updatedAt"`
	ClosedAt               string            `dynamodbav:"closedAt,omitempty"`
	VisitorID              string            `dynamodbav:"visitorId,omitempty"`
	VisitorCredentials     []byte            `dynamodbav:"visitorCredentials,omitempty"`
	VisitorExpireAt        string            `dynamodbav:"visitorCredentialsExpireAt,omitempty"`
	Title                  string            `dynamodbav:"title,omitempty"`
	Description            string            `dynamodbav:"description,omitempty"`
	Transcript             []string          `dynamodbav:"transcript,omitempty"`      // entry JSON, oldest first, while pending
	TranscriptBytes        int               `dynamodbav:"transcriptBytes,omitempty"` // length of the transcript JSON

	// Kept by the delivery item while the session is open; copied here when
	// it closes.
	FirstReplyAt string `dynamodbav:"firstReplyAt,omitempty"`
	IdleUntil    string `dynamodbav:"idleUntil,omitempty"`

	legacyVisitor
}

// legacyVisitor holds the visitor attributes of session items written
// before visitor credentials were opaque: LiveChat's customer token, its
// expiry and its identity cookies. visitor reads them once into the new
// shape, and setVisitor removes them; they may go when no session opened
// before that change is still open.
type legacyVisitor struct {
	Token          string   `dynamodbav:"visitorToken,omitempty"`
	TokenExpiresAt string   `dynamodbav:"visitorTokenExpiresAt,omitempty"`
	Cookies        []string `dynamodbav:"visitorCookies,omitempty"`
}

// legacyAttrs are legacyVisitor's attribute names.
var legacyAttrs = []string{"visitorToken", "visitorTokenExpiresAt", "visitorCookies"}

// visitor is the session's visitor, from a legacy item too: its token and
// cookies become the credentials in the layout LiveChat encodes them in
// (pkg/livechat, credentials).
func (it *sessionItem) visitor() (hitl.Visitor, error) {
	v := hitl.Visitor{ID: it.VisitorID, Credentials: it.VisitorCredentials, CredentialsExpireAt: parseTS(it.VisitorExpireAt)}
	if len(v.Credentials) > 0 || it.Token == "" {
		return v, nil
	}
	creds, err := json.Marshal(struct {
		Token   string   `json:"token"`
		Cookies []string `json:"cookies,omitempty"`
	}{it.Token, it.Cookies})
	if err != nil {
		return hitl.Visitor{}, fmt.Errorf("convert the legacy visitor of session %s: %w", it.ID, err)
	}
	v.Credentials, v.CredentialsExpireAt = creds, parseTS(it.TokenExpiresAt)
	return v, nil
}

// deliveryItem is a session's delivery state and what every event changes:
// a small item of its own, so that an event rewrites neither the session
// item (visitor credentials, title, ...) nor an index. Its attribute names
// are short because every event pays for them.
type deliveryItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"` // the session id
	GSI3PK string `dynamodbav:"gsi3pk,omitempty"`
	GSI3SK string `dynamodbav:"gsi3sk,omitempty"`

	Channel     string     `dynamodbav:"ch,omitempty"`  // the session's, for the events read back
	UserID      string     `dynamodbav:"uid,omitempty"` // likewise
	Outbox      []string   `dynamodbav:"q,omitempty"`   // event JSON, oldest first; absent when empty
	OutboxBytes int        `dynamodbav:"qb,omitempty"`  // length of the outbox JSON
	LeaseOwner  string     `dynamodbav:"lo,omitempty"`
	LeaseUntil  string     `dynamodbav:"lu,omitempty"`
	Due         string     `dynamodbav:"due,omitempty"` // when a pending outbox is due; LeaseUntil when absent
	Retry       *retryItem `dynamodbav:"retry,omitempty"`
	Recent      []string   `dynamodbav:"ids,stringset,omitempty"` // idDigest of the ids recorded since the last spill
	Spills      int64      `dynamodbav:"sg,omitempty"`            // spills so far (dedupe.go)
	SpillUntil  string     `dynamodbav:"su,omitempty"`            // when the ids of the last spill may be forgotten
	Closed      bool       `dynamodbav:"closed,omitempty"`

	// The session's fields that events change, while it is open.
	At           string `dynamodbav:"at,omitempty"` // the last event's time: the session's UpdatedAt if later
	FirstReplyAt string `dynamodbav:"fr,omitempty"`
	IdleUntil    string `dynamodbav:"idle,omitempty"`
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
	attrStatus       = "status"
	attrOutbox       = "q"
	attrOutboxBytes  = "qb"
	attrLeaseOwner   = "lo"
	attrLeaseUntil   = "lu"
	attrDue          = "due"
	attrRetry        = "retry"
	attrRecent       = "ids"
	attrSpills       = "sg"
	attrSpillUntil   = "su"
	attrClosed       = "closed"
	attrAt           = "at"
	attrFirstReply   = "fr"
	attrIdle         = "idle"
	attrChannel      = "ch"
	attrUserID       = "uid"
	attrExpiresAt    = "expiresAt"
	attrTranscript   = "transcript"
	attrTransBytes   = "transcriptBytes"
	attrUpdatedAt    = "updatedAt"
	attrSessionIdle  = "idleUntil"
	attrSessionReply = "firstReplyAt"
)

func newSessionItem(s hitl.Session) (sessionItem, error) {
	it := sessionItem{
		PK: sessionPrefix + s.ID, SK: sessionSK,
		ID: s.ID, UserID: s.UserID, Provider: s.Provider, Channel: s.Channel,
		BotConversationID: s.BotConversationID, ProviderConversationID: s.ProviderConversationID,
		Status: s.Status, Agent: newAgentItem(s.Agent), CloseReason: s.CloseReason,
		CreatedAt: ts(s.CreatedAt), UpdatedAt: ts(s.UpdatedAt), ClosedAt: ts(s.ClosedAt),
		VisitorID: s.Visitor.ID, VisitorCredentials: s.Visitor.Credentials, VisitorExpireAt: ts(s.Visitor.CredentialsExpireAt),
		Title: s.Title, Description: s.Description,
		Queue: s.Queue, AssignedAt: ts(s.AssignedAt), Context: s.Context,
	}
	for _, e := range s.Transcript {
		raw, err := json.Marshal(e)
		if err != nil {
			return sessionItem{}, fmt.Errorf("encode transcript entry: %w", err)
		}
		it.Transcript = append(it.Transcript, string(raw))
	}
	it.TranscriptBytes = jsonBytes(it.Transcript)
	if !s.Closed() && it.VisitorExpireAt != "" {
		it.GSI2PK, it.GSI2SK = visitors, it.VisitorExpireAt
	}
	if s.Closed() {
		it.FirstReplyAt, it.IdleUntil = ts(s.FirstReplyAt), ts(s.IdleUntil)
	}
	return it, nil
}

// newDeliveryItem is the delivery item of a new session.
func newDeliveryItem(s hitl.Session) deliveryItem {
	d := deliveryItem{PK: deliveryPK(s.ID), SK: s.ID, Channel: s.Channel, UserID: s.UserID, Closed: s.Closed()}
	if !s.Closed() {
		d.FirstReplyAt, d.IdleUntil = ts(s.FirstReplyAt), ts(s.IdleUntil)
		if d.IdleUntil != "" {
			d.GSI3PK, d.GSI3SK = idle, d.IdleUntil
		}
	}
	return d
}

func newAgentItem(a *hitl.Agent) *agentItem {
	if a == nil {
		return nil
	}
	return &agentItem{ID: a.ID, Name: a.Name, AvatarURL: a.AvatarURL}
}

// session is the session the items hold; d is nil when the session has no
// delivery item (closed and delivered).
func (it *sessionItem) session(d *deliveryItem) (hitl.Session, error) {
	v, err := it.visitor()
	if err != nil {
		return hitl.Session{}, err
	}
	s := hitl.Session{
		ID: it.ID, UserID: it.UserID, Provider: it.Provider, Channel: it.Channel,
		BotConversationID: it.BotConversationID, ProviderConversationID: it.ProviderConversationID,
		AltConversationIDs: it.AltConversationIDs, Status: it.Status, CloseReason: it.CloseReason, CloseNote: it.CloseNote,
		CreatedAt: parseTS(it.CreatedAt), OpenedAt: parseTS(it.OpenedAt), UpdatedAt: parseTS(it.UpdatedAt), ClosedAt: parseTS(it.ClosedAt),
		Visitor: v,
		Title:   it.Title, Description: it.Description, IdleUntil: parseTS(it.IdleUntil),
		Queue: it.Queue, AssignedAt: parseTS(it.AssignedAt), FirstReplyAt: parseTS(it.FirstReplyAt), Context: it.Context,
	}
	if d != nil && !d.Closed {
		s.FirstReplyAt, s.IdleUntil = parseTS(d.FirstReplyAt), parseTS(d.IdleUntil)
	}
	if d != nil && d.At > it.UpdatedAt {
		s.UpdatedAt = parseTS(d.At)
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
func (d *deliveryItem) pending() ([]hitl.Event, error) {
	return decodeEvents(d.Outbox, d.Channel, d.UserID)
}

func (d *deliveryItem) retry() hitl.Retry {
	if d.Retry == nil {
		return hitl.Retry{}
	}
	return hitl.Retry{At: parseTS(d.Retry.At), Attempts: d.Retry.Attempts, Since: parseTS(d.Retry.Since)}
}

// due is when a pending outbox is due for an attempt.
func (d *deliveryItem) due() string { return cmp.Or(d.Due, d.LeaseUntil) }

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

// existingSessionItem reads a session item, or returns hitl.ErrNotFound.
func (s *Store) existingSessionItem(ctx context.Context, id string) (sessionItem, error) {
	it, found, err := s.getSessionItem(ctx, id)
	if err == nil && !found {
		err = fmt.Errorf("session %s: %w", id, hitl.ErrNotFound)
	}
	return it, err
}

// getDelivery reads a delivery item; found is false when there is none.
func (s *Store) getDelivery(ctx context.Context, id string) (d deliveryItem, found bool, err error) {
	found, err = s.getItem(ctx, deliveryKey(id), &d)
	return d, found, err
}

// sessions reads the sessions of ids, both items of each in one
// BatchGetItem, in the order of ids; missing sessions are left out.
func (s *Store) sessions(ctx context.Context, ids []string) ([]hitl.Session, error) {
	keys := make([]map[string]types.AttributeValue, 0, 2*len(ids))
	for _, id := range ids {
		keys = append(keys, sessionKey(id), deliveryKey(id))
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]hitl.Session, 0, len(ids))
	for _, id := range ids {
		raw, ok := items[itemID(sessionKey(id))]
		if !ok {
			continue
		}
		var it sessionItem
		if err := attributevalue.UnmarshalMap(raw, &it); err != nil {
			return nil, fmt.Errorf("decode session item: %w", err)
		}
		var d *deliveryItem
		if raw, ok := items[itemID(deliveryKey(id))]; ok {
			d = &deliveryItem{}
			if err := attributevalue.UnmarshalMap(raw, d); err != nil {
				return nil, fmt.Errorf("decode delivery item: %w", err)
			}
		}
		sess, err := it.session(d)
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	return out, nil
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

// updateAction is an UpdateItem as a transaction action.
func (s *Store) updateAction(k map[string]types.AttributeValue, up expression.UpdateBuilder, cond expression.ConditionBuilder) (types.TransactWriteItem, error) {
	b := expression.NewBuilder().WithUpdate(up)
	if cond.IsSet() {
		b = b.WithCondition(cond)
	}
	expr, err := b.Build()
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("build update expression: %w", err)
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName: &s.table, Key: k, UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}, nil
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

// leaseKey keys Store.leases.
func leaseKey(sessionID, owner string) string { return sessionID + "\x00" + owner }

// rememberLease notes the delivery item as owner took its lease.
func (s *Store) rememberLease(sessionID, owner string, d deliveryItem) {
	d.Outbox = nil // not needed, and possibly large
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.leases) >= 10000 { // leases lost without an Ack; the notes are only hints
		clear(s.leases)
	}
	s.leases[leaseKey(sessionID, owner)] = d
}

// recallLease returns and forgets what rememberLease noted.
func (s *Store) recallLease(sessionID, owner string) (deliveryItem, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := leaseKey(sessionID, owner)
	d, ok := s.leases[k]
	delete(s.leases, k)
	return d, ok
}

// query reads every item expr selects (a key condition, and optionally a
// filter and a projection) and decodes them as T; consistent reads what
// every write before it wrote, at twice the read units.
func query[T any](ctx context.Context, s *Store, expr expression.Expression, consistent bool) ([]T, error) {
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName: &s.table, KeyConditionExpression: expr.KeyCondition(), FilterExpression: expr.Filter(),
		ProjectionExpression: expr.Projection(), ConsistentRead: aws.Bool(consistent),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	var out []T
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		var items []T
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &items); err != nil {
			return nil, fmt.Errorf("decode items: %w", err)
		}
		out = append(out, items...)
	}
	return out, nil
}

// deliveryItems reads the delivery items of every shard that filter keeps,
// with the attributes of projection only: one query per shard, all at once.
func (s *Store) deliveryItems(ctx context.Context, filter expression.ConditionBuilder, projection expression.ProjectionBuilder) ([]deliveryItem, error) {
	ctx, cancel := context.WithCancel(ctx) // the first failure ends the others
	defer cancel()
	var (
		wg     sync.WaitGroup
		shards [deliveryShards][]deliveryItem
		failed sync.Once
		first  error
	)
	for shard := range deliveryShards {
		wg.Go(func() {
			expr, err := expression.NewBuilder().
				WithKeyCondition(expression.Key("pk").Equal(value(fmt.Sprintf("%s%d", deliveryPrefix, shard)))).
				WithFilter(filter).WithProjection(projection).Build()
			if err == nil {
				// The sweep and the operator's list can afford to lag a little.
				shards[shard], err = query[deliveryItem](ctx, s, expr, false)
			}
			if err != nil {
				failed.Do(func() { first = err; cancel() })
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return slices.Concat(shards[:]...), nil
}
