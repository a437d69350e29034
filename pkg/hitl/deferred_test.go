package hitl_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// deferredFixture is a fixture of deferred sessions (opening at the user's
// first message),
// with a settable clock and a count of idle-deadline writes.
type deferredFixture struct {
	*fixture
	now     time.Time
	extends atomic.Int32
	sent    []hitl.Message
	mu      sync.Mutex
}

// countingStore counts ExtendIdle calls.
type countingStore struct {
	hitl.Store
	n *atomic.Int32
}

func (s countingStore) ExtendIdle(ctx context.Context, id string, until time.Time) error {
	s.n.Add(1)
	return s.Store.ExtendIdle(ctx, id, until)
}

func newDeferredFixture(t *testing.T) *deferredFixture {
	f := &deferredFixture{fixture: newFixture(t), now: time.Now().UTC()}
	st := countingStore{Store: f.store, n: &f.extends}
	f.bridge.Store = st
	f.bridge.Now = func() time.Time { return f.now }
	d := f.bridge.Outbox.(*delivery.Dispatcher)
	d.Store = st
	d.Senders[contract] = f.bot
	f.provider.send = func(_ context.Context, _ hitl.Session, m hitl.Message) (hitl.Sent, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.sent = append(f.sent, m)
		return hitl.Sent{MessageID: "m"}, nil
	}
	return f
}

// contract is the channel of the fixture's deferred sessions.
const contract = "contract"

