package bolt

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// OpenSessions scans the sessions: the embedded store serves one
// installation's operator page, where that is cheap enough.
func (s *Store) OpenSessions(_ context.Context, limit int) ([]hitl.Session, error) {
	var open []hitl.Session
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(sessionsBucket).ForEach(func(k, _ []byte) error {
			r, err := loadExisting(tx, string(k))
			if err != nil {
				return err
			}
			if !r.Session.Closed() {
				open = append(open, r.session())
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list open sessions: %w", err)
	}
	slices.SortFunc(open, func(a, b hitl.Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return open[:min(len(open), limit)], nil
}
