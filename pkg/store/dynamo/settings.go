package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// settingItem is one setting: a small document the bridge keeps for itself.
type settingItem struct {
	PK    string `dynamodbav:"pk"`
	SK    string `dynamodbav:"sk"`
	Value []byte `dynamodbav:"value"`
}

const settingSK = "SETTING"

func (s *Store) Setting(ctx context.Context, name string) ([]byte, error) {
	var it settingItem
	found, err := s.getItem(ctx, key(settingPrefix+name, settingSK), &it)
	if err != nil {
		return nil, fmt.Errorf("read setting %s: %w", name, err)
	}
	if !found {
		return nil, nil
	}
	return it.Value, nil
}

func (s *Store) SaveSetting(ctx context.Context, name string, value []byte) error {
	item, err := attributevalue.MarshalMap(settingItem{PK: settingPrefix + name, SK: settingSK, Value: value})
	if err == nil {
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item})
	}
	if err != nil {
		return fmt.Errorf("save setting %s: %w", name, err)
	}
	return nil
}