func (f *deferredFixture) deferred(t *testing.T) hitl.Session {
	t.Helper()
	s, err := f.bridge.CreateDeferred(context.Background(), hitl.DeferredRequest{Channel: contract, Title: "Order #7", Description: "late"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *deferredFixture) sentTexts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.sent {
		out = append(out, m.Text)
	}
	return out
}

func text(s string) hitl.Message { return hitl.Message{Type: hitl.TypeText, Text: s} }

func TestCreateDeferredValidates(t *testing.T) {
	f := newDeferredFixture(t)
	for name, req := range map[string]hitl.DeferredRequest{
		"unknown provider": {Provider: "teams"},
		"huge title":       {Title: strings.Repeat("x", 600)},
		"huge transcript":  {Transcript: []hitl.TranscriptEntry{{From: "bot", Message: text(strings.Repeat("x", hitl.MaxTranscriptBytes))}}},
	} {
		if _, err := f.bridge.CreateDeferred(context.Background(), req); hitl.ErrorCode(err) != hitl.CodeInvalid {
			t.Errorf("%s: err = %v, want invalid_argument", name, err)
		}
	}
}

func TestFirstUserMessageOpensWithTheBotTranscript(t *testing.T) {
	f := newDeferredFixture(t)
	ctx := context.Background()
	s := f.deferred(t)
	var req hitl.OpenRequest
	f.provider.open = func(_ context.Context, r hitl.OpenRequest) (hitl.Opened, error) {
		req = r
		return hitl.Opened{ConversationID: "CONV-1", Visitor: hitl.Visitor{ID: "v1"}}, nil
	}
	if _, err := f.bridge.SendBotMessage(ctx, contract, s.ID, text("Connecting you")); err != nil {
		t.Fatal(err)
	}
	if f.provider.opens.Load() != 0 {
		t.Fatal("a bot message opened the conversation")
	}
	if _, err := f.bridge.SendUserMessage(ctx, contract, s.ID, f.user.ID, text("hello")); err != nil {
		t.Fatal(err)
	}
	if req.User.ID != f.user.ID || req.Title != "Order #7" || req.Description != "late" ||
		len(req.Transcript) != 1 || req.Transcript[0].From != "bot" || req.Transcript[0].Message.Text != "Connecting you" {
		t.Fatalf("open request = %+v", req)
	}
	if _, err := f.bridge.SendBotMessage(ctx, contract, s.ID, hitl.Message{Type: hitl.TypeImage, URL: "https://x.test/a.png"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"hello", hitl.BotPrefix + "[image] https://x.test/a.png"}
	if got := f.sentTexts(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sent %q, want %q", got, want)
	}
	got, _ := f.bridge.GetSession(ctx, s.ID)
	if got.Status != hitl.StatusWaiting || got.UserID != f.user.ID || got.ProviderConversationID != "CONV-1" || got.Transcript != nil {
		t.Fatalf("session = %+v", got)
	}
	other, _ := f.bridge.CreateUser(ctx, hitl.UserDetails{Name: "Eve"})
	if _, err := f.bridge.SendUserMessage(ctx, contract, s.ID, other.ID, text("hi")); hitl.ErrorCode(err) != hitl.CodeInvalid {
		t.Fatalf("message from another user: err = %v", err)
	}
	if _, err := f.bridge.SendUserMessage(ctx, hitl.ChannelNative, s.ID, f.user.ID, text("hi")); hitl.ErrorCode(err) != hitl.CodeNotFound {
		t.Fatalf("message through another channel: err = %v", err)
	}
}

func TestConcurrentFirstMessagesOpenOneConversation(t *testing.T) {
	f := newDeferredFixture(t)
	s := f.deferred(t)
	release := make(chan struct{})
	f.provider.open = func(context.Context, hitl.OpenRequest) (hitl.Opened, error) {
		<-release
		return hitl.Opened{ConversationID: "CONV-1"}, nil
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := f.bridge.SendUserMessage(context.Background(), contract, s.ID, f.user.ID, text("hi")); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // the losers find the session opening
	close(release)
	wg.Wait()
	if f.provider.opens.Load() != 1 || len(f.sentTexts()) != 10 {
		t.Fatalf("opens=%d sent=%d, want 1 open and 10 messages", f.provider.opens.Load(), len(f.sentTexts()))
	}
}

func TestFailedOpenIsRetriedByTheNextMessage(t *testing.T) {
	f := newDeferredFixture(t)
	ctx := context.Background()
	s := f.deferred(t)
	f.provider.open = func(context.Context, hitl.OpenRequest) (hitl.Opened, error) { return hitl.Opened{}, errors.New("boom") }
	if _, err := f.bridge.SendUserMessage(ctx, contract, s.ID, f.user.ID, text("hi")); hitl.ErrorCode(err) != hitl.CodeProvider {
		t.Fatalf("err = %v, want provider_error", err)
	}
	if got, _ := f.bridge.GetSession(ctx, s.ID); got.Status != hitl.StatusPending || got.UserID != "" {
		t.Fatalf("after a failed open the session is %+v, want pending", got)
	}
	f.provider.open = nil
	if _, err := f.bridge.SendUserMessage(ctx, contract, s.ID, f.user.ID, text("again")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.bridge.SendUserMessage(ctx, contract, s.ID, "usr_missing", text("x")); hitl.ErrorCode(err) != hitl.CodeInvalid {
		t.Fatalf("unknown user on an open session: err = %v", err)
	}
}

func TestAbandonedOpenIsTakenOver(t *testing.T) {
	f := newDeferredFixture(t)
	ctx := context.Background()
	s := f.deferred(t)
	// An opener bound the session and died.
	if _, err := f.store.BindUser(ctx, s.ID, f.user.ID, f.now, f.now); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(3 * time.Minute)
	if _, err := f.bridge.SendUserMessage(ctx, contract, s.ID, f.user.ID, text("anyone?")); err != nil {
		t.Fatal(err)
	}
	if f.provider.opens.Load() != 1 {
		t.Fatalf("%d opens, want 1", f.provider.opens.Load())
	}
}

func TestIdleSessionsEnd(t *testing.T) {
	f := newDeferredFixture(t)
	ctx := context.Background()
	var closed []string
	f.provider.close = func(_ context.Context, s hitl.Session) error {
		closed = append(closed, s.ProviderConversationID)
		return nil
	}
	opened, never := f.deferred(t), f.deferred(t)
	if _, err := f.bridge.SendUserMessage(ctx, contract, opened.ID, f.user.ID, text("hi")); err != nil {
		t.Fatal(err)
	}
	// Activity in the first half of the timeout writes nothing.
	f.now = f.now.Add(10 * time.Minute)
	if _, err := f.bridge.SendUserMessage(ctx, contract, opened.ID, f.user.ID, text("still here")); err != nil || f.extends.Load() != 0 {
		t.Fatalf("send: %v; %d idle deadline writes, want 0", err, f.extends.Load())
	}
	// An agent's message past half of it moves the deadline once.
	f.now = f.now.Add(10 * time.Minute)
	msg := agentEvent("CONV-"+opened.ID, "m1", hitl.EventMessage)
	msg.Message = &hitl.Message{Type: hitl.TypeText, Text: "hello"}
	if err := f.bridge.HandleProviderEvent(ctx, msg); err != nil || f.extends.Load() != 1 {
		t.Fatalf("agent message: %v; %d idle deadline writes, want 1", err, f.extends.Load())
	}
	f.now = f.now.Add(15 * time.Minute) // never is 35 min idle, opened 15
	if n, err := f.bridge.ExpireIdle(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireIdle = %d, %v; want 1", n, err)
	}
	f.now = f.now.Add(20 * time.Minute)
	if n, err := f.bridge.ExpireIdle(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireIdle = %d, %v; want 1", n, err)
	}
	if len(closed) != 1 || closed[0] != "CONV-"+opened.ID {
		t.Fatalf("provider closed %v, want only the opened conversation", closed)
	}
	var stops []hitl.Event
	for _, e := range f.bot.received() {
		if e.Type == hitl.EventStopped {
			stops = append(stops, e)
		}
	}
	if len(stops) != 2 || stops[0].SessionID != never.ID || stops[1].SessionID != opened.ID ||
		stops[0].Reason != hitl.ReasonTimeout || stops[1].Reason != hitl.ReasonTimeout || stops[0].Channel != contract {
		t.Fatalf("stop events %+v", stops)
	}
	if n, err := f.bridge.ExpireIdle(ctx); err != nil || n != 0 {
		t.Fatalf("ExpireIdle after everything ended = %d, %v", n, err)
	}
}

func TestStopChannelSession(t *testing.T) {
	f := newDeferredFixture(t)
	ctx := context.Background()
	s := f.deferred(t)
	if found, err := f.bridge.StopChannelSession(ctx, contract, "conv_unknown"); found || err != nil {
		t.Fatalf("unknown id: found=%v err=%v", found, err)
	}
	native := f.start(t, "")
	if found, err := f.bridge.StopChannelSession(ctx, contract, native.ID); found || err != nil {
		t.Fatalf("native session: found=%v err=%v", found, err)
	}
	if found, err := f.bridge.StopChannelSession(ctx, contract, s.ID); !found || err != nil {
		t.Fatalf("deferred session: found=%v err=%v", found, err)
	}
	if got, _ := f.bridge.GetSession(ctx, s.ID); got.CloseReason != hitl.ReasonBotStopped {
		t.Fatalf("session = %+v", got)
	}
}
