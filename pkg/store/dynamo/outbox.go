package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

func (s *Store) Record(ctx context.Context, c hitl.Change, owner string, leaseUntil time.Time) (hitl.Recorded, error) {
	r, err := s.record(ctx, c, owner, leaseUntil)
	if err != nil {
		return hitl.Recorded{}, fmt.Errorf("record event %s on session %s: %w", c.Event.ID, c.SessionID, err)
	}
	return r, nil
}

func (s *Store) record(ctx context.Context, c hitl.Change, owner string, leaseUntil time.Time) (hitl.Recorded, error) {
	body, err := json.Marshal(c.Event)
	if err != nil {
		return hitl.Recorded{}, fmt.Errorf("encode event: %w", err)
	}
	if len(body) > s.maxOutboxBytes {
		return hitl.Recorded{}, hitl.Errorf(hitl.CodeTooLarge, "event of %d bytes is too large to store", len(body))
	}
	digest, until, empty := idDigest(c.Event.ID), ts(leaseUntil), value([]string{})
	up := expression.
		Set(name(attrOutbox), expression.ListAppend(name(attrOutbox).IfNotExists(empty), value([]string{string(body)}))).
		Set(name(attrRecent), expression.ListAppend(name(attrRecent).IfNotExists(empty), value([]string{digest}))).
		Set(name(attrRecentAt), expression.ListAppend(name(attrRecentAt).IfNotExists(value([]int64{})), value([]int64{c.At.Unix()}))).
		Add(name(attrOutboxBytes), value(len(body))).
		// The lease is taken only if free; the returned item tells.
		Set(name(attrLeaseOwner), name(attrLeaseOwner).IfNotExists(value(owner))).
		Set(name(attrLeaseUntil), name(attrLeaseUntil).IfNotExists(value(until))).
		// A pending outbox is always due; until the lease ends if it had no
		// due time.
		Set(name("gsi1pk"), value(dueOutbox)).
		Set(name("gsi1sk"), name("gsi1sk").IfNotExists(value(until))).
		Set(name("updatedAt"), value(ts(c.At)))
	if c.Status != "" {
		up = up.Set(name(attrStatus), value(c.Status))
	}
	if c.Agent != nil {
		up = up.Set(name("agent"), value(newAgentItem(c.Agent)))
	}
	if c.Unassign != "" {
		up = up.Remove(name("agent"))
	}
	if c.Queue != nil {
		up = up.Set(name("queue"), value(c.Queue))
	}
	if c.Status == hitl.StatusAssigned {
		up = up.Remove(name("queue")).Set(name("assignedAt"), name("assignedAt").IfNotExists(value(ts(c.At))))
	}
	if c.AgentReplied {
		up = up.Set(name("firstReplyAt"), name("firstReplyAt").IfNotExists(value(ts(c.At))))
	}
	if c.Status == hitl.StatusClosed {
		up = up.Set(name("closedAt"), value(ts(c.At))).
			Set(name(attrExpiresAt), value(ttl(c.At.Add(retention)))).
			Remove(name("gsi2pk")).Remove(name("gsi2sk")).
			Remove(name("gsi3pk")).Remove(name("gsi3sk"))
		if c.CloseReason != "" {
			up = up.Set(name("closeReason"), value(c.CloseReason))
		}
	}
	notClosed := name(attrStatus).NotEqual(value(hitl.StatusClosed))
	if c.AfterClose {
		notClosed = name("pk").AttributeExists()
	}
	cond := name("pk").AttributeExists().And(
		notClosed,
		name(attrRecent).Contains(digest).Not(),
		name(attrOutboxBytes).AttributeNotExists().Or(name(attrOutboxBytes).LessThanEqual(value(s.maxOutboxBytes-len(body)))),
	)
	if c.Unassign != "" {
		cond = cond.And(name("agent.id").Equal(value(c.Unassign)))
	}
	item, old, ok, err := s.update(ctx, sessionKey(c.SessionID), up, cond, true)
	if itemTooLarge(err) {
		return hitl.Recorded{}, errOutboxFull(c.SessionID) // the outbox limit leaves room, but be sure
	}
	if err != nil {
		return hitl.Recorded{}, err
	}
	if !ok {
		return hitl.Recorded{}, notRecorded(c, digest, old)
	}
	var it sessionItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return hitl.Recorded{}, fmt.Errorf("decode session item: %w", err)
	}
	idleUntil := parseTS(it.IdleUntil)
	if it.LeaseOwner != owner || it.LeaseUntil != until {
		return hitl.Recorded{Applied: true, IdleUntil: idleUntil}, nil
	}
	pending, err := it.pending()
	if err != nil {
		return hitl.Recorded{}, err
	}
	s.rememberRecent(c.SessionID, owner, it.recentTrim(c.At))
	return hitl.Recorded{Applied: true, Leased: true, Pending: pending, IdleUntil: idleUntil}, nil
}

