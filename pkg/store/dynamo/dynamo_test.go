package dynamo_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/dynamo"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Run(m)) }

var tables atomic.Int64

// newStore returns a store on a fresh table of db.
func newStore(t *testing.T, db *dynamodb.Client) *dynamo.Store {
	t.Helper()
	table := fmt.Sprintf("hitl-test-%d", tables.Add(1))
	if err := dynamo.CreateTable(context.Background(), db, table); err != nil {
		t.Fatal(err)
	}
	return dynamo.New(db, table)
}

func TestContract(t *testing.T) {
	db := awstest.DynamoDB(t)
	storetest.Run(t, func(t *testing.T) hitl.Store { return newStore(t, db) })
}

func TestCreateTable(t *testing.T) {
	ctx := context.Background()
	db := awstest.DynamoDB(t)
	newStore(t, db)
	table := fmt.Sprintf("hitl-test-%d", tables.Load())
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Table
	var got []string
	for _, k := range d.KeySchema {
		got = append(got, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
	}
	for _, g := range d.GlobalSecondaryIndexes {
		got = append(got, aws.ToString(g.IndexName)+"="+string(g.Projection.ProjectionType))
		for _, k := range g.KeySchema {
			got = append(got, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
		}
	}
	want := "pk:HASH sk:RANGE gsi1=KEYS_ONLY gsi1pk:HASH gsi1sk:RANGE gsi2=KEYS_ONLY gsi2pk:HASH gsi2sk:RANGE gsi3=KEYS_ONLY gsi3pk:HASH gsi3sk:RANGE"
	if strings.Join(got, " ") != want {
		t.Errorf("schema = %s, want %s", strings.Join(got, " "), want)
	}
	if d.BillingModeSummary == nil || d.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing mode = %+v, want on-demand", d.BillingModeSummary)
	}
	ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; aws.ToString(d.AttributeName) != "expiresAt" || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("TTL = %s %s, want expiresAt ENABLED", aws.ToString(d.AttributeName), d.TimeToLiveStatus)
	}
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func openSession(t *testing.T, st hitl.Store, id string) hitl.Session {
	t.Helper()
	ctx := context.Background()
	s := hitl.Session{ID: id, UserID: "usr_1", Provider: hitl.LiveChat, Channel: hitl.ChannelNative, BotConversationID: "bc", Status: hitl.StatusOpening, CreatedAt: t0, UpdatedAt: t0}
	if _, err := st.CreateSession(ctx, s, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.Opened(ctx, id, hitl.Opened{ConversationID: "conv-" + id, Visitor: hitl.Visitor{ID: "v1", Token: "secret", TokenExpiresAt: t0.Add(time.Hour)}}, t0); err != nil {
		t.Fatal(err)
	}
	return s
}

func message(s hitl.Session, id, text string) hitl.Change {
	return hitl.Change{SessionID: s.ID, At: t0, Event: hitl.Event{
		ID: id, Type: hitl.EventMessage, SessionID: s.ID, BotConversationID: s.BotConversationID, Provider: s.Provider,
		OccurredAt: t0, Agent: &hitl.Agent{ID: "ag1", Name: "Grace"}, Message: &hitl.Message{Type: hitl.TypeText, Text: text},
		Channel: s.Channel, UserID: s.UserID,
	}}
}

func TestCallsPerOperation(t *testing.T) {
	ctx := context.Background()
	calls := &awstest.Counter{}
	st := newStore(t, awstest.DynamoDB(t, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, calls.AddTo) }))
	s := openSession(t, st, "s1")

	check := func(what string, want map[string]int) {
		t.Helper()
		got := calls.Calls()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: calls = %v, want %v", what, got, want)
		}
		calls.Reset()
	}
	calls.Reset()
	if _, err := st.SessionByConversation(ctx, s.Provider, "conv-s1"); err != nil {
		t.Fatal(err)
	}
	check("SessionByConversation", map[string]int{"GetItem": 1})
	if _, err := st.GetSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	check("GetSession", map[string]int{"GetItem": 1})

	for i := range 3 {
		owner := fmt.Sprintf("o%d", i)
		r, err := st.Record(ctx, message(s, fmt.Sprintf("e%d", i), "hi"), owner, t0.Add(time.Minute))
		if err != nil || !r.Leased {
			t.Fatalf("Record = %+v, %v", r, err)
		}
		check("Record", map[string]int{"UpdateItem": 1})
		if more, err := st.Ack(ctx, s.ID, owner, 1, nil); err != nil || more {
			t.Fatalf("Ack = %v, %v", more, err)
		}
		check("Ack", map[string]int{"UpdateItem": 1})
	}

	// Duplicates and appends under someone else's lease are one call too.
	if r, err := st.Record(ctx, message(s, "e0", "hi"), "o9", t0.Add(time.Minute)); err != nil || r.Applied {
		t.Fatalf("Record of a duplicate = %+v, %v", r, err)
	}
	check("Record of a duplicate", map[string]int{"UpdateItem": 1})
	if _, err := st.Record(ctx, message(s, "e10", "hi"), "o10", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Record(ctx, message(s, "e11", "hi"), "o11", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	check("Record under another's lease", map[string]int{"UpdateItem": 2})
	if more, err := st.Ack(ctx, s.ID, "o10", 1, nil); err != nil || !more {
		t.Fatalf("Ack = %v, %v; want more", more, err)
	}
	check("Ack with an append", map[string]int{"UpdateItem": 2})
	if _, ok, err := st.Claim(ctx, s.ID, "o12", t0, t0.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	check("Claim", map[string]int{"UpdateItem": 1})
	if _, err := st.DueOutboxes(ctx, t0.Add(time.Hour), 10); err != nil {
		t.Fatal(err)
	}
	check("DueOutboxes", map[string]int{"Query": 1})
}

func TestOutboxFull(t *testing.T) {
	// With the limit lowered, the store's own condition refuses; at the
	// default, moto_server (which miscounts the size of a growing item)
	// refuses first, and the store reports the same.
	for _, limit := range []int{100 << 10, 0} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t, awstest.DynamoDB(t))
			if limit > 0 {
				st.SetMaxOutboxBytes(limit)
			}
			s := openSession(t, st, "s1")
			text := strings.Repeat("x", 10<<10)
			var err error
			for i := 0; err == nil; i++ {
				if i > 40 {
					t.Fatal("the outbox took more than 400 KB")
				}
				_, err = st.Record(ctx, message(s, fmt.Sprintf("e%d", i), text), "o1", t0.Add(time.Minute))
			}
			if hitl.ErrorCode(err) != hitl.CodeRateLimited {
				t.Fatalf("Record into a full outbox: err = %v, want code %s", err, hitl.CodeRateLimited)
			}
			pending, ok, err := st.Claim(ctx, s.ID, "o2", t0.Add(time.Hour), t0.Add(2*time.Hour))
			if err != nil || !ok {
				t.Fatalf("Claim = %v, %v", ok, err)
			}
			if _, err := st.Ack(ctx, s.ID, "o2", len(pending), nil); err != nil {
				t.Fatal(err)
			}
			if r, err := st.Record(ctx, message(s, "after", text), "o3", t0.Add(time.Minute)); err != nil || !r.Applied {
				t.Errorf("Record after the outbox drained = %+v, %v", r, err)
			}
		})
	}
}

