// Package bolttest gives tests an embedded store of their own.
package bolttest

import (
	"path/filepath"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt"
)

// Open opens a store in a fresh temporary directory of tb and closes it
// when tb ends.
func Open(tb testing.TB) *bolt.Store {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "hitl.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Error(err)
		}
	})
	return st
}
