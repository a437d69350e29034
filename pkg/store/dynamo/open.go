package dynamo

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// OpenSessions reads the delivery partitions, where every session not
// closed has its delivery item (the sweep reads them the same way), then
// those sessions.
func (s *Store) OpenSessions(ctx context.Context, limit int) ([]hitl.Session, error) {
	items, err := s.deliveryItems(ctx, name(attrClosed).AttributeNotExists(), expression.NamesList(name("sk")))
	if err != nil {
		return nil, fmt.Errorf("list open sessions: %w", err)
	}
	ids := make([]string, len(items))
	for i, d := range items {
		ids[i] = d.SK
	}
	open, err := s.sessions(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read open sessions: %w", err)
	}
	open = slices.DeleteFunc(open, hitl.Session.Closed)
	slices.SortFunc(open, cmpNewest)
	return open[:min(len(open), limit)], nil
}

// cmpNewest orders sessions newest first, then by id.
func cmpNewest(a, b hitl.Session) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}
