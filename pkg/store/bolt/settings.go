package bolt

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

func (s *Store) Setting(_ context.Context, name string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(settingsBucket).Get([]byte(name)); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read setting %s: %w", name, err)
	}
	return out, nil
}

func (s *Store) SaveSetting(_ context.Context, name string, value []byte) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(settingsBucket).Put([]byte(name), value)
	})
	if err != nil {
		return fmt.Errorf("save setting %s: %w", name, err)
	}
	return nil
}
