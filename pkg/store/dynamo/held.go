package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// heldItem is a provider event held for a conversation not yet recorded:
// one item per event under the conversation's partition, gone by TTL.
type heldItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	HeldAt    string `dynamodbav:"heldAt"`
	Until     string `dynamodbav:"until"`
	Event     string `dynamodbav:"event"` // hitl.ProviderEvent JSON
	ExpiresAt int64  `dynamodbav:"expiresAt"`
}

func heldPK(provider, conversationID string) string {
	return heldPrefix + provider + "#" + conversationID
}

func (s *Store) Hold(ctx context.Context, pe hitl.ProviderEvent, until time.Time) error {
	raw, err := json.Marshal(pe)
	if err == nil {
		var item map[string]types.AttributeValue
		item, err = attributevalue.MarshalMap(heldItem{
			PK: heldPK(pe.Provider, pe.ConversationID), SK: heldPrefix + idDigest(pe.Key),
			HeldAt: ts(time.Now()), Until: ts(until), Event: string(raw), ExpiresAt: ttl(until),
		})
		if err == nil {
			_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item, ConditionExpression: notExists})
		}
	}
	if _, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
		return nil // held already
	}
	if err != nil {
		return fmt.Errorf("hold %s event %s of conversation %s: %w", pe.Provider, pe.Key, pe.ConversationID, err)
	}
	return nil
}

func (s *Store) Held(ctx context.Context, provider, conversationID string, now time.Time) ([]hitl.ProviderEvent, error) {
	out, err := s.held(ctx, provider, conversationID, now)
	if err != nil {
		return nil, fmt.Errorf("read held events of %s conversation %s: %w", provider, conversationID, err)
	}
	return out, nil
}

func (s *Store) held(ctx context.Context, provider, conversationID string, now time.Time) ([]hitl.ProviderEvent, error) {
	expr, err := expression.NewBuilder().WithKeyCondition(expression.Key("pk").Equal(value(heldPK(provider, conversationID)))).Build()
	if err != nil {
		return nil, err
	}
	items, err := query[heldItem](ctx, s, expr, true)
	if err != nil {
		return nil, err
	}
	// TTL deletes lag: skip what has expired.
	items = slices.DeleteFunc(items, func(it heldItem) bool { return it.Until <= ts(now) })
	slices.SortStableFunc(items, func(a, b heldItem) int { return strings.Compare(a.HeldAt, b.HeldAt) })
	out := make([]hitl.ProviderEvent, 0, len(items))
	for _, it := range items {
		var pe hitl.ProviderEvent
		if err := json.Unmarshal([]byte(it.Event), &pe); err != nil {
			return nil, fmt.Errorf("decode held event: %w", err)
		}
		out = append(out, pe)
	}
	return out, nil
}
