package dynamo_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
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

// newTable creates a fresh table in db and returns its name.
func newTable(t *testing.T, db *dynamodb.Client) string {
	t.Helper()
	table := fmt.Sprintf("hitl-test-%d", tables.Add(1))
	if err := dynamo.CreateTable(context.Background(), db, table); err != nil {
		t.Fatal(err)
	}
	return table
}

// newStore returns a store on a fresh table of db.
func newStore(t *testing.T, db *dynamodb.Client) *dynamo.Store {
	t.Helper()
	return dynamo.New(db, newTable(t, db))
}

// onNewTable returns a client, a fresh table and a store on it, for the
// tests that also read or write the table's items directly.
func onNewTable(t *testing.T) (*dynamodb.Client, string, *dynamo.Store) {
	t.Helper()
	db := awstest.DynamoDB(t)
	table := newTable(t, db)
	return db, table, dynamo.New(db, table)
}

func TestContract(t *testing.T) {
	db := awstest.DynamoDB(t)
	storetest.Run(t, func(t *testing.T) hitl.Store { return newStore(t, db) })
}

func TestCreateTable(t *testing.T) {
	ctx := context.Background()
	db := awstest.DynamoDB(t)
	table := newTable(t, db)
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
	if err := st.Opened(ctx, id, hitl.Opened{ConversationID: "conv-" + id, Visitor: hitl.Visitor{ID: "v1", Credentials: hitl.Credentials("secret"), CredentialsExpireAt: t0.Add(time.Hour)}}, t0); err != nil {
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

// deliver records n agent messages, e0 to e<n-1>, every apart from t0,
// each delivered (acknowledged) before the next.
func deliver(t *testing.T, st *dynamo.Store, s hitl.Session, n int, every time.Duration) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		owner := fmt.Sprintf("o%d", i)
		c := message(s, fmt.Sprintf("e%d", i), "hi")
		c.At = t0.Add(time.Duration(i) * every)
		if _, err := st.Record(ctx, c, owner, c.At.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Ack(ctx, s.ID, owner, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
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
	check("GetSession", map[string]int{"BatchGetItem": 1}) // the session item and the delivery item

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
	check("DueOutboxes", map[string]int{"Query": 4}) // one per partition of delivery items
	if _, err := st.Ack(ctx, s.ID, "o12", 1, nil); err != nil {
		t.Fatal(err)
	}
	calls.Reset()

	// One Ack in SpillAt finds SpillAt remembered ids, and spills them first.
	spills := 0
	for i := range dynamo.SpillAt {
		owner := fmt.Sprintf("p%d", i)
		if _, err := st.Record(ctx, message(s, fmt.Sprintf("f%d", i), "hi"), owner, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		check("Record", map[string]int{"UpdateItem": 1})
		if _, err := st.Ack(ctx, s.ID, owner, 1, nil); err != nil {
			t.Fatal(err)
		}
		if calls.Calls()["PutItem"] == 1 {
			spills++
			check("Ack that spills", map[string]int{"PutItem": 1, "UpdateItem": 1})
		} else {
			check("Ack", map[string]int{"UpdateItem": 1})
		}
	}
	if spills != 1 {
		t.Errorf("%d of %d Acks spilled, want 1", spills, dynamo.SpillAt)
	}
	// Status changes write the session item and the delivery item together;
	// closing reads what the delivery item keeps of the session first.
	assign := message(s, "assign", "")
	assign.Status, assign.Agent, assign.Event.Type, assign.Event.Message = hitl.StatusAssigned, &hitl.Agent{ID: "ag1"}, hitl.EventAssigned, nil
	if r, err := st.Record(ctx, assign, "a", t0.Add(time.Minute)); err != nil || !r.Leased {
		t.Fatalf("Record = %+v, %v", r, err)
	}
	check("Record of an assignment", map[string]int{"GetItem": 1, "TransactWriteItems": 1})
	if _, err := st.Ack(ctx, s.ID, "a", 1, nil); err != nil {
		t.Fatal(err)
	}
	calls.Reset()
	closing := message(s, "close", "")
	closing.Status, closing.CloseReason, closing.Event.Type, closing.Event.Message = hitl.StatusClosed, hitl.ReasonAgentClosed, hitl.EventStopped, nil
	if r, err := st.Record(ctx, closing, "c", t0.Add(time.Minute)); err != nil || !r.Leased {
		t.Fatalf("Record = %+v, %v", r, err)
	}
	check("Record of the close", map[string]int{"GetItem": 2, "TransactWriteItems": 1})
	if _, err := st.Ack(ctx, s.ID, "c", 1, nil); err != nil {
		t.Fatal(err)
	}
	check("Ack of a closed session's last event", map[string]int{"DeleteItem": 1})
	if r, err := st.Record(ctx, message(s, "late", "hi"), "l", t0.Add(time.Minute)); err != nil || r.Applied {
		t.Fatalf("Record after the close = %+v, %v", r, err)
	}
	check("Record after the close", map[string]int{"GetItem": 1, "UpdateItem": 1})
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

func TestRememberedIDsBounded(t *testing.T) {
	ctx := context.Background()
	db, table, st := onNewTable(t)
	s := openSession(t, st, "s1")
	const n = 130
	deliver(t, st, s, n, time.Second)
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: dynamo.DeliveryKey(s.ID)})
	if err != nil {
		t.Fatal(err)
	}
	spills := n / dynamo.SpillAt
	if ids := out.Item["ids"].(*types.AttributeValueMemberSS).Value; len(ids) != n-spills*dynamo.SpillAt {
		t.Errorf("the delivery item remembers %d event ids, want %d", len(ids), n-spills*dynamo.SpillAt)
	}
	if sg := out.Item["sg"].(*types.AttributeValueMemberN).Value; sg != fmt.Sprint(spills) {
		t.Errorf("spill count = %s, want %d", sg, spills)
	}
	for _, attr := range []string{"q", "qb", "lo", "lu", "due", "retry"} {
		if _, ok := out.Item[attr]; ok {
			t.Errorf("a drained outbox left attribute %s", attr)
		}
	}
	q, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(table), KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :spill)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: "SESSION#s1"}, ":spill": &types.AttributeValueMemberS{Value: "SPILL#"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Items) != spills {
		t.Errorf("%d spill items, want %d", len(q.Items), spills)
	}
	for _, it := range q.Items {
		if _, ok := it["expiresAt"]; !ok {
			t.Error("a spill item does not expire")
		}
	}
}

// TestDedupeAcrossStores: a Store that did not spill an id still rejects
// it, after 1,000 events, by reading the spills once.
func TestDedupeAcrossStores(t *testing.T) {
	ctx := context.Background()
	_, table, a := onNewTable(t)
	s := openSession(t, a, "s1")
	const n = 1000
	deliver(t, a, s, n, 500*time.Millisecond) // 1,000 events in 8 minutes
	calls := &awstest.Counter{}
	b := dynamo.New(awstest.DynamoDB(t, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, calls.AddTo) }), table)
	at := t0.Add(14 * time.Minute) // within the span of the first event
	for i, st := range []*dynamo.Store{b, b, a} {
		for _, id := range []string{"e0", "e500", fmt.Sprintf("e%d", n-1)} {
			c := message(s, id, "hi")
			c.At = at
			if r, err := st.Record(ctx, c, "dup", at.Add(time.Minute)); err != nil || r.Applied {
				t.Errorf("store %d: Record of %s again = %+v, %v; want not applied", i, id, r, err)
			}
		}
	}
	// b learnt the spills on its first refusal: one failed write and one
	// Query, then nothing but its own knowledge and failed conditions.
	if got := calls.Calls(); got["Query"] != 1 {
		t.Errorf("the second store's calls = %v, want one Query", got)
	}
	c := message(s, "new", "hi")
	c.At = at
	if r, err := b.Record(ctx, c, "o-new", at.Add(time.Minute)); err != nil || !r.Applied {
		t.Errorf("Record of a new event = %+v, %v; want applied", r, err)
	}
	// After the span, the spilled ids are forgotten.
	c = message(s, "e0", "hi")
	c.At = t0.Add(n*500*time.Millisecond + hitl.DedupeSpan + time.Minute)
	if r, err := b.Record(ctx, c, "o-late", c.At.Add(time.Minute)); err != nil || !r.Applied {
		t.Errorf("Record of e0 after the span = %+v, %v; want applied", r, err)
	}
}

