package dynamo

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// Event ids are remembered for hitl.DedupeSpan in two places, so that
// neither a conversation's length nor its pace grows an item every event
// rewrites.
//
// The delivery item's set ids holds the digests of the ids recorded since
// the last spill: Record's condition rejects those in the write itself.
// When the set reaches spillAt ids, the Ack of the lease holder spills it:
// it first puts a spill item (those digests, kept until DedupeSpan after the
// latest of them was recorded), then, in its own write to the delivery
// item, removes them from the set, counts the spill (sg) and notes when the
// spilled ids may all be forgotten (su).
//
// Record must reject the ids of live spills too. Each Store keeps, per
// session, the spilled ids it knows and the spill count they are complete
// up to; Record's condition requires that count (sg = known) unless every
// spill may be forgotten (su < now). When another Store spilled meanwhile,
// the condition fails; the Store then reads the session's live spills (one
// strongly consistent Query: spill items are written before the count that
// names them) and tries again. A Store knows what it spilled itself, so a
// conversation served by one process reads nothing.

// spillCache is what a Store knows of a session's spills.
type spillCache struct {
	spills int64                // the spill count ids is complete up to
	ids    map[string]time.Time // digest → when it may be forgotten
}

// spillItem holds the digests of one spill.
type spillItem struct {
	PK        string   `dynamodbav:"pk"`
	SK        string   `dynamodbav:"sk"`
	IDs       []string `dynamodbav:"ids,stringset"`
	Until     string   `dynamodbav:"until"`
	ExpiresAt int64    `dynamodbav:"expiresAt"`
}

// spill is a spill put, to be committed by the Ack's write.
type spill struct {
	ids   []string
	from  int64  // the spill count before it
	until string // the delivery item's su after it
}

// knownSpills returns the spill count this Store's knowledge of a
// session's spills is complete up to, and whether digest is among the ids
// it knows that are still remembered at now.
func (s *Store) knownSpills(sessionID, digest string, now time.Time) (spills int64, seen bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.spilled[sessionID]
	if c == nil {
		return 0, false
	}
	until, ok := c.ids[digest]
	return c.spills, ok && until.After(now)
}

// recordedWith notes that a Record's condition held on d, the item its
// write returned, with this Store's knowledge complete up to known spills:
// either d counts as many spills, or every spill of d may be forgotten and
// nothing else need be known.
func (s *Store) recordedWith(sessionID string, known int64, d *deliveryItem) {
	s.mu.Lock()
	c := s.spilled[sessionID]
	s.mu.Unlock()
	if c == nil || d.Spills != known {
		s.setSpills(sessionID, &spillCache{spills: d.Spills, ids: map[string]time.Time{}})
	}
}

func (s *Store) setSpills(sessionID string, c *spillCache) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.spilled) >= 10000 {
		clear(s.spilled)
	}
	s.spilled[sessionID] = c
}

// committed adds a spill this Store committed to what it knows, if it knew
// every spill before.
func (s *Store) committed(sessionID string, sp *spill) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.spilled[sessionID]
	if c == nil || c.spills != sp.from {
		delete(s.spilled, sessionID)
		return
	}
	until := parseTS(sp.until)
	for _, id := range sp.ids {
		c.ids[id] = until
	}
	c.spills = sp.from + 1
	// Forget the ids whose span ended a span before this spill's ids were
	// recorded: no clock still needs them.
	for id, u := range c.ids {
		if u.Before(until.Add(-2 * hitl.DedupeSpan)) {
			delete(c.ids, id)
		}
	}
}

// loadSpills reads the session's spills that are remembered at now, which
// d counts, into what the Store knows.
func (s *Store) loadSpills(ctx context.Context, sessionID string, d *deliveryItem, now time.Time) error {
	kc := expression.Key("pk").Equal(value(sessionPrefix + sessionID)).
		And(expression.Key("sk").Between(value(spillPrefix+ts(now)), value(spillPrefix+"~")))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return err
	}
	c := &spillCache{spills: d.Spills, ids: map[string]time.Time{}}
	items, err := query[spillItem](ctx, s, expr, true)
	if err != nil {
		return fmt.Errorf("read spilled event ids: %w", err)
	}
	for _, it := range items {
		for _, id := range it.IDs {
			c.ids[id] = parseTS(it.Until)
		}
	}
	s.setSpills(sessionID, c)
	return nil
}

// putSpill writes the spill item of the ids d remembers, whose Ack will
// commit it. The ids are kept until DedupeSpan after the last event d saw
// recorded (or now, if later: a spill never shortens the span).
func (s *Store) putSpill(ctx context.Context, sessionID string, d *deliveryItem) (*spill, error) {
	last := time.Now()
	if at := parseTS(d.At); at.After(last) {
		last = at
	}
	until := last.Add(hitl.DedupeSpan)
	item, err := attributevalue.MarshalMap(spillItem{
		PK: sessionPrefix + sessionID, SK: spillPrefix + ts(until) + "#" + rand.Text(),
		IDs: d.Recent, Until: ts(until), ExpiresAt: ttl(until),
	})
	if err != nil {
		return nil, err
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return nil, fmt.Errorf("spill remembered event ids: %w", err)
	}
	return &spill{ids: d.Recent, from: d.Spills, until: max(ts(until), d.SpillUntil)}, nil
}

// spillsAre holds while the delivery item counts n spills.
func spillsAre(n int64) expression.ConditionBuilder {
	if n == 0 {
		return name(attrSpills).AttributeNotExists()
	}
	return name(attrSpills).Equal(value(n))
}

// commitSpill adds to up the removal of the spilled ids from the set.
func commitSpill(up expression.UpdateBuilder, sp *spill) expression.UpdateBuilder {
	return up.Delete(name(attrRecent), value(&types.AttributeValueMemberSS{Value: sp.ids})).
		Set(name(attrSpills), value(sp.from+1)).
		Set(name(attrSpillUntil), value(sp.until))
}
