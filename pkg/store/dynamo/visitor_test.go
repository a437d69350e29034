package dynamo_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/dynamo"
)

// readKeys is a dynamo.API that notes the partition key of every item a
// GetItem or BatchGetItem asks for.
type readKeys struct {
	dynamo.API
	pks []string
}

func (r *readKeys) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	r.note(in.Key)
	return r.API.GetItem(ctx, in, optFns...)
}

func (r *readKeys) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	for _, ka := range in.RequestItems {
		for _, k := range ka.Keys {
			r.note(k)
		}
	}
	return r.API.BatchGetItem(ctx, in, optFns...)
}

func (r *readKeys) note(k map[string]types.AttributeValue) {
	r.pks = append(r.pks, k["pk"].(*types.AttributeValueMemberS).Value)
}

// TestVisitorsExpiringReadsSessionItemsOnly: the scheduled refresh reads
// the session item of each due session, not its delivery item, and
// renewing writes the session item alone.
func TestVisitorsExpiringReadsSessionItemsOnly(t *testing.T) {
	ctx := context.Background()
	calls := &awstest.Counter{}
	db := awstest.DynamoDB(t, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, calls.AddTo) })
	table := fmt.Sprintf("hitl-test-%d", tables.Add(1))
	if err := dynamo.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	reads := &readKeys{API: db}
	st := dynamo.New(reads, table)
	for _, id := range []string{"s1", "s2"} {
		openSession(t, st, id) // credentials expire at t0+1h
	}
	reads.pks = nil
	calls.Reset()
	due, err := st.VisitorsExpiring(ctx, t0.Add(2*time.Hour), 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("VisitorsExpiring = %v, %v", due, err)
	}
	if got := calls.Calls(); fmt.Sprint(got) != fmt.Sprint(map[string]int{"BatchGetItem": 1, "Query": 1}) {
		t.Errorf("calls = %v, want a Query of the index and a BatchGetItem", got)
	}
	if !slices.Equal(reads.pks, []string{"SESSION#s1", "SESSION#s2"}) {
		t.Errorf("items read %q, want the two session items only", reads.pks)
	}
	calls.Reset()
	v := due[0].Visitor
	v.CredentialsExpireAt = t0.Add(9 * time.Hour)
	if err := st.SaveVisitor(ctx, due[0].SessionID, v); err != nil {
		t.Fatal(err)
	}
	if got := calls.Calls(); fmt.Sprint(got) != fmt.Sprint(map[string]int{"UpdateItem": 1}) {
		t.Errorf("SaveVisitor calls = %v, want one UpdateItem", got)
	}
}

// TestLegacyVisitor: a session item written before visitor credentials
// were opaque (LiveChat's token, its expiry and cookies as attributes)
// reads as credentials in LiveChat's layout, stays due by its expiry, and
// loses the old attributes when its visitor is saved.
func TestLegacyVisitor(t *testing.T) {
	ctx := context.Background()
	db := awstest.DynamoDB(t)
	st := newStore(t, db)
	table := fmt.Sprintf("hitl-test-%d", tables.Load())
	s := openSession(t, st, "s1")
	expiry := t0.Add(30 * time.Minute)
	str := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": str("SESSION#s1"), "sk": str("SESSION")},
		UpdateExpression: aws.String("SET visitorToken = :t, visitorTokenExpiresAt = :e, visitorCookies = :c, gsi2sk = :e " +
			"REMOVE visitorCredentials, visitorCredentialsExpireAt"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":t": str("dal:tok"), ":e": str(expiry.Format("2006-01-02T15:04:05.000000000Z")),
			":c": &types.AttributeValueMemberL{Value: []types.AttributeValue{str("__lc_cid=v1"), str("__lc_cst=secret")}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := hitl.Visitor{ID: "v1", Credentials: hitl.Credentials(`{"token":"dal:tok","cookies":["__lc_cid=v1","__lc_cst=secret"]}`), CredentialsExpireAt: expiry}
	got, err := st.GetSession(ctx, s.ID)
	if err != nil || !reflect.DeepEqual(got.Visitor, want) {
		t.Fatalf("legacy visitor read as %q %v, %v; want %s", []byte(got.Visitor.Credentials), got.Visitor.CredentialsExpireAt, err, want.Credentials)
	}
	due, err := st.VisitorsExpiring(ctx, t0.Add(time.Hour), 10)
	if err != nil || len(due) != 1 || !reflect.DeepEqual(due[0], hitl.ExpiringVisitor{SessionID: s.ID, Provider: s.Provider, Visitor: want}) {
		t.Fatalf("VisitorsExpiring = %v, %v; want the legacy visitor", due, err)
	}

	renewed := hitl.Visitor{ID: "v1", Credentials: hitl.Credentials("new"), CredentialsExpireAt: t0.Add(8 * time.Hour)}
	if err := st.SaveVisitor(ctx, s.ID, renewed); err != nil {
		t.Fatal(err)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": str("SESSION#s1"), "sk": str("SESSION")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, attr := range []string{"visitorToken", "visitorTokenExpiresAt", "visitorCookies"} {
		if _, ok := out.Item[attr]; ok {
			t.Errorf("the saved visitor left legacy attribute %s", attr)
		}
	}
	if got, err := st.GetSession(ctx, s.ID); err != nil || !reflect.DeepEqual(got.Visitor, renewed) {
		t.Errorf("visitor after save %q, %v", []byte(got.Visitor.Credentials), err)
	}
}
