package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// Deferred sessions (hitl.Bridge.CreateDeferred) open at the end user's
// first message: BindUser, UnbindUser and AppendTranscript act on them
// while they are not yet open (hitl.StatusPending); ExtendIdle and
// IdleSessions keep their idle deadline.

func (s *Store) BindUser(_ context.Context, id, userID string, at, staleBefore time.Time) (hitl.Session, error) {
	var bound hitl.Session
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return change(tx, id, func(r *record) (bool, error) {
			st := r.Session.Status
			if st != hitl.StatusPending && !(st == hitl.StatusOpening && r.UpdatedAt.Before(staleBefore)) {
				return false, hitl.Errorf(hitl.CodeConflict, "session %s is %s, not pending", id, st)
			}
			r.Session.Status, r.Session.UserID, r.UpdatedAt = hitl.StatusOpening, userID, at
			bound = r.session()
			return false, nil
		})
	})
	if err != nil {
		return hitl.Session{}, fmt.Errorf("bind user %s to session %s: %w", userID, id, err)
	}
	return bound, nil
}

func (s *Store) UnbindUser(_ context.Context, id string, boundAt time.Time) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return change(tx, id, func(r *record) (bool, error) {
			if r.Session.Status != hitl.StatusOpening || !r.UpdatedAt.Equal(boundAt) {
				return true, nil
			}
			r.Session.Status, r.Session.UserID = hitl.StatusPending, ""
			return false, nil
		})
	})
	if err != nil {
		return fmt.Errorf("unbind the user of session %s: %w", id, err)
	}
	return nil
}

func (s *Store) AppendTranscript(_ context.Context, id string, e hitl.TranscriptEntry, at time.Time) error {
	size, err := entryBytes(e)
	if err != nil {
		return fmt.Errorf("encode transcript entry: %w", err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		return change(tx, id, func(r *record) (bool, error) {
			if r.Session.Status != hitl.StatusPending {
				return false, hitl.Errorf(hitl.CodeConflict, "session %s is %s, not pending", id, r.Session.Status)
			}
			total := size
			for _, old := range r.Transcript {
				n, err := entryBytes(old)
				if err != nil {
					return false, err
				}
				total += n
			}
			if total > hitl.MaxTranscriptBytes {
				return false, hitl.Errorf(hitl.CodeRateLimited, "the transcript of session %s is full", id)
			}
			r.Transcript = append(slices.Clip(r.Transcript), e)
			r.UpdatedAt = at
			return false, nil
		})
	})
	if err != nil {
		return fmt.Errorf("append to the transcript of session %s: %w", id, err)
	}
	return nil
}

func entryBytes(e hitl.TranscriptEntry) (int, error) {
	raw, err := json.Marshal(e)
	return len(raw), err
}

func (s *Store) ExtendIdle(_ context.Context, id string, until time.Time) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return changeDelivery(tx, id, func(d *delivery) (bool, error) {
			d.IdleUntil = until
			return d.Closed, nil
		})
	})
	if err != nil {
		return fmt.Errorf("extend the idle deadline of session %s: %w", id, err)
	}
	return nil
}

func (s *Store) IdleSessions(_ context.Context, now time.Time, limit int) ([]hitl.Session, error) {
	end := timeKey(now)
	out, err := indexedRecords(s, idleBucket, limit, func(at string) bool { return at <= end }, (*record).session)
	if err != nil {
		return nil, fmt.Errorf("list sessions idle at %s: %w", end, err)
	}
	return out, nil
}
