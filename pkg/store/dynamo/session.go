package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

var (
	name  = expression.Name
	value = expression.Value
)

// notExists is the condition of a create.
var notExists = aws.String("attribute_not_exists(pk)")

type userItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	ID         string `dynamodbav:"id"`
	Name       string `dynamodbav:"name"`
	Email      string `dynamodbav:"email,omitempty"`
	Phone      string `dynamodbav:"phone,omitempty"`
	PictureURL string `dynamodbav:"pictureUrl,omitempty"`
	ExternalID string `dynamodbav:"externalId,omitempty"`
	CreatedAt  string `dynamodbav:"createdAt"`
}

const userSK = "USER"

func (s *Store) CreateUser(ctx context.Context, u hitl.User) error {
	item, err := attributevalue.MarshalMap(userItem{
		PK: userPrefix + u.ID, SK: userSK, ID: u.ID, Name: u.Name, Email: u.Email, Phone: u.Phone,
		PictureURL: u.PictureURL, ExternalID: u.ExternalID, CreatedAt: ts(u.CreatedAt),
	})
	if err == nil {
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item, ConditionExpression: notExists})
	}
	if _, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
		err = hitl.ErrExists
	}
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.ID, err)
	}
	return nil
}

func (s *Store) GetUser(ctx context.Context, id string) (hitl.User, error) {
	var it userItem
	found, err := s.getItem(ctx, key(userPrefix+id, userSK), &it)
	if err == nil && !found {
		err = hitl.ErrNotFound
	}
	if err != nil {
		return hitl.User{}, fmt.Errorf("get user %s: %w", id, err)
	}
	return hitl.User{
		ID: it.ID, Name: it.Name, Email: it.Email, Phone: it.Phone, PictureURL: it.PictureURL,
		ExternalID: it.ExternalID, CreatedAt: parseTS(it.CreatedAt),
	}, nil
}

// getItem reads the item at k into v; found is false when there is none.
func (s *Store) getItem(ctx context.Context, k map[string]types.AttributeValue, v any) (found bool, err error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: k, ConsistentRead: aws.Bool(true)})
	if err != nil || out.Item == nil {
		return false, err
	}
	if err := attributevalue.UnmarshalMap(out.Item, v); err != nil {
		return false, fmt.Errorf("decode item %v: %w", k["pk"], err)
	}
	return true, nil
}

type idemItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	SessionID string `dynamodbav:"sessionId"`
	ExpiresAt int64  `dynamodbav:"expiresAt"`
}

const idemSK = "IDEM"

func (s *Store) CreateSession(ctx context.Context, sess hitl.Session, idempotencyKey string) (hitl.Session, error) {
	first, err := s.createSession(ctx, sess, idempotencyKey)
	switch {
	case errors.Is(err, hitl.ErrExists) && first.ID != "":
		return first, fmt.Errorf("create session %s: idempotency key already used by session %s: %w", sess.ID, first.ID, err)
	case err != nil:
		return hitl.Session{}, fmt.Errorf("create session %s: %w", sess.ID, err)
	}
	return sess, nil
}

// createSession stores sess, its delivery item and its idempotency key, or
// returns the key's session and hitl.ErrExists.
func (s *Store) createSession(ctx context.Context, sess hitl.Session, idempotencyKey string) (hitl.Session, error) {
	it, err := newSessionItem(sess)
	if err != nil {
		return hitl.Session{}, err
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return hitl.Session{}, err
	}
	delivery, err := attributevalue.MarshalMap(newDeliveryItem(sess))
	if err != nil {
		return hitl.Session{}, err
	}
	actions := []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.table, Item: item, ConditionExpression: notExists}},
		{Put: &types.Put{TableName: &s.table, Item: delivery, ConditionExpression: notExists}},
	}
	if idempotencyKey != "" {
		idem, err := attributevalue.MarshalMap(idemItem{
			PK: idemPrefix + idempotencyKey, SK: idemSK, SessionID: sess.ID, ExpiresAt: ttl(sess.CreatedAt.Add(retention)),
		})
		if err != nil {
			return hitl.Session{}, err
		}
		actions = append(actions, types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: idem, ConditionExpression: notExists}})
	}
	for attempt := range attempts {
		_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: actions})
		reasons := cancelReasons(err)
		switch {
		case reasons == nil:
			return hitl.Session{}, err
		case failedAt(reasons, 2):
			first, err := s.sessionOfKey(ctx, idempotencyKey)
			if !errors.Is(err, hitl.ErrNotFound) {
				return first, err
			}
			// The key was freed meanwhile: try again.
		case failedAt(reasons, 0), failedAt(reasons, 1):
			return hitl.Session{}, hitl.ErrExists
		}
		// Otherwise a concurrent transaction on the same items won: try again.
		if err := backoff(ctx, attempt); err != nil {
			return hitl.Session{}, err
		}
	}
	return hitl.Session{}, errContention
}

