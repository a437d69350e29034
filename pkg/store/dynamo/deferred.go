package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// Deferred sessions (hitl.Bridge.CreateDeferred) open at the end user's
// first message: BindUser, UnbindUser and AppendTranscript act on them
// while they are not yet open (hitl.StatusPending); ExtendIdle and
// IdleSessions keep their idle deadline.

func (s *Store) BindUser(ctx context.Context, id, userID string, at, staleBefore time.Time) (hitl.Session, error) {
	up := expression.Set(name(attrStatus), value(hitl.StatusOpening)).
		Set(name("userId"), value(userID)).
		Set(name(attrUpdatedAt), value(ts(at)))
	cond := name(attrStatus).Equal(value(hitl.StatusPending)).Or(
		name(attrStatus).Equal(value(hitl.StatusOpening)).And(name(attrUpdatedAt).LessThan(value(ts(staleBefore)))))
	item, old, ok, err := s.update(ctx, sessionKey(id), up, cond, true)
	if err == nil && !ok {
		err = refused(id, old, "pending")
	}
	var it sessionItem
	if err == nil {
		err = attributevalue.UnmarshalMap(item, &it)
	}
	var d deliveryItem
	var found bool
	if err == nil {
		d, found, err = s.getDelivery(ctx, id)
	}
	var bound hitl.Session
	if err == nil && found {
		bound, err = it.session(&d)
	} else if err == nil {
		bound, err = it.session(nil)
	}
	if err != nil {
		return hitl.Session{}, fmt.Errorf("bind user %s to session %s: %w", userID, id, err)
	}
	return bound, nil
}

// refused explains a failed condition on session id from the item as it
// was: missing, or not in the state the write required.
func refused(id string, old map[string]types.AttributeValue, want string) error {
	if old == nil {
		return fmt.Errorf("session %s: %w", id, hitl.ErrNotFound)
	}
	return hitl.Errorf(hitl.CodeConflict, "session %s is %s, not %s", id, stringAttr(old, attrStatus), want)
}

func (s *Store) UnbindUser(ctx context.Context, id string, boundAt time.Time) error {
	up := expression.Set(name(attrStatus), value(hitl.StatusPending)).Remove(name("userId"))
	cond := name(attrStatus).Equal(value(hitl.StatusOpening)).And(name(attrUpdatedAt).Equal(value(ts(boundAt))))
	if _, _, _, err := s.update(ctx, sessionKey(id), up, cond, false); err != nil {
		return fmt.Errorf("unbind the user of session %s: %w", id, err)
	}
	return nil
}

func (s *Store) AppendTranscript(ctx context.Context, id string, e hitl.TranscriptEntry, at time.Time) error {
	if err := s.appendTranscript(ctx, id, e, at); err != nil {
		return fmt.Errorf("append to the transcript of session %s: %w", id, err)
	}
	return nil
}

func (s *Store) appendTranscript(ctx context.Context, id string, e hitl.TranscriptEntry, at time.Time) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode transcript entry: %w", err)
	}
	full := hitl.Errorf(hitl.CodeRateLimited, "the transcript of session %s is full", id)
	if len(raw) > hitl.MaxTranscriptBytes {
		return full
	}
	up := expression.
		Set(name(attrTranscript), expression.ListAppend(name(attrTranscript).IfNotExists(value([]string{})), value([]string{string(raw)}))).
		Add(name(attrTransBytes), value(len(raw))).
		Set(name(attrUpdatedAt), value(ts(at)))
	cond := name(attrStatus).Equal(value(hitl.StatusPending)).And(
		name(attrTransBytes).AttributeNotExists().Or(name(attrTransBytes).LessThanEqual(value(hitl.MaxTranscriptBytes - len(raw)))))
	_, old, ok, err := s.update(ctx, sessionKey(id), up, cond, false)
	switch {
	case err != nil || ok:
		return err
	case old != nil && stringAttr(old, attrStatus) == string(hitl.StatusPending):
		return full
	}
	return refused(id, old, "pending")
}

func (s *Store) ExtendIdle(ctx context.Context, id string, until time.Time) error {
	up := expression.Set(name(attrIdle), value(ts(until))).
		Set(name("gsi3pk"), value(idle)).
		Set(name("gsi3sk"), value(ts(until)))
	cond := name("pk").AttributeExists().And(name(attrClosed).AttributeNotExists())
	_, old, ok, err := s.update(ctx, deliveryKey(id), up, cond, false)
	if err == nil && !ok && old == nil {
		_, err = s.existingSessionItem(ctx, id) // missing, or closed and delivered
	}
	// A closed session (ok false, old set) keeps its deadline.
	if err != nil {
		return fmt.Errorf("extend the idle deadline of session %s: %w", id, err)
	}
	return nil
}

func (s *Store) IdleSessions(ctx context.Context, now time.Time, limit int) ([]hitl.Session, error) {
	kc := expression.Key("gsi3pk").Equal(value(idle)).And(expression.Key("gsi3sk").LessThanEqual(value(ts(now))))
	keys, err := s.queryIndex(ctx, "gsi3", kc, limit)
	var found []hitl.Session
	if err == nil && len(keys) > 0 {
		ids := make([]string, len(keys))
		for i, k := range keys {
			ids[i] = stringAttr(k, "sk") // the session id of a delivery item's key
		}
		found, err = s.sessions(ctx, ids)
	}
	if err != nil {
		return nil, fmt.Errorf("list sessions idle at %s: %w", ts(now), err)
	}
	// The index lags the table: keep what still holds.
	return slices.DeleteFunc(found, func(sess hitl.Session) bool {
		return sess.Closed() || sess.IdleUntil.IsZero() || sess.IdleUntil.After(now)
	}), nil
}