// notRecorded explains a Record whose condition failed, given the item as it
// was: a duplicate, a closed session or another agent than c.Unassign is no
// error, a full outbox is.
func notRecorded(c hitl.Change, digest string, old map[string]types.AttributeValue) error {
	if old == nil {
		return fmt.Errorf("session %s: %w", c.SessionID, hitl.ErrNotFound)
	}
	var it sessionItem
	if err := attributevalue.UnmarshalMap(old, &it); err != nil {
		return fmt.Errorf("decode session item: %w", err)
	}
	if (it.Status == hitl.StatusClosed && !c.AfterClose) || slices.Contains(it.Recent, digest) ||
		(c.Unassign != "" && (it.Agent == nil || it.Agent.ID != c.Unassign)) {
		return nil
	}
	return errOutboxFull(c.SessionID)
}

func errOutboxFull(sessionID string) error {
	return hitl.Errorf(hitl.CodeRateLimited,
		"session %s holds all the undelivered events it can; new events are refused until the bot accepts them", sessionID)
}

func (s *Store) Claim(ctx context.Context, sessionID, owner string, now, leaseUntil time.Time) ([]hitl.Event, bool, error) {
	pending, ok, err := s.claim(ctx, sessionID, owner, now, leaseUntil)
	if err != nil {
		return nil, false, fmt.Errorf("claim outbox of session %s: %w", sessionID, err)
	}
	return pending, ok, nil
}

func (s *Store) claim(ctx context.Context, sessionID, owner string, now, leaseUntil time.Time) ([]hitl.Event, bool, error) {
	until := ts(leaseUntil)
	up := expression.Set(name(attrLeaseOwner), value(owner)).
		Set(name(attrLeaseUntil), value(until)).
		Set(name("gsi1pk"), value(dueOutbox)).
		Set(name("gsi1sk"), value(until))
	cond := name(attrOutbox).AttributeExists().And(
		name(attrLeaseOwner).AttributeNotExists().Or(name(attrLeaseUntil).LessThanEqual(value(ts(now)))))
	item, _, ok, err := s.update(ctx, sessionKey(sessionID), up, cond, true)
	if err != nil || !ok {
		return nil, false, err
	}
	var it sessionItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return nil, false, fmt.Errorf("decode session item: %w", err)
	}
	pending, err := it.pending()
	if err != nil {
		return nil, false, err
	}
	s.rememberRecent(sessionID, owner, it.recentTrim(now))
	return pending, true, nil
}

func (s *Store) Ack(ctx context.Context, sessionID, owner string, delivered int, next *hitl.Retry) (bool, error) {
	more, err := s.ack(ctx, sessionID, owner, delivered, next)
	if err != nil {
		return false, fmt.Errorf("acknowledge %d events of session %s: %w", delivered, sessionID, err)
	}
	return more, nil
}

