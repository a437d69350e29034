package dynamo

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
	var r hitl.Recorded
	var err error
	if c.AfterClose {
		r, err = s.recordLate(ctx, c, owner, leaseUntil)
	} else {
		r, err = s.record(ctx, c, owner, leaseUntil)
	}
	if err != nil {
		return hitl.Recorded{}, fmt.Errorf("record event %s on session %s: %w", c.Event.ID, c.SessionID, err)
	}
	return r, nil
}

// recordLate records an event that may come after the session ended (a
// rating). A closed session's delivery item, and the ids it remembered, go
// once everything is delivered, so such events are also remembered by a
// marker item of their own for DedupeSpan: a provider's retry of one is
// dropped even after the delivery item went. The marker is written after
// the record: a crash between the two risks a duplicate, never a loss.
func (s *Store) recordLate(ctx context.Context, c hitl.Change, owner string, leaseUntil time.Time) (hitl.Recorded, error) {
	marker := key(sessionPrefix+c.SessionID, latePrefix+idDigest(c.Event.ID))
	var seen struct{}
	found, err := s.getItem(ctx, marker, &seen)
	if err != nil || found {
		return hitl.Recorded{}, err
	}
	r, err := s.record(ctx, c, owner, leaseUntil)
	if err != nil || !r.Applied {
		return r, err
	}
	marker["expiresAt"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(ttl(c.At.Add(hitl.DedupeSpan)), 10)}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: marker}); err != nil {
		return hitl.Recorded{}, fmt.Errorf("remember late event: %w", err)
	}
	return r, nil
}

// changesSession reports whether c changes the session item, not only the
// delivery item.
func changesSession(c hitl.Change) bool {
	return c.Status != "" || c.Agent != nil || c.Unassign != "" || c.Queue != nil || c.CloseReason != ""
}

func (s *Store) record(ctx context.Context, c hitl.Change, owner string, leaseUntil time.Time) (hitl.Recorded, error) {
	body, err := json.Marshal(c.Event)
	if err != nil {
		return hitl.Recorded{}, fmt.Errorf("encode event: %w", err)
	}
	if len(body) > s.maxOutboxBytes {
		return hitl.Recorded{}, hitl.Errorf(hitl.CodeTooLarge, "event of %d bytes is too large to store", len(body))
	}
	digest := idDigest(c.Event.ID)
	for attempt := range attempts {
		known, seen := s.knownSpills(c.SessionID, digest, c.At)
		if seen {
			return hitl.Recorded{}, nil // a duplicate of a spilled id
		}
		// Closing copies what the delivery item keeps of the session into
		// the session item, which outlives it.
		var fold *deliveryItem
		if c.Status == hitl.StatusClosed {
			d, found, err := s.getDelivery(ctx, c.SessionID)
			if err != nil {
				return hitl.Recorded{}, err
			}
			if !found {
				return hitl.Recorded{}, s.noDelivery(ctx, c.SessionID)
			}
			fold = &d
		}
		up, cond := recordDelivery(c, body, digest, owner, ts(leaseUntil), known, fold, s.maxOutboxBytes)
		var d deliveryItem
		if !changesSession(c) {
			item, old, ok, err := s.update(ctx, deliveryKey(c.SessionID), up, cond, true)
			switch {
			case itemTooLarge(err):
				return hitl.Recorded{}, errOutboxFull(c.SessionID) // the outbox limit leaves room, but be sure
			case isConflict(err):
				if err := backoff(ctx, attempt); err != nil {
					return hitl.Recorded{}, err
				}
				continue
			case err != nil:
				return hitl.Recorded{}, err
			case !ok:
				again, err := s.deliveryRefused(ctx, c, digest, known, fold, old)
				if again && err == nil {
					continue
				}
				return hitl.Recorded{}, err
			}
			if err := attributevalue.UnmarshalMap(item, &d); err != nil {
				return hitl.Recorded{}, fmt.Errorf("decode delivery item: %w", err)
			}
			s.recordedWith(c.SessionID, known, &d)
		} else {
			done, again, err := s.recordWithSession(ctx, c, digest, known, fold, up, cond)
			if err != nil || (!done && !again) {
				return hitl.Recorded{}, err
			}
			if again {
				if err := backoff(ctx, attempt); err != nil {
					return hitl.Recorded{}, err
				}
				continue
			}
			// A transaction returns no item: read what it wrote, and
			// whatever was appended since (delivered under the lease too).
			// It may count spills committed since, which this Store does
			// not know: what the Store knows stays as it was.
			found, err := s.getItem(ctx, deliveryKey(c.SessionID), &d)
			if err != nil {
				return hitl.Recorded{}, err
			}
			if !found { // closed, and delivered by the lease holder meanwhile
				return hitl.Recorded{Applied: true, IdleUntil: parseTS(fold.IdleUntil)}, nil
			}
		}
		idleUntil := parseTS(d.IdleUntil)
		if fold != nil {
			idleUntil = parseTS(fold.IdleUntil)
		}
		if d.LeaseOwner != owner || d.LeaseUntil != ts(leaseUntil) {
			return hitl.Recorded{Applied: true, IdleUntil: idleUntil}, nil
		}
		pending, err := d.pending()
		if err != nil {
			return hitl.Recorded{}, err
		}
		s.rememberLease(c.SessionID, owner, d)
		return hitl.Recorded{Applied: true, Leased: true, Pending: pending, IdleUntil: idleUntil}, nil
	}
	return hitl.Recorded{}, errContention
}

