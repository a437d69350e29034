// Package bolt is the embedded hitl.Store, on bbolt: one file, pure Go, for
// local runs and single-binary installs.
//
// Each session is two JSON records: the session (with, while pending, its
// transcript), and beside it its delivery state (outbox, delivery lease,
// retry state) with the session's fields that events change, so that an
// event's writes decode and encode that small record only. The ids of its
// events are keys of a bucket of their own, remembered for
// hitl.DedupeSpan, so that no record grows with the pace of its
// conversation. Index buckets keyed by a
// fixed-width UTC time make DueOutboxes, VisitorsExpiring, IdleSessions and
// DeadLetters ordered range reads. bbolt serializes write transactions, so
// every method is atomic.
package bolt

import (
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// Buckets.
var (
	usersBucket      = []byte("users")      // user id → hitl.User
	sessionsBucket   = []byte("sessions")   // session id → sessionPart
	deliveriesBucket = []byte("deliveries") // session id → delivery
	convsBucket      = []byte("convs")      // provider \x00 conversation id → session id
	idemBucket       = []byte("idem")       // idempotency key → session id
	dueBucket        = []byte("due")        // due time \x00 session id → nothing
	visitorsBucket   = []byte("visitors")   // credentials expiry \x00 session id → nothing
	idleBucket       = []byte("idle")       // idle deadline \x00 session id → nothing
	deadBucket       = []byte("dead")       // dead time \x00 session id \x00 sequence → deadLetter
	leasesBucket     = []byte("leases")     // lease name → lease
	heldBucket       = []byte("held")       // provider \x00 conversation id \x00 held time \x00 event key → heldEvent
	heldExpBucket    = []byte("heldexp")    // expiry \x00 held key → nothing
	settingsBucket   = []byte("settings")   // setting name → value
	seenBucket       = []byte("seen")       // session id \x00 event id → when it was recorded
	seenExpBucket    = []byte("seenexp")    // when it may be forgotten \x00 seen key → nothing
)

// Store is the embedded store. Its methods are safe for concurrent use.
type Store struct {
	db     *bbolt.DB
	writes *committer // Record and Ack, the writes of every event
}

var _ hitl.Store = (*Store)(nil)

// Open opens or creates the store file at path. Only one process may have it
// open; a second Open fails after a second.
func Open(path string) (*Store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{usersBucket, sessionsBucket, deliveriesBucket, convsBucket, idemBucket, dueBucket, visitorsBucket, idleBucket, deadBucket, leasesBucket, heldBucket, heldExpBucket, settingsBucket, seenBucket, seenExpBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create buckets in %s: %w", path, err)
	}
	return &Store{db: db, writes: newCommitter(db)}, nil
}

// Close closes the store file, once the writes under way are committed.
func (s *Store) Close() error {
	s.writes.close()
	return s.db.Close()
}

// timeLayout formats times in keys: fixed width, so keys sort in time order
// and the time is the first len(timeLayout) bytes.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func timeKey(t time.Time) string { return t.UTC().Format(timeLayout) }

// indexed returns the session ids an index bucket (due, visitors, idle)
// lists, in time order, while within holds for their time key; at most
// limit.
func indexed(tx *bbolt.Tx, bucket []byte, limit int, within func(at string) bool) []string {
	var ids []string
	c := tx.Bucket(bucket).Cursor()
	for k, _ := c.First(); k != nil && len(ids) < limit && within(string(k[:len(timeLayout)])); k, _ = c.Next() {
		ids = append(ids, string(k[len(timeLayout)+1:]))
	}
	return ids
}

// indexedRecords reads, in one transaction, the sessions indexed lists,
// each as of gives it.
func indexedRecords[T any](s *Store, bucket []byte, limit int, within func(at string) bool, of func(*record) T) ([]T, error) {
	var out []T
	err := s.db.View(func(tx *bbolt.Tx) error {
		for _, id := range indexed(tx, bucket, limit, within) {
			r, err := loadExisting(tx, id)
			if err != nil {
				return err
			}
			out = append(out, of(r))
		}
		return nil
	})
	return out, err
}

func getJSON(b *bbolt.Bucket, key string, v any) (bool, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

func putJSON(b *bbolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

// notFound is hitl.ErrNotFound naming what was missing.
func notFound(what, id string) error {
	return fmt.Errorf("%s %s: %w", what, id, hitl.ErrNotFound)
}

// errNotHolder is returned when the caller does not hold the delivery lease
// it acts under.
var errNotHolder = hitl.Errorf(hitl.CodeConflict, "the delivery lease is not held by this owner")
