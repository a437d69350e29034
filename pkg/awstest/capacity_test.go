package awstest_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/dynamo"
)

func TestMain(m *testing.M) { os.Exit(awstest.Run(m)) }

// The meter bills each write on the larger of the item before and after it,
// in started KB, a failed condition included, and 1 WRU more for each index
// entry put or deleted.
func TestMeterBillsWritesByItemSize(t *testing.T) {
	ctx := context.Background()
	db := awstest.DynamoDB(t)
	if err := dynamo.CreateTable(ctx, db, "meter"); err != nil {
		t.Fatal(err)
	}
	m, err := awstest.NewMeter(ctx, db, db, "meter")
	if err != nil {
		t.Fatal(err)
	}
	key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "P"}, "sk": &types.AttributeValueMemberS{Value: "S"}}
	item := func(dataBytes int, indexed bool) map[string]types.AttributeValue {
		it := map[string]types.AttributeValue{"pk": key["pk"], "sk": key["sk"], "data": &types.AttributeValueMemberS{Value: strings.Repeat("x", dataBytes)}}
		if indexed {
			it["gsi1pk"], it["gsi1sk"] = &types.AttributeValueMemberS{Value: "I"}, &types.AttributeValueMemberS{Value: "1"}
		}
		return it
	}
	table := aws.String("meter")
	absent := aws.String("attribute_not_exists(pk)")
	steps := []struct {
		name      string
		write     func() error
		refused   bool // by its condition
		wru, iwru float64
	}{
		{"put of 1.5 KB, indexed", func() error {
			_, err := m.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item(1500, true), ConditionExpression: absent})
			return err
		}, false, 2, 1},
		{"update to 2.5 KB, same index key", func() error {
			_, err := m.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: table, Key: key, UpdateExpression: aws.String("SET #d = :d"),
				ExpressionAttributeNames: map[string]string{"#d": "data"}, ExpressionAttributeValues: map[string]types.AttributeValue{":d": item(2500, false)["data"]}})
			return err
		}, false, 3, 0},
		{"put refused by its condition", func() error {
			_, err := m.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item(10, false), ConditionExpression: absent})
			return err
		}, true, 3, 0},
		{"delete refused by its condition", func() error {
			_, err := m.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: table, Key: key, ConditionExpression: aws.String("attribute_not_exists(#d)"),
				ExpressionAttributeNames: map[string]string{"#d": "data"}})
			return err
		}, true, 3, 0},
		{"delete", func() error {
			_, err := m.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: table, Key: key})
			return err
		}, false, 3, 1},
		{"update of a missing item refused by its condition", func() error {
			_, err := m.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: table, Key: key, UpdateExpression: aws.String("SET #d = :d"),
				ConditionExpression: aws.String("attribute_exists(pk)"), ExpressionAttributeNames: map[string]string{"#d": "data"},
				ExpressionAttributeValues: map[string]types.AttributeValue{":d": &types.AttributeValueMemberS{Value: "y"}}})
			return err
		}, true, 1, 0},
	}
	for _, s := range steps {
		before, _ := m.Snapshot()
		err := s.write()
		if _, refused := errors.AsType[*types.ConditionalCheckFailedException](err); refused != s.refused || err != nil && !refused {
			t.Fatalf("%s: %v", s.name, err)
		}
		after, _ := m.Snapshot()
		if got := after.Minus(before); got.WRU != s.wru || got.IndexWRU != s.iwru {
			t.Errorf("%s: %.0f WRU and %.0f index WRU; want %.0f and %.0f", s.name, got.WRU, got.IndexWRU, s.wru, s.iwru)
		}
	}
}
