package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// heldEvent is a provider event held for a conversation not yet recorded.
type heldEvent struct {
	Until time.Time          `json:"until"`
	Event hitl.ProviderEvent `json:"event"`
}

// heldPurge bounds how many expired held events one Hold deletes, so the
// bucket stays small without a sweep of its own.
const heldPurge = 16

func heldPrefix(provider, conversationID string) []byte {
	return []byte(provider + "\x00" + conversationID + "\x00")
}

func (s *Store) Hold(_ context.Context, pe hitl.ProviderEvent, until time.Time) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		held, exp := tx.Bucket(heldBucket), tx.Bucket(heldExpBucket)
		if err := purgeHeld(held, exp, time.Now()); err != nil {
			return err
		}
		prefix := heldPrefix(pe.Provider, pe.ConversationID)
		c := held.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if string(k[len(prefix)+len(timeLayout)+1:]) == pe.Key {
				return nil // held already
			}
		}
		key := append(prefix, timeKey(time.Now())+"\x00"+pe.Key...)
		if err := putJSON(held, string(key), heldEvent{Until: until, Event: pe}); err != nil {
			return err
		}
		return exp.Put(append([]byte(timeKey(until)+"\x00"), key...), nil)
	})
	if err != nil {
		return fmt.Errorf("hold %s event %s of conversation %s: %w", pe.Provider, pe.Key, pe.ConversationID, err)
	}
	return nil
}

// purgeHeld deletes up to heldPurge held events that expired before now.
func purgeHeld(held, exp *bbolt.Bucket, now time.Time) error {
	c := exp.Cursor()
	before := timeKey(now)
	for i, k := 0, firstKey(c); i < heldPurge && k != nil && string(k[:len(timeLayout)]) < before; i, k = i+1, firstKey(c) {
		if err := held.Delete(k[len(timeLayout)+1:]); err != nil {
			return err
		}
		if err := exp.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func firstKey(c *bbolt.Cursor) []byte {
	k, _ := c.First()
	return k
}

func (s *Store) Held(_ context.Context, provider, conversationID string, now time.Time) ([]hitl.ProviderEvent, error) {
	var out []hitl.ProviderEvent
	err := s.db.View(func(tx *bbolt.Tx) error {
		prefix := heldPrefix(provider, conversationID)
		held := tx.Bucket(heldBucket)
		c := held.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			var h heldEvent
			if _, err := getJSON(held, string(k), &h); err != nil {
				return err
			}
			if h.Until.After(now) {
				out = append(out, h.Event)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read held events of %s conversation %s: %w", provider, conversationID, err)
	}
	return out, nil
}
