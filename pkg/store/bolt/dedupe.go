package bolt

import (
	"bytes"
	"encoding/binary"
	"time"

	"go.etcd.io/bbolt"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// forgetPerRecord bounds the expired ids a Record deletes, so that its cost
// stays flat after a burst; the ids expire at the pace they were recorded.
const forgetPerRecord = 8

func seenKey(sessionID, eventID string) []byte {
	return []byte(sessionID + "\x00" + eventID)
}

// remembered reports whether the session recorded eventID within
// hitl.DedupeSpan before now.
func remembered(tx *bbolt.Tx, sessionID, eventID string, now time.Time) (bool, error) {
	v := tx.Bucket(seenBucket).Get(seenKey(sessionID, eventID))
	if len(v) != 8 {
		return false, nil
	}
	at := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
	return now.Sub(at) <= hitl.DedupeSpan, nil
}

// remember notes that the session recorded eventID at at, and forgets a
// few ids whose span has ended.
func remember(tx *bbolt.Tx, sessionID, eventID string, at time.Time) error {
	seen, exp := tx.Bucket(seenBucket), tx.Bucket(seenExpBucket)
	key := seenKey(sessionID, eventID)
	if err := seen.Put(key, binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))); err != nil {
		return err
	}
	if err := exp.Put(append([]byte(timeKey(at.Add(hitl.DedupeSpan))+"\x00"), key...), nil); err != nil {
		return err
	}
	end := []byte(timeKey(at))
	c := exp.Cursor()
	for range forgetPerRecord {
		k, _ := c.First()
		if k == nil || bytes.Compare(k[:len(timeLayout)], end) >= 0 {
			break
		}
		key := bytes.Clone(k[len(timeLayout)+1:])
		// The id may have been recorded again since: keep it then.
		if v := seen.Get(key); len(v) == 8 && time.Unix(0, int64(binary.BigEndian.Uint64(v))).Add(hitl.DedupeSpan).Before(at) {
			if err := seen.Delete(key); err != nil {
				return err
			}
		}
		if err := exp.Delete(bytes.Clone(k)); err != nil {
			return err
		}
	}
	return nil
}