// recordDelivery is the write of c to the delivery item: it appends the
// event (compact JSON) and its id's digest, takes the lease if it is free,
// and notes the event's time. Its condition rejects a closed session, a
// duplicate, a full outbox and, unless they may all be forgotten, spills
// beyond the known ones; when closing, a change to what fold copies.
func recordDelivery(c hitl.Change, body []byte, digest, owner, until string, known int64, fold *deliveryItem, maxBytes int) (expression.UpdateBuilder, expression.ConditionBuilder) {
	up := expression.
		Set(name(attrOutbox), expression.ListAppend(name(attrOutbox).IfNotExists(value([]string{})), value([]string{string(body)}))).
		Add(name(attrOutboxBytes), value(len(body))).
		Add(name(attrRecent), value(&types.AttributeValueMemberSS{Value: []string{digest}})).
		// The lease is taken only if free; the returned item tells.
		Set(name(attrLeaseOwner), name(attrLeaseOwner).IfNotExists(value(owner))).
		Set(name(attrLeaseUntil), name(attrLeaseUntil).IfNotExists(value(until))).
		Set(name(attrAt), value(ts(c.At)))
	if c.Event.UserID != "" {
		up = up.Set(name(attrUserID), value(c.Event.UserID))
	}
	if c.AgentReplied {
		up = up.Set(name(attrFirstReply), name(attrFirstReply).IfNotExists(value(ts(c.At))))
	}
	notClosed := name(attrClosed).AttributeNotExists()
	if c.AfterClose {
		notClosed = name("pk").AttributeExists()
	}
	cond := name("pk").AttributeExists().And(
		notClosed,
		name(attrRecent).Contains(digest).Not(),
		name(attrOutboxBytes).AttributeNotExists().Or(name(attrOutboxBytes).LessThanEqual(value(maxBytes-len(body)))),
		name(attrSpillUntil).AttributeNotExists().Or(name(attrSpillUntil).LessThan(value(ts(c.At))), spillsAre(known)),
	)
	if fold != nil {
		up = up.Set(name(attrClosed), value(true)).
			Remove(name(attrIdle)).Remove(name("gsi3pk")).Remove(name("gsi3sk"))
		cond = cond.And(sameOrAbsent(attrIdle, fold.IdleUntil), sameOrAbsent(attrFirstReply, fold.FirstReplyAt))
	}
	return up, cond
}

// sameOrAbsent holds while attr is v, or absent if v is "".
func sameOrAbsent(attr, v string) expression.ConditionBuilder {
	if v == "" {
		return name(attr).AttributeNotExists()
	}
	return name(attr).Equal(value(v))
}

