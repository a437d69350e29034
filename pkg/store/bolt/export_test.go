package bolt

import "go.etcd.io/bbolt"

// RememberedIDs counts the event ids the store keeps for de-duplication.
func (s *Store) RememberedIDs() (n int, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(seenBucket).Stats().KeyN
		return nil
	})
	return n, err
}
