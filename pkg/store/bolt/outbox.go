package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

func (s *Store) Record(_ context.Context, c hitl.Change, owner string, leaseUntil time.Time) (hitl.Recorded, error) {
	var out hitl.Recorded
	// Concurrent Records and Acks share one transaction and one sync to
	// disk. The function may run again, alone: start afresh.
	err := s.writes.update(func(tx *bbolt.Tx) error {
		out = hitl.Recorded{}
		if !changesSession(c) {
			return changeDelivery(tx, c.SessionID, func(d *delivery) (bool, error) {
				if ok, err := d.admits(tx, c); err != nil || !ok {
					return true, err
				}
				var err error
				out, err = d.add(tx, c, owner, leaseUntil)
				return false, err
			})
		}
		return change(tx, c.SessionID, func(r *record) (bool, error) {
			if ok, err := r.admits(tx, c); err != nil || !ok {
				return true, err
			}
			if c.Unassign != "" {
				if r.Session.Agent == nil || r.Session.Agent.ID != c.Unassign {
					return true, nil
				}
				r.Session.Agent = nil
			}
			if c.Status != "" {
				r.Session.Status = c.Status
			}
			if c.Queue != nil {
				q := *c.Queue
				r.Session.Queue = &q
			}
			if c.Status == hitl.StatusAssigned {
				r.Session.Queue = nil
				if r.Session.AssignedAt.IsZero() {
					r.Session.AssignedAt = c.At
				}
			}
			if c.Agent != nil {
				r.Session.Agent = c.Agent
			}
			if c.Status == hitl.StatusClosed {
				r.Session.CloseReason, r.Session.CloseNote, r.Session.ClosedAt = c.CloseReason, c.CloseNote, c.At
			}
			var err error
			out, err = r.add(tx, c, owner, leaseUntil)
			return false, err
		})
	})
	if err != nil {
		return hitl.Recorded{}, fmt.Errorf("record event %s on session %s: %w", c.Event.ID, c.SessionID, err)
	}
	return out, nil
}

// changesSession reports whether c changes the session's record, not only
// its delivery state.
func changesSession(c hitl.Change) bool {
	return c.Status != "" || c.Agent != nil || c.Unassign != "" || c.Queue != nil
}

func (s *Store) Claim(_ context.Context, sessionID, owner string, now, leaseUntil time.Time) ([]hitl.Event, bool, error) {
	var pending []hitl.Event
	err := s.db.Update(func(tx *bbolt.Tx) error {
		pending = nil
		return changeDelivery(tx, sessionID, func(d *delivery) (bool, error) {
			if len(d.Outbox) == 0 || (d.LeaseOwner != "" && d.LeaseUntil.After(now)) {
				return true, nil
			}
			d.LeaseOwner, d.LeaseUntil, d.Due = owner, leaseUntil, leaseUntil
			pending = d.pending()
			return false, nil
		})
	})
	if errors.Is(err, hitl.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("claim outbox of session %s: %w", sessionID, err)
	}
	return pending, pending != nil, nil
}

func (s *Store) Ack(_ context.Context, sessionID, owner string, delivered int, next *hitl.Retry) (bool, error) {
	var more bool
	// Shared with concurrent Records and Acks as theirs are, but answered
	// before the commit syncs: an Ack lost in a crash leaves the events
	// pending with this owner's lease, so the sweep sends them again once it
	// ends, as after a crash between the delivery and the Ack. What follows
	// is safe: writes begin after this commit, readers of the outbox wait
	// for it (settled), and the next commit reaches the disk after it.
	err := s.writes.apply(func(tx *bbolt.Tx) error {
		more = false
		return changeDelivery(tx, sessionID, func(d *delivery) (bool, error) {
			if d.LeaseOwner != owner {
				return false, errNotHolder
			}
			if delivered < 0 || delivered > len(d.Outbox) {
				return false, hitl.Errorf(hitl.CodeInvalid, "%d events acknowledged, %d pending", delivered, len(d.Outbox))
			}
			d.Outbox = d.Outbox[delivered:]
			d.LeaseOwner, d.LeaseUntil = "", time.Time{}
			switch more = len(d.Outbox) > 0; {
			case !more:
				d.Outbox, d.Due, d.Retry = nil, time.Time{}, retry{}
			case next != nil:
				d.Due, d.Retry = next.At, retry(*next)
			default:
				d.Retry = retry{}
			}
			return false, nil
		})
	})
	if err != nil {
		return false, fmt.Errorf("acknowledge %d events of session %s: %w", delivered, sessionID, err)
	}
	return more, nil
}