// recordWithSession writes a change of the session's state and its event
// in one transaction. done reports that it applied; again, that it lost a
// race and may be tried again.
func (s *Store) recordWithSession(ctx context.Context, c hitl.Change, digest string, known int64, fold *deliveryItem, up expression.UpdateBuilder, cond expression.ConditionBuilder) (done, again bool, err error) {
	sup := expression.Set(name(attrUpdatedAt), value(ts(c.At)))
	if c.Status != "" {
		sup = sup.Set(name(attrStatus), value(c.Status))
	}
	if c.Agent != nil {
		sup = sup.Set(name("agent"), value(newAgentItem(c.Agent)))
	}
	if c.Unassign != "" {
		sup = sup.Remove(name("agent"))
	}
	if c.Queue != nil {
		sup = sup.Set(name("queue"), value(c.Queue))
	}
	if c.Status == hitl.StatusAssigned {
		sup = sup.Remove(name("queue")).Set(name("assignedAt"), name("assignedAt").IfNotExists(value(ts(c.At))))
	}
	if c.CloseNote != "" {
		sup = sup.Set(name("closeNote"), value(c.CloseNote))
	}
	if c.CloseReason != "" {
		sup = sup.Set(name("closeReason"), value(c.CloseReason))
	}
	if fold != nil {
		sup = sup.Set(name("closedAt"), value(ts(c.At))).
			Set(name(attrExpiresAt), value(ttl(c.At.Add(retention)))).
			Remove(name("gsi2pk")).Remove(name("gsi2sk"))
		if fold.IdleUntil != "" {
			sup = sup.Set(name(attrSessionIdle), value(fold.IdleUntil))
		}
		reply := fold.FirstReplyAt
		if reply == "" && c.AgentReplied {
			reply = ts(c.At)
		}
		if reply != "" {
			sup = sup.Set(name(attrSessionReply), value(reply))
		}
	}
	scond := name("pk").AttributeExists().And(name(attrStatus).NotEqual(value(hitl.StatusClosed)))
	if c.Unassign != "" {
		scond = scond.And(name("agent.id").Equal(value(c.Unassign)))
	}
	sessionAction, err := s.updateAction(sessionKey(c.SessionID), sup, scond)
	if err != nil {
		return false, false, err
	}
	deliveryAction, err := s.updateAction(deliveryKey(c.SessionID), up, cond)
	if err != nil {
		return false, false, err
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{sessionAction, deliveryAction}})
	reasons := cancelReasons(err)
	switch {
	case reasons == nil && itemTooLarge(err):
		return false, false, errOutboxFull(c.SessionID)
	case reasons == nil:
		return err == nil, false, err
	case failedAt(reasons, 0):
		if reasons[0].Item == nil {
			return false, false, fmt.Errorf("session %s: %w", c.SessionID, hitl.ErrNotFound)
		}
		return false, false, nil // closed, or another agent than c.Unassign
	case failedAt(reasons, 1):
		again, err := s.deliveryRefused(ctx, c, digest, known, fold, reasons[1].Item)
		return false, again, err
	}
	return false, true, nil // a concurrent write won
}

// deliveryRefused explains a refused write of c to the delivery item, given the
// item as it was: a duplicate or a closed session is no error, a full
// outbox is; again reports that the write may be tried again (spills this
// Store did not know, now read, or a change to what closing copies).
func (s *Store) deliveryRefused(ctx context.Context, c hitl.Change, digest string, known int64, fold *deliveryItem, old map[string]types.AttributeValue) (again bool, err error) {
	if old == nil && c.AfterClose {
		return s.reopenDelivery(ctx, c)
	}
	if old == nil {
		return false, s.noDelivery(ctx, c.SessionID)
	}
	var d deliveryItem
	if err := attributevalue.UnmarshalMap(old, &d); err != nil {
		return false, fmt.Errorf("decode delivery item: %w", err)
	}
	switch {
	case (d.Closed && !c.AfterClose) || slices.Contains(d.Recent, digest):
		return false, nil
	case d.Spills != known && d.SpillUntil >= ts(c.At):
		return true, s.loadSpills(ctx, c.SessionID, &d, c.At)
	case fold != nil && (d.IdleUntil != fold.IdleUntil || d.FirstReplyAt != fold.FirstReplyAt):
		return true, nil
	}
	return false, errOutboxFull(c.SessionID)
}

