//go:build bench

package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// closedSessions fills the table of e with n closed sessions: one is
// opened and stopped through the bridge, and the items of its partition
// (those whose key holds its id) are copied n-1 times under new ids. db
// must reach the table without being counted, and the table must hold
// nothing else yet. The session's user and conversation mapping are not
// copied: no scheduled read touches them, and moto_server writes about
// 500 items a second.
func closedSessions(t testing.TB, ctx context.Context, e *apptest.Env, p provider, db *dynamodb.Client, table string, n int) error {
	c := p.handoff(t, e)
	s, err := e.App.Bridge.StopSession(ctx, c.sessionID, "")
	if err != nil || s.Status != hitl.StatusClosed {
		return fmt.Errorf("stop the template session: %v (status %s)", err, s.Status)
	}
	// A Scan of the harness's own, nearly empty table, not counted: the
	// template's items, whatever the store's schema.
	out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("read the template session: %w", err)
	}
	var template []map[string]types.AttributeValue
	for _, item := range out.Items {
		if pk, ok := item["pk"].(*types.AttributeValueMemberS); ok && strings.Contains(pk.Value, s.ID) {
			template = append(template, item)
		}
	}
	if len(template) == 0 {
		return fmt.Errorf("no item of session %s has its id in its partition key", s.ID)
	}
	var puts []types.WriteRequest
	for i := 1; i < n; i++ {
		ids := strings.NewReplacer(
			s.ID, hitl.NewID("ses"), s.UserID, hitl.NewID("usr"),
			c.chatID, fmt.Sprintf("%s%08d", c.chatID[:max(0, len(c.chatID)-8)], i),
		)
		for _, item := range template {
			puts = append(puts, types.WriteRequest{PutRequest: &types.PutRequest{Item: renamed(item, ids)}})
		}
	}
	for batch := range slices.Chunk(puts, 25) {
		for len(batch) > 0 {
			out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: batch}})
			if err != nil {
				return fmt.Errorf("write closed sessions: %w", err)
			}
			batch = out.UnprocessedItems[table]
		}
	}
	return nil
}

// renamed copies an item with ids replaced in every string.
func renamed(item map[string]types.AttributeValue, ids *strings.Replacer) map[string]types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(item))
	for k, v := range item {
		out[k] = renamedValue(v, ids)
	}
	return out
}

func renamedValue(v types.AttributeValue, ids *strings.Replacer) types.AttributeValue {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return &types.AttributeValueMemberS{Value: ids.Replace(v.Value)}
	case *types.AttributeValueMemberL:
		l := make([]types.AttributeValue, len(v.Value))
		for i, e := range v.Value {
			l[i] = renamedValue(e, ids)
		}
		return &types.AttributeValueMemberL{Value: l}
	case *types.AttributeValueMemberM:
		return &types.AttributeValueMemberM{Value: renamed(v.Value, ids)}
	}
	return v
}

// dueWork makes n/2 visitor credentials due for renewal and n/2 outboxes due
// for delivery, on sessions opened through the bridge: tokens that expire
// within the refresh horizon, and events recorded under a delivery lease
// that ended (a deliverer that died). A platform whose visitors hold no
// credentials (SalesIQ) gets n outboxes due.
func dueWork(t testing.TB, ctx context.Context, e *apptest.Env, p provider, n int) error {
	now := time.Now().UTC()
	for i := range n {
		c := p.handoff(t, e)
		s, err := e.Store.GetSession(ctx, c.sessionID)
		if err != nil {
			return err
		}
		if i%2 == 0 && len(s.Visitor.Credentials) > 0 {
			v := s.Visitor
			v.CredentialsExpireAt = now.Add(30 * time.Minute)
			if err := e.Store.SaveVisitor(ctx, s.ID, v); err != nil {
				return fmt.Errorf("make a token due: %w", err)
			}
			continue
		}
		ev := hitl.Event{
			ID: hitl.EventID(p.name, s.ProviderConversationID, "bench-due"), Type: hitl.EventMessage,
			SessionID: s.ID, BotConversationID: s.BotConversationID, Provider: s.Provider, OccurredAt: now,
			Agent:   &hitl.Agent{ID: "agent@example.com", Name: "Jane"},
			Message: &hitl.Message{Type: hitl.TypeText, Text: "Are you still there?"},
			Channel: s.Channel, UserID: s.UserID,
		}
		if _, err := e.Store.Record(ctx, hitl.Change{SessionID: s.ID, Event: ev, At: now}, hitl.NewID("own"), now.Add(-time.Second)); err != nil {
			return fmt.Errorf("make an outbox due: %w", err)
		}
	}
	return nil
}