func (s *Store) ack(ctx context.Context, sessionID, owner string, delivered int, next *hitl.Retry) (bool, error) {
	trim := s.recalledRecent(sessionID, owner)
	// cur is the item as last seen: a failed conditional write returns it.
	var cur map[string]types.AttributeValue
	if next == nil && delivered > 0 {
		// Usually everything pending was delivered: one write, on that
		// condition.
		_, old, ok, err := s.update(ctx, sessionKey(sessionID), ackUpdate(nil, nil, trim), ackCond(owner, delivered, trim), false)
		if err != nil || ok {
			return false, err
		}
		if cur = old; cur == nil {
			return false, fmt.Errorf("session %s: %w", sessionID, hitl.ErrNotFound)
		}
	}
	// Events were appended meanwhile, or not all were delivered: write
	// exactly what remains.
	for range attempts {
		var it sessionItem
		var err error
		if cur == nil {
			it, err = s.mustGetSessionItem(ctx, sessionID)
		} else {
			err = attributevalue.UnmarshalMap(cur, &it)
		}
		if err != nil {
			return false, err
		}
		if it.LeaseOwner != owner {
			return false, errNotHolder
		}
		if delivered < 0 || delivered > len(it.Outbox) {
			return false, hitl.Errorf(hitl.CodeInvalid, "%d events acknowledged, %d pending", delivered, len(it.Outbox))
		}
		rest := it.Outbox[delivered:]
		trim := it.recentTrim(time.Now())
		_, old, ok, err := s.update(ctx, sessionKey(sessionID), ackUpdate(rest, next, trim), ackCond(owner, len(it.Outbox), trim), false)
		if err != nil || ok {
			return len(rest) > 0, err
		}
		if cur = old; cur == nil {
			return false, fmt.Errorf("session %s: %w", sessionID, hitl.ErrNotFound)
		}
	}
	return false, errContention
}

// ackUpdate releases the lease, leaves rest in the outbox, and trims the
// recent-ids list as trim says.
func ackUpdate(rest []string, next *hitl.Retry, trim recentTrim) expression.UpdateBuilder {
	up := expression.Remove(name(attrLeaseOwner)).Remove(name(attrLeaseUntil))
	for i := range trim.Trim {
		up = up.Remove(name(fmt.Sprintf("%s[%d]", attrRecent, i)))
	}
	for i := range trim.TrimAt {
		up = up.Remove(name(fmt.Sprintf("%s[%d]", attrRecentAt, i)))
	}
	switch {
	case len(rest) == 0:
		return up.Remove(name(attrOutbox)).Remove(name(attrOutboxBytes)).Remove(name(attrRetry)).
			Remove(name("gsi1pk")).Remove(name("gsi1sk"))
	case next != nil:
		return up.Set(name(attrOutbox), value(rest)).Set(name(attrOutboxBytes), value(jsonBytes(rest))).
			Set(name("gsi1sk"), value(ts(next.At))).
			Set(name(attrRetry), value(retryItem{At: ts(next.At), Attempts: next.Attempts, Since: ts(next.Since)}))
	default:
		// Delivered without a failure: the run of failures ends. The due
		// time stays, so a sweep finds the rest if no one claims it.
		return up.Set(name(attrOutbox), value(rest)).Set(name(attrOutboxBytes), value(jsonBytes(rest))).
			Remove(name(attrRetry))
	}
}

// ackCond holds while owner has the lease, the outbox has size events and
// the recent-ids list is as long as trim saw it, or longer.
func ackCond(owner string, size int, trim recentTrim) expression.ConditionBuilder {
	cond := name(attrLeaseOwner).Equal(value(owner)).And(sizeIs(attrOutbox, size))
	if trim.Trim > 0 {
		cond = cond.And(name(attrRecent).Size().GreaterThanEqual(value(trim.Len)))
	}
	return cond
}

// sizeIs holds while list attr has n elements; empty lists are absent.
func sizeIs(attr string, n int) expression.ConditionBuilder {
	if n == 0 {
		return name(attr).AttributeNotExists()
	}
	return name(attr).Size().Equal(value(n))
}

func (s *Store) RetryState(ctx context.Context, sessionID string) (hitl.Retry, error) {
	it, err := s.mustGetSessionItem(ctx, sessionID)
	if err != nil {
		return hitl.Retry{}, fmt.Errorf("read retry state: %w", err)
	}
	return it.retry(), nil
}