// sessionOfKey returns the session an idempotency key names, with
// hitl.ErrExists, or hitl.ErrNotFound.
func (s *Store) sessionOfKey(ctx context.Context, idempotencyKey string) (hitl.Session, error) {
	var idem idemItem
	found, err := s.getItem(ctx, key(idemPrefix+idempotencyKey, idemSK), &idem)
	if err != nil {
		return hitl.Session{}, err
	}
	if !found {
		return hitl.Session{}, hitl.ErrNotFound
	}
	found2, err := s.sessions(ctx, []string{idem.SessionID})
	if err != nil {
		return hitl.Session{}, err
	}
	if len(found2) == 0 {
		return hitl.Session{}, hitl.ErrNotFound
	}
	first := found2[0]
	return first, hitl.ErrExists
}

func (s *Store) GetSession(ctx context.Context, id string) (hitl.Session, error) {
	found, err := s.sessions(ctx, []string{id})
	if err == nil && len(found) == 0 {
		err = fmt.Errorf("session %s: %w", id, hitl.ErrNotFound)
	}
	if err != nil {
		return hitl.Session{}, fmt.Errorf("get session: %w", err)
	}
	return found[0], nil
}

// convItem maps a provider conversation to its session, with a copy of the
// session's fields that never change once it opened: a webhook needs no
// other read to route its event.
type convItem struct {
	PK                     string   `dynamodbav:"pk"`
	SK                     string   `dynamodbav:"sk"`
	ID                     string   `dynamodbav:"id"`
	UserID                 string   `dynamodbav:"userId"`
	Provider               string   `dynamodbav:"provider"`
	Channel                string   `dynamodbav:"channel"`
	BotConversationID      string   `dynamodbav:"botConversationId,omitempty"`
	ProviderConversationID string   `dynamodbav:"providerConversationId"`
	AltConversationIDs     []string `dynamodbav:"altConversationIds,omitempty"`
	CreatedAt              string   `dynamodbav:"createdAt"`
	OpenedAt               string   `dynamodbav:"openedAt,omitempty"`
	VisitorID              string   `dynamodbav:"visitorId,omitempty"`
	ExpiresAt              int64    `dynamodbav:"expiresAt"`
}

const convSK = "CONV"

func convKey(provider, conversationID string) map[string]types.AttributeValue {
	return key(convPrefix+provider+"#"+conversationID, convSK)
}

func (s *Store) SessionByConversation(ctx context.Context, provider, conversationID string) (hitl.Session, error) {
	var it convItem
	found, err := s.getItem(ctx, convKey(provider, conversationID), &it)
	if err == nil && !found {
		err = hitl.ErrNotFound
	}
	if err != nil {
		return hitl.Session{}, fmt.Errorf("find session of %s conversation %s: %w", provider, conversationID, err)
	}
	return hitl.Session{
		ID: it.ID, UserID: it.UserID, Provider: it.Provider, Channel: it.Channel,
		BotConversationID: it.BotConversationID, ProviderConversationID: it.ProviderConversationID,
		AltConversationIDs: it.AltConversationIDs, CreatedAt: parseTS(it.CreatedAt), OpenedAt: parseTS(it.OpenedAt),
		Visitor: hitl.Visitor{ID: it.VisitorID},
	}, nil
}

func (s *Store) KeepConversation(ctx context.Context, id string, ids []string, at time.Time) error {
	if err := s.mapConversation(ctx, id, ids, nil, at); err != nil {
		return fmt.Errorf("keep conversation %v of session %s: %w", ids, id, err)
	}
	return nil
}