// reopenDelivery gives a closed session whose delivery item went (every
// event delivered) a new one, so that c, which may come after the end (a
// rating), is recorded; again reports that it now may be. The ids of the
// old item are gone with it: a provider's retry of such a late event
// reaches the bot again, with the same event id.
func (s *Store) reopenDelivery(ctx context.Context, c hitl.Change) (again bool, err error) {
	it, err := s.existingSessionItem(ctx, c.SessionID)
	if err != nil || it.Status != hitl.StatusClosed {
		return false, err
	}
	item, err := attributevalue.MarshalMap(deliveryItem{
		PK: deliveryPK(c.SessionID), SK: c.SessionID,
		Channel: it.Channel, UserID: it.UserID, Closed: true,
	})
	if err != nil {
		return false, err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item, ConditionExpression: notExists})
	if _, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
		err = nil // another caller made it meanwhile
	}
	return err == nil, err
}

// noDelivery explains a session without a delivery item: missing, or
// closed with everything delivered (Record does nothing then).
func (s *Store) noDelivery(ctx context.Context, id string) error {
	it, err := s.existingSessionItem(ctx, id)
	if err != nil || it.Status == hitl.StatusClosed {
		return err
	}
	return fmt.Errorf("session %s has no delivery state", id)
}

// isConflict reports whether err is DynamoDB refusing a write to an item a
// transaction is changing.
func isConflict(err error) bool {
	_, ok := errors.AsType[*types.TransactionConflictException](err)
	return ok
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
	// The outbox is due again when this lease ends.
	up := expression.Set(name(attrLeaseOwner), value(owner)).
		Set(name(attrLeaseUntil), value(ts(leaseUntil))).
		Remove(name(attrDue))
	cond := name(attrOutbox).AttributeExists().And(
		name(attrLeaseOwner).AttributeNotExists().Or(name(attrLeaseUntil).LessThanEqual(value(ts(now)))))
	item, _, ok, err := s.update(ctx, deliveryKey(sessionID), up, cond, true)
	if err != nil || !ok {
		return nil, false, err
	}
	var d deliveryItem
	if err := attributevalue.UnmarshalMap(item, &d); err != nil {
		return nil, false, fmt.Errorf("decode delivery item: %w", err)
	}
	pending, err := d.pending()
	if err != nil {
		return nil, false, err
	}
	s.rememberLease(sessionID, owner, d)
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
	hint, hinted := s.recallLease(sessionID, owner)
	var sp *spill
	if hinted && !hint.Closed && len(hint.Recent) >= spillAt {
		var err error
		if sp, err = s.putSpill(ctx, sessionID, &hint); err != nil {
			return false, err
		}
	}
	// cur is the item as last seen: a failed conditional write returns it.
	var cur map[string]types.AttributeValue
	if hinted && next == nil && delivered > 0 {
		// Usually everything pending was delivered: one write, on that
		// condition.
		ok, old, err := s.ackWrite(ctx, sessionID, owner, delivered, nil, nil, sp, hint.Closed, "")
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
		var d deliveryItem
		var err error
		if cur == nil {
			var found bool
			if d, found, err = s.getDelivery(ctx, sessionID); err == nil && !found {
				err = fmt.Errorf("session %s: %w", sessionID, hitl.ErrNotFound)
			}
		} else {
			err = attributevalue.UnmarshalMap(cur, &d)
		}
		if err != nil {
			return false, err
		}
		if d.LeaseOwner != owner {
			return false, errNotHolder
		}
		if delivered < 0 || delivered > len(d.Outbox) {
			return false, hitl.Errorf(hitl.CodeInvalid, "%d events acknowledged, %d pending", delivered, len(d.Outbox))
		}
		if sp != nil && d.Spills != sp.from {
			sp = nil // cannot be: only the lease holder spills
		}
		rest := d.Outbox[delivered:]
		ok, old, err := s.ackWrite(ctx, sessionID, owner, len(d.Outbox), rest, next, sp, d.Closed, d.due())
		if err != nil || ok {
			return len(rest) > 0, err
		}
		if cur = old; cur == nil {
			return false, fmt.Errorf("session %s: %w", sessionID, hitl.ErrNotFound)
		}
	}
	return false, errContention
}