func TestRecentIDsBounded(t *testing.T) {
	ctx := context.Background()
	db := awstest.DynamoDB(t)
	st := newStore(t, db)
	s := openSession(t, st, "s1")
	for i := range 130 {
		owner := fmt.Sprintf("o%d", i)
		// One event a minute: past the first hundred, each is older than
		// the de-duplication span.
		c := message(s, fmt.Sprintf("e%d", i), "hi")
		c.At = t0.Add(time.Duration(i) * time.Minute)
		if _, err := st.Record(ctx, c, owner, c.At.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Ack(ctx, s.ID, owner, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(fmt.Sprintf("hitl-test-%d", tables.Load())),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "SESSION#s1"}, "sk": &types.AttributeValueMemberS{Value: "SESSION"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if recent := out.Item["recent"].(*types.AttributeValueMemberL).Value; len(recent) != 100 {
		t.Errorf("the session remembers %d event ids, want 100", len(recent))
	}
	if times := out.Item["recentAt"].(*types.AttributeValueMemberL).Value; len(times) != 100 {
		t.Errorf("the session keeps %d recent times, want 100", len(times))
	}
	for _, attr := range []string{"outbox", "outboxBytes", "leaseOwner", "leaseUntil", "gsi1pk", "gsi1sk", "retry"} {
		if _, ok := out.Item[attr]; ok {
			t.Errorf("a drained outbox left attribute %s", attr)
		}
	}
}

func TestCallsOfPendingSessions(t *testing.T) {
	ctx := context.Background()
	calls := &awstest.Counter{}
	st := newStore(t, awstest.DynamoDB(t, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, calls.AddTo) }))
	s := hitl.Session{
		ID: "s1", Provider: hitl.LiveChat, Channel: hitl.ChannelBotpress, Status: hitl.StatusPending,
		CreatedAt: t0, UpdatedAt: t0, IdleUntil: t0.Add(30 * time.Minute),
	}
	if _, err := st.CreateSession(ctx, s, ""); err != nil {
		t.Fatal(err)
	}
	check := func(what string, want map[string]int) {
		t.Helper()
		if got := calls.Calls(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: calls = %v, want %v", what, got, want)
		}
		calls.Reset()
	}
	calls.Reset()
	bot := hitl.TranscriptEntry{From: "bot", Message: hitl.Message{Type: hitl.TypeText, Text: "hi"}}
	if err := st.AppendTranscript(ctx, s.ID, bot, t0); err != nil {
		t.Fatal(err)
	}
	check("AppendTranscript", map[string]int{"UpdateItem": 1})
	if err := st.ExtendIdle(ctx, s.ID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	check("ExtendIdle", map[string]int{"UpdateItem": 1})
	if _, err := st.BindUser(ctx, s.ID, "usr_1", t0, t0); err != nil {
		t.Fatal(err)
	}
	check("BindUser", map[string]int{"UpdateItem": 1})
	if err := st.UnbindUser(ctx, s.ID, t0); err != nil {
		t.Fatal(err)
	}
	check("UnbindUser", map[string]int{"UpdateItem": 1})
	if got, err := st.IdleSessions(ctx, t0.Add(2*time.Hour), 10); err != nil || len(got) != 1 {
		t.Fatalf("IdleSessions = %v, %v", got, err)
	}
	check("IdleSessions", map[string]int{"BatchGetItem": 1, "Query": 1})
}