func (s *Store) Opened(ctx context.Context, id string, o hitl.Opened, at time.Time) error {
	ids := append([]string{o.ConversationID}, o.AltConversationIDs...)
	if err := s.mapConversation(ctx, id, ids, &o.Visitor, at); err != nil {
		return fmt.Errorf("record session %s opened as conversation %s: %w", id, o.ConversationID, err)
	}
	return nil
}

// mapConversation makes session id findable by each of ids (its
// conversation, then aliases) in one transaction with the session's update.
// With v (Opened) it also stores the visitor, drops the transcript and sets
// an opening session waiting; without (KeepConversation) the session stays
// opening and a session past opening with the same conversation is left
// alone.
func (s *Store) mapConversation(ctx context.Context, id string, ids []string, v *hitl.Visitor, at time.Time) error {
	if len(ids) == 0 || ids[0] == "" {
		return hitl.Errorf(hitl.CodeInvalid, "no conversation id")
	}
	for attempt := range attempts {
		it, err := s.existingSessionItem(ctx, id)
		if err != nil {
			return err
		}
		same := it.ProviderConversationID == ids[0]
		switch {
		case it.ProviderConversationID != "" && !same:
			return hitl.Errorf(hitl.CodeConflict, "session %s has conversation %s", id, it.ProviderConversationID)
		case it.Status == hitl.StatusClosed || (it.Status != hitl.StatusOpening && !same):
			return hitl.Errorf(hitl.CodeConflict, "session %s is %s, not opening", id, it.Status)
		case v == nil && it.Status != hitl.StatusOpening:
			return nil // kept, then opened: nothing to add
		}
		alts := it.AltConversationIDs
		for _, cid := range ids[1:] {
			if !slices.Contains(alts, cid) {
				alts = append(slices.Clip(alts), cid)
			}
		}
		// The condition pins the status read, so a concurrent change makes
		// this attempt fail and read again.
		up := expression.Set(name("providerConversationId"), value(ids[0])).
			Set(name(attrUpdatedAt), value(ts(at)))
		if len(alts) > 0 {
			up = up.Set(name("altConversationIds"), value(alts))
		}
		if it.OpenedAt == "" {
			up = up.Set(name("openedAt"), value(ts(at)))
		}
		if v != nil {
			up = setVisitor(up, *v).Remove(name(attrTranscript)).Remove(name(attrTransBytes)).Remove(name("context"))
			if it.Status == hitl.StatusOpening {
				up = up.Set(name(attrStatus), value(hitl.StatusWaiting))
			}
		}
		expr, err := expression.NewBuilder().WithUpdate(up).WithCondition(name(attrStatus).Equal(value(it.Status))).Build()
		if err != nil {
			return err
		}
		actions := []types.TransactWriteItem{{Update: &types.Update{
			TableName: &s.table, Key: sessionKey(id), UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		}}}
		mine, err := expression.NewBuilder().WithCondition(name("pk").AttributeNotExists().Or(name("id").Equal(value(id)))).Build()
		if err != nil {
			return err
		}
		for _, cid := range ids {
			conv, err := attributevalue.MarshalMap(convItem{
				PK: convPrefix + it.Provider + "#" + cid, SK: convSK,
				ID: it.ID, UserID: it.UserID, Provider: it.Provider, Channel: it.Channel,
				BotConversationID: it.BotConversationID, ProviderConversationID: ids[0], AltConversationIDs: alts,
				CreatedAt: it.CreatedAt, OpenedAt: cmp.Or(it.OpenedAt, ts(at)), VisitorID: cmp.Or(visitorID(v), it.VisitorID),
				ExpiresAt: ttl(at.Add(convRetention)),
			})
			if err != nil {
				return err
			}
			actions = append(actions, types.TransactWriteItem{Put: &types.Put{
				TableName: &s.table, Item: conv, ConditionExpression: mine.Condition(),
				ExpressionAttributeNames: mine.Names(), ExpressionAttributeValues: mine.Values(),
			}})
		}
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: actions})
		reasons := cancelReasons(err)
		if reasons == nil {
			return err
		}
		for i, cid := range ids {
			if failedAt(reasons, i+1) {
				return hitl.Errorf(hitl.CodeConflict, "conversation %s belongs to another session", cid)
			}
		}
		// The session changed meanwhile, or a concurrent transaction won:
		// read it again.
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
	return errContention
}