// ackWrite releases owner's lease on an outbox of size events and leaves
// rest in it, due at next's time, or at due without next. It commits sp,
// if set. The delivery item of a closed session goes once it is empty.
func (s *Store) ackWrite(ctx context.Context, sessionID, owner string, size int, rest []string, next *hitl.Retry, sp *spill, closed bool, due string) (ok bool, old map[string]types.AttributeValue, err error) {
	cond := name(attrLeaseOwner).Equal(value(owner)).And(sizeIs(attrOutbox, size))
	if sp != nil {
		cond = cond.And(spillsAre(sp.from))
	}
	if closed && len(rest) == 0 {
		expr, err := expression.NewBuilder().WithCondition(cond).Build()
		if err != nil {
			return false, nil, err
		}
		_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: &s.table, Key: deliveryKey(sessionID), ConditionExpression: expr.Condition(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if failed, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
			return false, failed.Item, nil
		}
		return err == nil, nil, err
	}
	if !closed {
		cond = cond.And(name(attrClosed).AttributeNotExists())
	}
	up := expression.Remove(name(attrLeaseOwner)).Remove(name(attrLeaseUntil))
	if sp != nil {
		up = commitSpill(up, sp)
	}
	switch {
	case len(rest) == 0:
		up = up.Remove(name(attrOutbox)).Remove(name(attrOutboxBytes)).Remove(name(attrRetry)).Remove(name(attrDue))
	case next != nil:
		up = up.Set(name(attrOutbox), value(rest)).Set(name(attrOutboxBytes), value(jsonBytes(rest))).
			Set(name(attrDue), value(ts(next.At))).
			Set(name(attrRetry), value(retryItem{At: ts(next.At), Attempts: next.Attempts, Since: ts(next.Since)}))
	default:
		// Delivered without a failure: the run of failures ends. The due
		// time stays, so a sweep finds the rest if no one claims it.
		up = up.Set(name(attrOutbox), value(rest)).Set(name(attrOutboxBytes), value(jsonBytes(rest))).
			Set(name(attrDue), value(due)).Remove(name(attrRetry))
	}
	_, old, ok, err = s.update(ctx, deliveryKey(sessionID), up, cond, false)
	if ok && sp != nil {
		s.committed(sessionID, sp)
	}
	return ok, old, err
}

// sizeIs holds while list attr has n elements; empty lists are absent.
func sizeIs(attr string, n int) expression.ConditionBuilder {
	if n == 0 {
		return name(attr).AttributeNotExists()
	}
	return name(attr).Size().Equal(value(n))
}

func (s *Store) RetryState(ctx context.Context, sessionID string) (hitl.Retry, error) {
	d, found, err := s.getDelivery(ctx, sessionID)
	if err == nil && !found {
		_, err = s.existingSessionItem(ctx, sessionID)
	}
	if err != nil {
		return hitl.Retry{}, fmt.Errorf("read retry state: %w", err)
	}
	return d.retry(), nil
}

// DueOutboxes reads every delivery item, a few hundred bytes each for an
// open session, and keeps the due ones: a sweep's cost grows with the
// sessions open, not the table, and no event writes an index.
func (s *Store) DueOutboxes(ctx context.Context, now time.Time, limit int) ([]string, error) {
	ids, err := s.dueOutboxes(ctx, now, limit)
	if err != nil {
		return nil, fmt.Errorf("list outboxes due at %s: %w", ts(now), err)
	}
	return ids, nil
}

