package reliability

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// store is a store implementation the suites run on, its writes counted.
type store struct {
	name string
	open func(t testing.TB) *countedStore
}

var stores = []store{
	{"bolt", func(t testing.TB) *countedStore { return &countedStore{Store: apptest.Bolt(t)} }},
	{"dynamo", func(t testing.TB) *countedStore {
		st, calls := apptest.CountedDynamo(t)
		return &countedStore{Store: st, aws: calls}
	}},
}

// forEachStore runs test once per store, as a subtest named after it.
func forEachStore(t *testing.T, test func(t *testing.T, name string, st *countedStore)) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) { test(t, s.name, s.open(t)) })
	}
}

// countedStore counts the calls that may write, whichever store is under
// it, and on DynamoDB also the write requests sent.
type countedStore struct {
	hitl.Store
	aws    *awstest.Counter // nil off DynamoDB
	writes atomic.Int64
}

// dynamoWrites are the DynamoDB operations that write.
var dynamoWrites = []string{"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}

// Writes returns the write calls so far: the store's own count, and on
// DynamoDB the larger of it and the write requests sent.
func (s *countedStore) Writes() int {
	n := int(s.writes.Load())
	if s.aws != nil {
		sent := 0
		for _, op := range dynamoWrites {
			sent += s.aws.Count(op)
		}
		n = max(n, sent)
	}
	return n
}

func (s *countedStore) w() { s.writes.Add(1) }

func (s *countedStore) CreateUser(ctx context.Context, u hitl.User) error {
	s.w()
	return s.Store.CreateUser(ctx, u)
}

func (s *countedStore) CreateSession(ctx context.Context, ses hitl.Session, key string) (hitl.Session, error) {
	s.w()
	return s.Store.CreateSession(ctx, ses, key)
}

func (s *countedStore) Opened(ctx context.Context, id string, o hitl.Opened, at time.Time) error {
	s.w()
	return s.Store.Opened(ctx, id, o, at)
}

func (s *countedStore) KeepConversation(ctx context.Context, id string, ids []string, at time.Time) error {
	s.w()
	return s.Store.KeepConversation(ctx, id, ids, at)
}

func (s *countedStore) Hold(ctx context.Context, pe hitl.ProviderEvent, until time.Time) error {
	s.w()
	return s.Store.Hold(ctx, pe, until)
}

func (s *countedStore) SaveVisitor(ctx context.Context, id string, v hitl.Visitor) error {
	s.w()
	return s.Store.SaveVisitor(ctx, id, v)
}

func (s *countedStore) DeleteSession(ctx context.Context, id, key string) error {
	s.w()
	return s.Store.DeleteSession(ctx, id, key)
}

func (s *countedStore) Record(ctx context.Context, c hitl.Change, owner string, until time.Time) (hitl.Recorded, error) {
	s.w()
	return s.Store.Record(ctx, c, owner, until)
}

func (s *countedStore) Claim(ctx context.Context, id, owner string, now, until time.Time) ([]hitl.Event, bool, error) {
	s.w()
	return s.Store.Claim(ctx, id, owner, now, until)
}

func (s *countedStore) Ack(ctx context.Context, id, owner string, n int, r *hitl.Retry) (bool, error) {
	s.w()
	return s.Store.Ack(ctx, id, owner, n, r)
}

func (s *countedStore) Bury(ctx context.Context, id, owner string, at time.Time) error {
	s.w()
	return s.Store.Bury(ctx, id, owner, at)
}

func (s *countedStore) Replay(ctx context.Context, id string, now time.Time) (int, error) {
	s.w()
	return s.Store.Replay(ctx, id, now)
}

func (s *countedStore) BindUser(ctx context.Context, id, user string, at, stale time.Time) (hitl.Session, error) {
	s.w()
	return s.Store.BindUser(ctx, id, user, at, stale)
}

func (s *countedStore) UnbindUser(ctx context.Context, id string, at time.Time) error {
	s.w()
	return s.Store.UnbindUser(ctx, id, at)
}

func (s *countedStore) AppendTranscript(ctx context.Context, id string, e hitl.TranscriptEntry, at time.Time) error {
	s.w()
	return s.Store.AppendTranscript(ctx, id, e, at)
}

func (s *countedStore) ExtendIdle(ctx context.Context, id string, until time.Time) error {
	s.w()
	return s.Store.ExtendIdle(ctx, id, until)
}

func (s *countedStore) AcquireLease(ctx context.Context, name, owner string, now, until time.Time) (bool, error) {
	s.w()
	return s.Store.AcquireLease(ctx, name, owner, now, until)
}

// tapped runs act with both simulators delivering to a tap instead of the
// bridge, and returns what they delivered.
func tapped(t testing.TB, e *apptest.Env, act func()) []simcore.Delivery {
	t.Helper()
	tp := tapAll(t, e)
	defer untap(e)
	act()
	return tp.Take()
}

// tapAll makes both simulators deliver to a new tap (a receiver) until
// untap.
func tapAll(t testing.TB, e *apptest.Env) *simcore.Receiver {
	tp := simcore.NewReceiver(t)
	e.LiveChat.SetWebhookURL(tp.URL)
	e.Zoho.SetWebhookURL(tp.URL)
	return tp
}

// untap makes both simulators deliver to the bridge again.
func untap(e *apptest.Env) {
	e.LiveChat.SetWebhookURL(e.Server.URL + "/webhooks/livechat")
	e.Zoho.SetWebhookURL(e.Server.URL + "/webhooks/zoho")
}

// client posts to the bridge with enough idle connections for the
// concurrency of the load suite.
var client = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxIdleConns: 256},
}