func (s *Store) DueOutboxes(ctx context.Context, now time.Time, limit int) ([]string, error) {
	keys, err := s.queryIndex(ctx, "gsi1", expression.Key("gsi1pk").Equal(value(dueOutbox)).And(expression.Key("gsi1sk").LessThanEqual(value(ts(now)))), limit)
	if err != nil {
		return nil, fmt.Errorf("list outboxes due at %s: %w", ts(now), err)
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, strings.TrimPrefix(stringAttr(k, "pk"), sessionPrefix))
	}
	return ids, nil
}

// deadItem holds the events of one Bury.
type deadItem struct {
	PK        string   `dynamodbav:"pk"`
	SK        string   `dynamodbav:"sk"`
	GSI1PK    string   `dynamodbav:"gsi1pk"`
	GSI1SK    string   `dynamodbav:"gsi1sk"`
	Channel   string   `dynamodbav:"channel"`
	UserID    string   `dynamodbav:"userId"`
	DeadAt    string   `dynamodbav:"deadAt"`
	Events    []string `dynamodbav:"events"` // event JSON, oldest first
	ExpiresAt int64    `dynamodbav:"expiresAt"`
}

func (s *Store) Bury(ctx context.Context, sessionID, owner string, at time.Time) error {
	s.recalledRecent(sessionID, owner)
	if err := s.bury(ctx, sessionID, owner, at); err != nil {
		return fmt.Errorf("dead-letter the outbox of session %s: %w", sessionID, err)
	}
	return nil
}

func (s *Store) bury(ctx context.Context, sessionID, owner string, at time.Time) error {
	up := expression.Remove(name(attrOutbox)).Remove(name(attrOutboxBytes)).Remove(name(attrRetry)).
		Remove(name(attrLeaseOwner)).Remove(name(attrLeaseUntil)).Remove(name("gsi1pk")).Remove(name("gsi1sk"))
	for attempt := range attempts {
		it, err := s.mustGetSessionItem(ctx, sessionID)
		if err != nil {
			return err
		}
		if it.LeaseOwner != owner {
			return errNotHolder
		}
		expr, err := expression.NewBuilder().WithUpdate(up).
			WithCondition(name(attrLeaseOwner).Equal(value(owner)).And(sizeIs(attrOutbox, len(it.Outbox)))).Build()
		if err != nil {
			return err
		}
		actions := []types.TransactWriteItem{{Update: &types.Update{
			TableName: &s.table, Key: sessionKey(sessionID), UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		}}}
		if len(it.Outbox) > 0 {
			tag := rand.Text() // tells apart burials at the same time
			dead, err := attributevalue.MarshalMap(deadItem{
				PK: sessionPrefix + sessionID, SK: deadPrefix + ts(at) + "#" + tag,
				GSI1PK: deadLetters, GSI1SK: ts(at) + "#" + sessionID + "#" + tag,
				Channel: it.Channel, UserID: it.UserID, DeadAt: ts(at), Events: it.Outbox,
				ExpiresAt: ttl(at.Add(retention)),
			})
			if err != nil {
				return err
			}
			actions = append(actions, types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: dead, ConditionExpression: notExists}})
		}
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: actions})
		if cancelReasons(err) == nil {
			return err
		}
		// Events were appended meanwhile: bury those too.
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
	return errContention
}