// TestWriteUnitsPerAgentMessage: an agent message costs two writes of an
// item under 1 KB (Record, Ack) and no index write, whatever the
// conversation's length, plus one spill write every SpillAt messages.
// Units are estimated from item sizes as DynamoDB bills them (awstest.Meter).
func TestWriteUnitsPerAgentMessage(t *testing.T) {
	ctx := context.Background()
	db := awstest.DynamoDB(t)
	table := newTable(t, db)
	meter, err := awstest.NewMeter(ctx, db, db, table)
	if err != nil {
		t.Fatal(err)
	}
	st := dynamo.New(meter, table)
	// A LiveChat session as the bridge keeps it: a token, cookies, a title.
	sess := hitl.Session{
		ID: hitl.NewID("ses"), UserID: hitl.NewID("usr"), Provider: hitl.LiveChat, Channel: hitl.ChannelNative,
		BotConversationID: "conv-" + strings.Repeat("b", 30), Status: hitl.StatusOpening, CreatedAt: t0, UpdatedAt: t0,
		Title: "Order 12345 arrived damaged", Description: strings.Repeat("The customer asks for a refund. ", 10),
	}
	if _, err := st.CreateSession(ctx, sess, ""); err != nil {
		t.Fatal(err)
	}
	creds := `{"token":"` + strings.Repeat("t", 600) + `","cookies":["` + strings.Repeat("c", 300) + `"]}`
	v := hitl.Visitor{ID: strings.Repeat("v", 36), Credentials: hitl.Credentials(creds), CredentialsExpireAt: t0.Add(8 * time.Hour)}
	if err := st.Opened(ctx, sess.ID, hitl.Opened{ConversationID: "S1ABCDEFGH", Visitor: v}, t0); err != nil {
		t.Fatal(err)
	}
	const n = 300
	var spills, maxItem int
	for i := range n {
		c := message(sess, hitl.EventID(hitl.LiveChat, "S1ABCDEFGH", fmt.Sprintf("thread_%d", i)),
			"Thank you for waiting, I have checked your order and a replacement is on its way.")
		c.Event.Agent, c.AgentReplied = &hitl.Agent{ID: "jane.agent@example.com", Name: "Jane Agent"}, true
		c.At = t0.Add(time.Duration(i) * time.Second)
		owner := hitl.NewID("own")
		before, unmeteredBefore := meter.Snapshot()
		meter.ResetMax()
		if r, err := st.Record(ctx, c, owner, c.At.Add(time.Minute)); err != nil || !r.Leased {
			t.Fatalf("Record %d = %+v, %v", i, r, err)
		}
		if _, err := st.Ack(ctx, sess.ID, owner, 1, nil); err != nil {
			t.Fatal(err)
		}
		after, unmetered := meter.Snapshot()
		got := after.Minus(before)
		want := 2.0
		if (i+1)%dynamo.SpillAt == 0 {
			want, spills = 3, spills+1 // the Ack spills the remembered ids
		}
		if got.WRU != want || got.IndexWRU != 0 || got.RRU != 0 || !maps.Equal(unmetered, unmeteredBefore) {
			t.Fatalf("message %d: %.0f WRU, %.0f index WRU, %.1f RRU, unmetered %v; want %.0f, 0, 0, none", i, got.WRU, got.IndexWRU, got.RRU, unmetered, want)
		}
		maxItem = max(maxItem, got.MaxItem)
	}
	if spills != n/dynamo.SpillAt {
		t.Errorf("%d spills, want %d", spills, n/dynamo.SpillAt)
	}
	t.Logf("%d messages: mean %.3f WRU; largest item written %d bytes", n, 2+float64(spills)/n, maxItem)

	// Status changes, rare, write the session item too, in a transaction
	// (twice the units); the close reads the delivery item first.
	units := func(c hitl.Change) awstest.Capacity {
		t.Helper()
		before, _ := meter.Snapshot()
		owner := hitl.NewID("own")
		if r, err := st.Record(ctx, c, owner, c.At.Add(time.Minute)); err != nil || !r.Leased {
			t.Fatalf("Record %s = %+v, %v", c.Event.Type, r, err)
		}
		if _, err := st.Ack(ctx, sess.ID, owner, 1, nil); err != nil {
			t.Fatal(err)
		}
		after, _ := meter.Snapshot()
		return after.Minus(before)
	}
	at := t0.Add(time.Hour)
	assign := message(sess, "assign", "")
	assign.Status, assign.Agent, assign.At, assign.Event.Type, assign.Event.Message = hitl.StatusAssigned, &hitl.Agent{ID: "jane.agent@example.com"}, at, hitl.EventAssigned, nil
	if got := units(assign); got.WRU != 7 || got.IndexWRU != 0 || got.RRU != 1 {
		t.Errorf("an assignment: %.0f WRU, %.0f index WRU, %.1f RRU; want 7 (the 2 KB session item ×2, the delivery item ×2, the Ack), 0, 1 (the delivery item read back)", got.WRU, got.IndexWRU, got.RRU)
	}
	closing := message(sess, "close", "")
	closing.Status, closing.CloseReason, closing.At, closing.Event.Type, closing.Event.Message = hitl.StatusClosed, hitl.ReasonAgentClosed, at, hitl.EventStopped, nil
	if got := units(closing); got.WRU != 7 || got.IndexWRU != 1 || got.RRU != 2 {
		t.Errorf("a close: %.0f WRU, %.0f index WRU, %.1f RRU; want 7 (as an assignment; the Ack deletes the delivery item), 1 (the visitor index entry goes), 2 (the delivery item read before and after)", got.WRU, got.IndexWRU, got.RRU)
	}
}

