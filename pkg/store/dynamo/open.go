package dynamo

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// OpenSessions reads the delivery partitions, where every session not
// closed has its delivery item (the sweep reads them the same way), then
// those sessions.
func (s *Store) OpenSessions(ctx context.Context, limit int) ([]hitl.Session, error) {
	var ids []string
	for shard := range deliveryShards {
		expr, err := expression.NewBuilder().
			WithKeyCondition(expression.Key("pk").Equal(value(fmt.Sprintf("%s%d", deliveryPrefix, shard)))).
			WithFilter(name(attrClosed).AttributeNotExists()).
			WithProjection(expression.NamesList(name("sk"))).
			Build()
		if err != nil {
			return nil, err
		}
		p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
			TableName: &s.table, KeyConditionExpression: expr.KeyCondition(), FilterExpression: expr.Filter(),
			ProjectionExpression: expr.Projection(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list open sessions: %w", err)
			}
			var items []deliveryItem
			if err := attributevalue.UnmarshalListOfMaps(page.Items, &items); err != nil {
				return nil, fmt.Errorf("decode delivery items: %w", err)
			}
			for _, d := range items {
				ids = append(ids, d.SK)
			}
		}
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