func (s *Store) DeadLetters(ctx context.Context, limit int) ([]hitl.DeadLetter, error) {
	out, err := s.deadLetters(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

func (s *Store) deadLetters(ctx context.Context, limit int) ([]hitl.DeadLetter, error) {
	// Every dead item holds at least one event: limit items are enough.
	keys, err := s.queryIndex(ctx, "gsi1", expression.Key("gsi1pk").Equal(value(deadLetters)), limit)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	var out []hitl.DeadLetter
	for _, k := range keys {
		raw, ok := items[itemID(k)]
		if !ok {
			continue // replayed meanwhile
		}
		var d deadItem
		if err := attributevalue.UnmarshalMap(raw, &d); err != nil {
			return nil, fmt.Errorf("decode dead letter item: %w", err)
		}
		events, err := decodeEvents(d.Events, d.Channel, d.UserID)
		if err != nil {
			return nil, err
		}
		for _, e := range events {
			if len(out) == limit {
				return out, nil
			}
			out = append(out, hitl.DeadLetter{Event: e, DeadAt: parseTS(d.DeadAt)})
		}
	}
	return out, nil
}

func (s *Store) Replay(ctx context.Context, sessionID string, now time.Time) (int, error) {
	n, err := s.replay(ctx, sessionID, now)
	if err != nil {
		return n, fmt.Errorf("replay dead letters of session %s: %w", sessionID, err)
	}
	return n, nil
}

func (s *Store) replay(ctx context.Context, sessionID string, now time.Time) (int, error) {
	dead, err := s.deadItems(ctx, sessionID)
	if err != nil {
		return 0, err
	}
	n := 0
	// One transaction takes 100 actions: the session update and 99 deletes.
	for chunk := range slices.Chunk(dead, 99) {
		var events []string
		for _, d := range chunk {
			events = append(events, d.Events...)
		}
		size := jsonBytes(events)
		up := expression.
			Set(name(attrOutbox), expression.ListAppend(name(attrOutbox).IfNotExists(value([]string{})), value(events))).
			Add(name(attrOutboxBytes), value(size)).
			Set(name("gsi1pk"), value(dueOutbox)).
			Set(name("gsi1sk"), value(ts(now))).
			Remove(name(attrRetry))
		cond := name("pk").AttributeExists().And(
			name(attrOutboxBytes).AttributeNotExists().Or(name(attrOutboxBytes).LessThanEqual(value(s.maxOutboxBytes - size))))
		expr, err := expression.NewBuilder().WithUpdate(up).WithCondition(cond).Build()
		if err != nil {
			return n, err
		}
		actions := []types.TransactWriteItem{{Update: &types.Update{
			TableName: &s.table, Key: sessionKey(sessionID), UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}}}
		for _, d := range chunk {
			actions = append(actions, types.TransactWriteItem{Delete: &types.Delete{
				TableName: &s.table, Key: key(d.PK, d.SK), ConditionExpression: aws.String("attribute_exists(pk)"),
			}})
		}
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: actions})
		reasons := cancelReasons(err)
		switch {
		case reasons == nil && err != nil:
			return n, err
		case failedAt(reasons, 0) && reasons[0].Item == nil:
			return n, fmt.Errorf("session %s: %w", sessionID, hitl.ErrNotFound)
		case failedAt(reasons, 0):
			return n, errOutboxFull(sessionID)
		case slices.ContainsFunc(reasons, func(r types.CancellationReason) bool { return aws.ToString(r.Code) == conditionFailed }):
			return n, hitl.Errorf(hitl.CodeConflict, "the dead letters of session %s are being replayed by another caller", sessionID)
		case reasons != nil:
			return n, errContention
		}
		n += len(events)
	}
	return n, nil
}

// deadItems returns a session's dead items, oldest first.
func (s *Store) deadItems(ctx context.Context, sessionID string) ([]deadItem, error) {
	expr, err := expression.NewBuilder().WithKeyCondition(
		expression.Key("pk").Equal(value(sessionPrefix + sessionID)).And(expression.Key("sk").BeginsWith(deadPrefix)),
	).Build()
	if err != nil {
		return nil, err
	}
	var dead []deadItem
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName: &s.table, KeyConditionExpression: expr.KeyCondition(), ConsistentRead: aws.Bool(true),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		var items []deadItem
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &items); err != nil {
			return nil, fmt.Errorf("decode dead letter items: %w", err)
		}
		dead = append(dead, items...)
	}
	return dead, nil
}

const leaseSK = "LEASE"

func (s *Store) AcquireLease(ctx context.Context, lease, owner string, now, until time.Time) (bool, error) {
	up := expression.Set(name(attrLeaseOwner), value(owner)).
		Set(name(attrLeaseUntil), value(ts(until))).
		Set(name(attrExpiresAt), value(ttl(until.Add(leaseRetention))))
	cond := name("pk").AttributeNotExists().Or(name(attrLeaseUntil).LessThanEqual(value(ts(now))))
	_, _, ok, err := s.update(ctx, key(leasePrefix+lease, leaseSK), up, cond, false)
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", lease, err)
	}
	return ok, nil
}