func TestCallsOfDeferredSessions(t *testing.T) {
	ctx := context.Background()
	calls := &awstest.Counter{}
	st := newStore(t, awstest.DynamoDB(t, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, calls.AddTo) }))
	s := hitl.Session{
		ID: "s1", Provider: hitl.LiveChat, Channel: "contract", Status: hitl.StatusPending,
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
	check("BindUser", map[string]int{"GetItem": 1, "UpdateItem": 1}) // and reads the idle deadline
	if err := st.UnbindUser(ctx, s.ID, t0); err != nil {
		t.Fatal(err)
	}
	check("UnbindUser", map[string]int{"UpdateItem": 1})
	if got, err := st.IdleSessions(ctx, t0.Add(2*time.Hour), 10); err != nil || len(got) != 1 {
		t.Fatalf("IdleSessions = %v, %v", got, err)
	}
	check("IdleSessions", map[string]int{"BatchGetItem": 1, "Query": 1})
}

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
	table := newTable(t, db)
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
// were opaque, with LiveChat's token, its expiry and cookies as attributes
// of their own and indexed by that expiry, reads in the new shape.
func TestLegacyVisitor(t *testing.T) {
	ctx := context.Background()
	db, table, st := onNewTable(t)
	s := openSession(t, st, "s1")
	expiry := t0.Add(30 * time.Minute)
	str := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	k := map[string]types.AttributeValue{"pk": str("SESSION#" + s.ID), "sk": str("SESSION")}
	var cookies []types.AttributeValue
	for _, c := range storetest.LegacyCookies {
		cookies = append(cookies, str(c))
	}
	_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: k,
		UpdateExpression: aws.String("SET visitorId = :id, visitorToken = :t, visitorTokenExpiresAt = :e, visitorCookies = :c, gsi2sk = :e " +
			"REMOVE visitorCredentials, visitorCredentialsExpireAt"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":id": str(storetest.LegacyVisitorID), ":t": str(storetest.LegacyToken),
			":e": str(expiry.Format("2006-01-02T15:04:05.000000000Z")), ":c": &types.AttributeValueMemberL{Value: cookies},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	storetest.LegacyVisitor(t, st, s, expiry, func() bool {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: k})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item["visitorToken"] != nil || out.Item["visitorTokenExpiresAt"] != nil || out.Item["visitorCookies"] != nil
	})
}