func visitorID(v *hitl.Visitor) string {
	if v == nil {
		return ""
	}
	return v.ID
}

// setVisitor adds to up the writes that store v and index its credentials'
// expiry, and that remove a legacy item's visitor attributes. The session
// must not be closed.
func setVisitor(up expression.UpdateBuilder, v hitl.Visitor) expression.UpdateBuilder {
	set := func(attr string, val any, empty bool) {
		if empty {
			up = up.Remove(name(attr))
		} else {
			up = up.Set(name(attr), value(val))
		}
	}
	expiry := ts(v.CredentialsExpireAt)
	set("visitorId", v.ID, v.ID == "")
	set("visitorCredentials", []byte(v.Credentials), len(v.Credentials) == 0)
	set("visitorCredentialsExpireAt", expiry, expiry == "")
	set("gsi2sk", expiry, expiry == "")
	set("gsi2pk", visitors, expiry == "")
	for _, attr := range legacyAttrs {
		up = up.Remove(name(attr))
	}
	return up
}

func (s *Store) SaveVisitor(ctx context.Context, id string, v hitl.Visitor) error {
	cond := name("pk").AttributeExists().And(name(attrStatus).NotEqual(value(hitl.StatusClosed)))
	_, old, ok, err := s.update(ctx, sessionKey(id), setVisitor(expression.UpdateBuilder{}, v), cond, false)
	if err == nil && !ok && old == nil {
		err = hitl.ErrNotFound
	}
	// A closed session (ok false, old set) keeps its visitor.
	if err != nil {
		return fmt.Errorf("save visitor of session %s: %w", id, err)
	}
	return nil
}

func (s *Store) DeleteSession(ctx context.Context, id, idempotencyKey string) error {
	if err := s.deleteSession(ctx, id, idempotencyKey); err != nil {
		return fmt.Errorf("delete session %s: %w", id, err)
	}
	return nil
}

func (s *Store) deleteSession(ctx context.Context, id, idempotencyKey string) error {
	unopened, err := expression.NewBuilder().WithCondition(
		name("pk").AttributeNotExists().Or(name(attrStatus).Equal(value(hitl.StatusOpening))),
	).Build()
	if err != nil {
		return err
	}
	errOpened := hitl.Errorf(hitl.CodeConflict, "session %s has opened", id)
	it, _, err := s.getSessionItem(ctx, id)
	if err != nil {
		return err
	}
	actions := []types.TransactWriteItem{
		{Delete: &types.Delete{
			TableName: &s.table, Key: sessionKey(id), ConditionExpression: unopened.Condition(),
			ExpressionAttributeNames: unopened.Names(), ExpressionAttributeValues: unopened.Values(),
		}},
		{Delete: &types.Delete{TableName: &s.table, Key: deliveryKey(id)}},
	}
	if it.ProviderConversationID != "" {
		// A kept conversation goes with the session.
		mine, err := expression.NewBuilder().WithCondition(name("pk").AttributeNotExists().Or(name("id").Equal(value(id)))).Build()
		if err != nil {
			return err
		}
		for _, cid := range append([]string{it.ProviderConversationID}, it.AltConversationIDs...) {
			actions = append(actions, types.TransactWriteItem{Delete: &types.Delete{
				TableName: &s.table, Key: convKey(it.Provider, cid), ConditionExpression: mine.Condition(),
				ExpressionAttributeNames: mine.Names(), ExpressionAttributeValues: mine.Values(),
			}})
		}
	}
	idem := -1
	if idempotencyKey != "" {
		ofSession, err := expression.NewBuilder().WithCondition(name("sessionId").Equal(value(id))).Build()
		if err != nil {
			return err
		}
		idem = len(actions)
		actions = append(actions, types.TransactWriteItem{Delete: &types.Delete{
			TableName: &s.table, Key: key(idemPrefix+idempotencyKey, idemSK), ConditionExpression: ofSession.Condition(),
			ExpressionAttributeNames: ofSession.Names(), ExpressionAttributeValues: ofSession.Values(),
		}})
	}
	for attempt := range attempts {
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: actions})
		reasons := cancelReasons(err)
		switch {
		case reasons == nil:
			return err
		case failedAt(reasons, 0):
			return errOpened
		case idem >= 0 && failedAt(reasons, idem):
			// The key is not this session's: leave it.
			actions = slices.Delete(actions, idem, idem+1)
			idem = -1
			continue
		}
		// A concurrent transaction won: try again.
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
	return errContention
}