func (s *Store) RetryState(_ context.Context, sessionID string) (hitl.Retry, error) {
	var state hitl.Retry
	s.writes.settled() // an Ack answered is visible
	err := s.db.View(func(tx *bbolt.Tx) error {
		d, err := readDelivery(tx, sessionID)
		if err == nil {
			state = hitl.Retry(d.Retry)
		}
		return err
	})
	if err != nil {
		return hitl.Retry{}, fmt.Errorf("read retry state: %w", err)
	}
	return state, nil
}

func (s *Store) DueOutboxes(_ context.Context, now time.Time, limit int) ([]string, error) {
	var ids []string
	end := timeKey(now)
	s.writes.settled() // an Ack answered is visible
	err := s.db.View(func(tx *bbolt.Tx) error {
		ids = indexed(tx, dueBucket, limit, func(at string) bool { return at <= end })
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list outboxes due at %s: %w", end, err)
	}
	return ids, nil
}

// deadLetter is a stored dead letter; unlike hitl.Event's JSON, it keeps
// the event's routing fields.
type deadLetter struct {
	Event   hitl.Event `json:"event"`
	Channel string     `json:"channel"`
	UserID  string     `json:"userId"`
	DeadAt  time.Time  `json:"deadAt"`
}

func (s *Store) Bury(_ context.Context, sessionID, owner string, at time.Time) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return changeDelivery(tx, sessionID, func(d *delivery) (bool, error) {
			if d.LeaseOwner != owner {
				return false, errNotHolder
			}
			dead := tx.Bucket(deadBucket)
			for _, e := range d.pending() {
				seq, err := dead.NextSequence()
				if err != nil {
					return false, err
				}
				key := binary.BigEndian.AppendUint64([]byte(timeKey(at)+"\x00"+sessionID+"\x00"), seq)
				if err := putJSON(dead, string(key), deadLetter{Event: e, Channel: e.Channel, UserID: e.UserID, DeadAt: at}); err != nil {
					return false, err
				}
			}
			d.Outbox, d.LeaseOwner, d.LeaseUntil, d.Due, d.Retry = nil, "", time.Time{}, time.Time{}, retry{}
			return false, nil
		})
	})
	if err != nil {
		return fmt.Errorf("dead-letter the outbox of session %s: %w", sessionID, err)
	}
	return nil
}

func (s *Store) DeadLetters(_ context.Context, limit int) ([]hitl.DeadLetter, error) {
	var out []hitl.DeadLetter
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(deadBucket).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			var d deadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			d.Event.Channel, d.Event.UserID = d.Channel, d.UserID
			out = append(out, hitl.DeadLetter{Event: d.Event, DeadAt: d.DeadAt})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

func (s *Store) Replay(_ context.Context, sessionID string, now time.Time) (int, error) {
	var n int
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var events []hitl.Event
		var keys [][]byte
		c := tx.Bucket(deadBucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if !strings.HasPrefix(string(k[len(timeLayout)+1:]), sessionID+"\x00") {
				continue
			}
			var d deadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			events, keys = append(events, d.Event), append(keys, k)
		}
		if len(events) == 0 {
			return nil
		}
		for _, k := range keys {
			if err := tx.Bucket(deadBucket).Delete(k); err != nil {
				return err
			}
		}
		n = len(events)
		return changeDelivery(tx, sessionID, func(d *delivery) (bool, error) {
			d.Outbox = append(slices.Clip(d.Outbox), events...)
			d.Due, d.Retry = now, retry{}
			return false, nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("replay dead letters of session %s: %w", sessionID, err)
	}
	return n, nil
}

type lease struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

func (s *Store) AcquireLease(_ context.Context, name, owner string, now, until time.Time) (bool, error) {
	var ok bool
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(leasesBucket)
		var l lease
		found, err := getJSON(b, name, &l)
		if err != nil || (found && l.Until.After(now)) {
			return err
		}
		ok = true
		return putJSON(b, name, lease{Owner: owner, Until: until})
	})
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return ok, nil
}