func (s *Store) dueOutboxes(ctx context.Context, now time.Time, limit int) ([]string, error) {
	at := value(ts(now))
	filter := name(attrOutbox).AttributeExists().And(
		name(attrDue).LessThanEqual(at).Or(name(attrDue).AttributeNotExists().And(name(attrLeaseUntil).LessThanEqual(at))))
	due, err := s.deliveryItems(ctx, filter, expression.NamesList(name("sk"), name(attrDue), name(attrLeaseUntil)))
	if err != nil {
		return nil, err
	}
	slices.SortFunc(due, func(a, b deliveryItem) int {
		return cmp.Or(strings.Compare(a.due(), b.due()), strings.Compare(a.SK, b.SK))
	})
	ids := make([]string, 0, min(len(due), limit))
	for _, d := range due[:min(len(due), limit)] {
		ids = append(ids, d.SK)
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
	s.recallLease(sessionID, owner)
	if err := s.bury(ctx, sessionID, owner, at); err != nil {
		return fmt.Errorf("dead-letter the outbox of session %s: %w", sessionID, err)
	}
	return nil
}

func (s *Store) bury(ctx context.Context, sessionID, owner string, at time.Time) error {
	for attempt := range attempts {
		d, found, err := s.getDelivery(ctx, sessionID)
		if err == nil && !found {
			err = fmt.Errorf("session %s: %w", sessionID, hitl.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if d.LeaseOwner != owner {
			return errNotHolder
		}
		cond, err := expression.NewBuilder().WithCondition(name(attrLeaseOwner).Equal(value(owner)).And(sizeIs(attrOutbox, len(d.Outbox)))).Build()
		if err != nil {
			return err
		}
		var first types.TransactWriteItem
		if d.Closed { // nothing more will come: the delivery item goes
			first.Delete = &types.Delete{
				TableName: &s.table, Key: deliveryKey(sessionID), ConditionExpression: cond.Condition(),
				ExpressionAttributeNames: cond.Names(), ExpressionAttributeValues: cond.Values(),
			}
		} else {
			up := expression.Remove(name(attrOutbox)).Remove(name(attrOutboxBytes)).Remove(name(attrRetry)).
				Remove(name(attrLeaseOwner)).Remove(name(attrLeaseUntil)).Remove(name(attrDue))
			if first, err = s.updateAction(deliveryKey(sessionID), up, name(attrLeaseOwner).Equal(value(owner)).And(sizeIs(attrOutbox, len(d.Outbox)))); err != nil {
				return err
			}
		}
		actions := []types.TransactWriteItem{first}
		if len(d.Outbox) > 0 {
			tag := rand.Text() // tells apart burials at the same time
			dead, err := attributevalue.MarshalMap(deadItem{
				PK: sessionPrefix + sessionID, SK: deadPrefix + ts(at) + "#" + tag,
				GSI1PK: deadLetters, GSI1SK: ts(at) + "#" + sessionID + "#" + tag,
				Channel: d.Channel, UserID: d.UserID, DeadAt: ts(at), Events: d.Outbox,
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
	dead, err := indexedItems[deadItem](ctx, s, "gsi1", expression.Key("gsi1pk").Equal(value(deadLetters)), limit)
	if err != nil {
		return nil, err
	}
	var out []hitl.DeadLetter
	for _, d := range dead {
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
	if err != nil || len(dead) == 0 {
		return 0, err
	}
	// A closed session's delivery item went once it was empty: the replay
	// makes it again.
	it, err := s.existingSessionItem(ctx, sessionID)
	if err != nil {
		return 0, err
	}
	n := 0
	// One transaction takes 100 actions: the delivery update and 99 deletes.
	for chunk := range slices.Chunk(dead, 99) {
		var events []string
		for _, d := range chunk {
			events = append(events, d.Events...)
		}
		size := jsonBytes(events)
		up := expression.
			Set(name(attrOutbox), expression.ListAppend(name(attrOutbox).IfNotExists(value([]string{})), value(events))).
			Add(name(attrOutboxBytes), value(size)).
			Set(name(attrDue), value(ts(now))).
			Set(name(attrChannel), name(attrChannel).IfNotExists(value(chunk[0].Channel))).
			Set(name(attrUserID), name(attrUserID).IfNotExists(value(chunk[0].UserID))).
			Remove(name(attrRetry))
		if it.Status == hitl.StatusClosed {
			up = up.Set(name(attrClosed), value(true))
		}
		cond := name(attrOutboxBytes).AttributeNotExists().Or(name(attrOutboxBytes).LessThanEqual(value(s.maxOutboxBytes - size)))
		update, err := s.updateAction(deliveryKey(sessionID), up, cond)
		if err != nil {
			return n, err
		}
		actions := []types.TransactWriteItem{update}
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
	return query[deadItem](ctx, s, expr, true)
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