func (s *Store) VisitorsExpiring(ctx context.Context, t time.Time, limit int) ([]hitl.ExpiringVisitor, error) {
	out, err := s.visitorsExpiring(ctx, t, limit)
	if err != nil {
		return nil, fmt.Errorf("list visitors expiring before %s: %w", ts(t), err)
	}
	return out, nil
}

// visitorsExpiring reads the session items gsi2 lists, not their delivery
// items: the visitor and the provider are on the session item.
func (s *Store) visitorsExpiring(ctx context.Context, t time.Time, limit int) ([]hitl.ExpiringVisitor, error) {
	kc := expression.Key("gsi2pk").Equal(value(visitors)).And(expression.Key("gsi2sk").LessThan(value(ts(t))))
	items, err := indexedItems[sessionItem](ctx, s, "gsi2", kc, limit)
	if err != nil {
		return nil, err
	}
	var out []hitl.ExpiringVisitor
	for _, it := range items {
		v, err := it.visitor()
		if err != nil {
			return nil, err
		}
		// The index lags the table: keep what still holds.
		if it.Status != hitl.StatusClosed && !v.CredentialsExpireAt.IsZero() && v.CredentialsExpireAt.Before(t) {
			out = append(out, hitl.ExpiringVisitor{SessionID: it.ID, Provider: it.Provider, Visitor: v})
		}
	}
	return out, nil
}

// indexedItems reads the items that index lists under kc, at most limit,
// in index order, and decodes them as T; items deleted meanwhile are left
// out.
func indexedItems[T any](ctx context.Context, s *Store, index string, kc expression.KeyConditionBuilder, limit int) ([]T, error) {
	keys, err := s.queryIndex(ctx, index, kc, limit)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(items))
	for _, k := range keys {
		raw, ok := items[itemID(k)]
		if !ok {
			continue
		}
		var it T
		if err := attributevalue.UnmarshalMap(raw, &it); err != nil {
			return nil, fmt.Errorf("decode item %s: %w", stringAttr(k, "pk"), err)
		}
		out = append(out, it)
	}
	return out, nil
}

// queryIndex returns the table keys of up to limit items of index matching
// kc, in index order.
func (s *Store) queryIndex(ctx context.Context, index string, kc expression.KeyConditionBuilder, limit int) ([]map[string]types.AttributeValue, error) {
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return nil, err
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(index), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		Limit: aws.Int32(int32(min(limit, 1000))),
	})
	if err != nil {
		return nil, err
	}
	keys := make([]map[string]types.AttributeValue, len(out.Items))
	for i, it := range out.Items {
		keys[i] = map[string]types.AttributeValue{"pk": it["pk"], "sk": it["sk"]}
	}
	return keys, nil
}

// itemID identifies an item by its table key.
func itemID(item map[string]types.AttributeValue) string {
	return stringAttr(item, "pk") + "\x00" + stringAttr(item, "sk")
}

func stringAttr(item map[string]types.AttributeValue, attr string) string {
	if v, ok := item[attr].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// batchGet reads the items at keys, by itemID. Items that do not exist are
// missing from the result.
func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue) (map[string]map[string]types.AttributeValue, error) {
	items := make(map[string]map[string]types.AttributeValue, len(keys))
	for len(keys) > 0 {
		n := min(len(keys), 100)
		todo := map[string]types.KeysAndAttributes{s.table: {Keys: keys[:n], ConsistentRead: aws.Bool(true)}}
		keys = keys[n:]
		for attempt := 0; len(todo) > 0; attempt++ {
			if attempt == attempts {
				return nil, errContention
			}
			if attempt > 0 {
				if err := backoff(ctx, attempt); err != nil {
					return nil, err
				}
			}
			out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: todo})
			if err != nil {
				return nil, err
			}
			for _, it := range out.Responses[s.table] {
				items[itemID(it)] = it
			}
			todo = out.UnprocessedKeys
		}
	}
	return items, nil
}