// post sends body to url with header and returns the status and answer.
// A transport failure is status 0.
func post(url string, body []byte, header http.Header) (int, []byte) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, []byte(err.Error())
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, answer
}

// webhookURL is the bridge's webhook route for provider.
func webhookURL(e *apptest.Env, provider string) string {
	return e.Server.URL + "/webhooks/" + provider
}

// providerCalls counts the calls both simulators have taken.
func providerCalls(e *apptest.Env) int {
	return len(e.LiveChat.CallLog()) + len(e.Zoho.CallLog())
}

// tally is what the bot received, per session.
type tally struct {
	total    int
	distinct int
	twice    int                     // events received more than once
	sessions map[string][]hitl.Event // first receipts, in arrival order
}

func tallyEvents(events []hitl.Event) tally {
	t := tally{sessions: map[string][]hitl.Event{}}
	seen := map[string]bool{}
	for _, e := range events {
		t.total++
		if seen[e.ID] {
			t.twice++
			continue
		}
		seen[e.ID] = true
		t.distinct++
		t.sessions[e.SessionID] = append(t.sessions[e.SessionID], e)
	}
	return t
}

// texts lists the text of each message event.
func texts(events []hitl.Event) []string {
	var out []string
	for _, e := range events {
		if e.Type == hitl.EventMessage && e.Message != nil {
			out = append(out, e.Message.Text)
		}
	}
	return out
}

// outOfOrder counts the sessions whose message texts did not arrive in
// the order of want. A missing message is counted as lost, not here.
func outOfOrder(got map[string][]hitl.Event, want map[string][]string) int {
	n := 0
	for id, w := range want {
		index := map[string]int{}
		for i, text := range w {
			index[text] = i
		}
		last := -1
		for _, text := range texts(got[id]) {
			i, ok := index[text]
			if !ok || i < last {
				n++
				break
			}
			last = i
		}
	}
	return n
}

// drain lets the scheduled redelivery run, the clock moving past each
// backoff, until the bot has want distinct events or nothing more is due.
func drain(t testing.TB, e *apptest.Env, want int) {
	t.Helper()
	for range 10 {
		if tallyEvents(e.Bot.Events()).distinct >= want {
			return
		}
		e.Clock.Advance(20 * time.Minute)
		sweepAll(t, e)
	}
}

// sweepAll runs the scheduled redelivery until nothing more is due,
// bounded.
func sweepAll(t testing.TB, e *apptest.Env) {
	t.Helper()
	for range 100 {
		n, err := e.App.Dispatcher.Sweep(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("outboxes still due after 100 sweeps")
}
