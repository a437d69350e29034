package hitl_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt/bolttest"
)

// fakeProvider is a hitl.Provider made of function fields.
type fakeProvider struct {
	open  func(context.Context, hitl.OpenRequest) (hitl.Opened, error)
	send  func(context.Context, hitl.Session, hitl.Message) (hitl.Sent, error)
	close func(context.Context, hitl.Session) error
	opens atomic.Int32
}

func (f *fakeProvider) Open(ctx context.Context, r hitl.OpenRequest) (hitl.Opened, error) {
	f.opens.Add(1)
	if f.open != nil {
		return f.open(ctx, r)
	}
	return hitl.Opened{ConversationID: "CONV-" + r.SessionID, Visitor: hitl.Visitor{ID: "visitor-1", Credentials: hitl.Credentials("tok")}}, nil
}

func (f *fakeProvider) Send(ctx context.Context, s hitl.Session, m hitl.Message) (hitl.Sent, error) {
	if f.send != nil {
		return f.send(ctx, s, m)
	}
	return hitl.Sent{MessageID: "msg-1"}, nil
}

func (f *fakeProvider) Close(ctx context.Context, s hitl.Session) error {
	if f.close != nil {
		return f.close(ctx, s)
	}
	return nil
}

// bot records the events delivered to it.
type bot struct {
	mu     sync.Mutex
	events []hitl.Event
	down   bool
}

func (b *bot) Send(_ context.Context, e hitl.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return errors.New("bot is down")
	}
	b.events = append(b.events, e)
	return nil
}

func (b *bot) received() []hitl.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]hitl.Event(nil), b.events...)
}

type fixture struct {
	bridge   *hitl.Bridge
	provider *fakeProvider
	bot      *bot
	store    hitl.Store
	user     hitl.User
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := bolttest.Open(t)
	log := slog.New(slog.DiscardHandler)
	f := &fixture{provider: &fakeProvider{}, bot: &bot{}, store: st}
	d := &delivery.Dispatcher{Store: st, Log: log, Senders: map[string]delivery.Sender{hitl.ChannelNative: f.bot}}
	f.bridge = &hitl.Bridge{Store: st, Providers: map[string]hitl.Provider{"fake": f.provider}, DefaultProvider: "fake", Outbox: d, Log: log}
	var err error
	f.user, err = f.bridge.CreateUser(context.Background(), hitl.UserDetails{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) start(t *testing.T, key string) hitl.Session {
	t.Helper()
	s, err := f.bridge.StartSession(context.Background(), hitl.StartRequest{UserID: f.user.ID, IdempotencyKey: key, BotConversationID: "bc-1"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStartSessionOpensOnePerIdempotencyKey(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	f.provider.open = func(_ context.Context, r hitl.OpenRequest) (hitl.Opened, error) {
		<-release
		return hitl.Opened{ConversationID: "CONV-1"}, nil
	}
	var wg sync.WaitGroup
	var created, conflicts atomic.Int32
	for range 10 {
		wg.Go(func() {
			_, err := f.bridge.StartSession(context.Background(), hitl.StartRequest{UserID: f.user.ID, IdempotencyKey: "k1"})
			switch {
			case err == nil:
				created.Add(1)
			case hitl.ErrorCode(err) == hitl.CodeConflict:
				conflicts.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	// The losers find the key taken while the winner's open is blocked.
	for deadline := time.Now().Add(10 * time.Second); conflicts.Load() < 9 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if f.provider.opens.Load() != 1 || created.Load() != 1 || conflicts.Load() != 9 {
		t.Fatalf("opens=%d created=%d conflicts=%d, want 1/1/9", f.provider.opens.Load(), created.Load(), conflicts.Load())
	}
	again, err := f.bridge.StartSession(context.Background(), hitl.StartRequest{UserID: f.user.ID, IdempotencyKey: "k1"})
	if err != nil || again.ProviderConversationID != "CONV-1" || again.Status != hitl.StatusWaiting {
		t.Fatalf("repeat after open = %+v, %v", again, err)
	}
	if f.provider.opens.Load() != 1 {
		t.Fatal("a repeat opened a second provider conversation")
	}
	other, _ := f.bridge.CreateUser(context.Background(), hitl.UserDetails{Name: "Bob"})
	if _, err := f.bridge.StartSession(context.Background(), hitl.StartRequest{UserID: other.ID, IdempotencyKey: "k1"}); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Fatalf("key reused for another user: err = %v, want conflict", err)
	}
}

func TestStartSessionFailureCanBeRetried(t *testing.T) {
	f := newFixture(t)
	f.provider.open = func(context.Context, hitl.OpenRequest) (hitl.Opened, error) {
		return hitl.Opened{}, errors.New("boom")
	}
	_, err := f.bridge.StartSession(context.Background(), hitl.StartRequest{UserID: f.user.ID, IdempotencyKey: "k"})
	if hitl.ErrorCode(err) != hitl.CodeProvider || hitl.ErrorMessage(err) == "boom" {
		t.Fatalf("err = %v (%s), want provider_error without the cause", err, hitl.ErrorMessage(err))
	}
	f.provider.open = nil
	if s := f.start(t, "k"); s.Status != hitl.StatusWaiting {
		t.Fatalf("retry gave %+v", s)
	}
}

func TestStartSessionValidates(t *testing.T) {
	f := newFixture(t)
	for name, req := range map[string]hitl.StartRequest{
		"no user":          {},
		"unknown user":     {UserID: "usr_nobody"},
		"unknown provider": {UserID: f.user.ID, Provider: "teams"},
		"huge title":       {UserID: f.user.ID, Title: string(make([]byte, 600))},
	} {
		if _, err := f.bridge.StartSession(context.Background(), req); err == nil || hitl.ErrorCode(err) == hitl.CodeInternal {
			t.Errorf("%s: err = %v, want a client error", name, err)
		}
	}
	if f.provider.opens.Load() != 0 {
		t.Fatal("invalid requests reached the provider")
	}
}

func agentEvent(conv, key string, typ hitl.EventType) hitl.ProviderEvent {
	return hitl.ProviderEvent{Provider: "fake", ConversationID: conv, Key: key, Type: typ, Agent: &hitl.Agent{ID: "agent@x", Name: "Ann"}}
}

func TestProviderEventsReachTheBotOnceAndInOrder(t *testing.T) {
	f := newFixture(t)
	s := f.start(t, "")
	ctx := context.Background()
	assigned := agentEvent(s.ProviderConversationID, "assigned-1", hitl.EventAssigned)
	msg := agentEvent(s.ProviderConversationID, "msg-1", hitl.EventMessage)
	msg.Message = &hitl.Message{Type: hitl.TypeText, Text: "Hello, I'm Ann"}
	closed := agentEvent(s.ProviderConversationID, "closed", hitl.EventStopped)
	closed.Reason = hitl.ReasonAgentClosed
	for _, e := range []hitl.ProviderEvent{assigned, assigned, msg, msg, closed, closed, agentEvent("CONV-unknown", "x", hitl.EventMessage)} {
		if err := f.bridge.HandleProviderEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	got := f.bot.received()
	want := []hitl.EventType{hitl.EventAssigned, hitl.EventMessage, hitl.EventStopped}
	if len(got) != len(want) {
		t.Fatalf("bot received %d events %+v, want %v", len(got), got, want)
	}
	for i, e := range got {
		if e.Type != want[i] || e.SessionID != s.ID || e.BotConversationID != "bc-1" || e.Provider != "fake" {
			t.Fatalf("event %d = %+v", i, e)
		}
	}
	if got[1].Message.Text != "Hello, I'm Ann" || got[1].Agent.Name != "Ann" || got[2].Reason != hitl.ReasonAgentClosed {
		t.Fatalf("events lost their content: %+v", got)
	}
	after, _ := f.bridge.GetSession(ctx, s.ID)
	if after.Status != hitl.StatusClosed || after.Agent == nil || after.Agent.ID != "agent@x" {
		t.Fatalf("session after = %+v", after)
	}
	// The bot stopping a closed session emits nothing more.
	if _, err := f.bridge.StopSession(ctx, s.ID, ""); err != nil || len(f.bot.received()) != 3 {
		t.Fatalf("stop after close: err=%v events=%d", err, len(f.bot.received()))
	}
}

func TestStopSessionClosesAtTheProviderOnce(t *testing.T) {
	f := newFixture(t)
	s := f.start(t, "")
	var closes atomic.Int32
	f.provider.close = func(context.Context, hitl.Session) error {
		if closes.Add(1) == 1 {
			return errors.New("provider down")
		}
		return nil
	}
	ctx := context.Background()
	if _, err := f.bridge.StopSession(ctx, s.ID, ""); hitl.ErrorCode(err) != hitl.CodeProvider {
		t.Fatalf("err = %v, want provider_error", err)
	}
	if got, _ := f.bridge.GetSession(ctx, s.ID); got.Closed() {
		t.Fatal("a failed close marked the session closed")
	}
	for range 2 {
		got, err := f.bridge.StopSession(ctx, s.ID, "")
		if err != nil || !got.Closed() || got.CloseReason != hitl.ReasonBotStopped {
			t.Fatalf("stop = %+v, %v", got, err)
		}
	}
	if closes.Load() != 2 {
		t.Fatalf("provider close called %d times, want 2 (one failure, one success)", closes.Load())
	}
	ev := f.bot.received()
	if len(ev) != 1 || ev[0].Type != hitl.EventStopped || ev[0].Reason != hitl.ReasonBotStopped {
		t.Fatalf("bot received %+v", ev)
	}
	if _, err := f.bridge.SendMessage(ctx, s.ID, "", hitl.Message{Type: hitl.TypeText, Text: "hi"}); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Fatalf("send to closed session: err = %v, want conflict", err)
	}
}

func TestSendMessageToEndedConversationClosesTheSession(t *testing.T) {
	f := newFixture(t)
	s := f.start(t, "")
	f.provider.send = func(context.Context, hitl.Session, hitl.Message) (hitl.Sent, error) {
		return hitl.Sent{}, hitl.ErrConversationEnded
	}
	ctx := context.Background()
	_, err := f.bridge.SendMessage(ctx, s.ID, "", hitl.Message{Type: hitl.TypeText, Text: "hi"})
	if hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Fatalf("err = %v, want conflict", err)
	}
	got, _ := f.bridge.GetSession(ctx, s.ID)
	ev := f.bot.received()
	if !got.Closed() || len(ev) != 1 || ev[0].Reason != hitl.ReasonAgentClosed {
		t.Fatalf("session %+v, events %+v", got, ev)
	}
}

func TestSendMessageChecksTheUserAndKeepsRefreshedVisitor(t *testing.T) {
	f := newFixture(t)
	s := f.start(t, "")
	ctx := context.Background()
	if _, err := f.bridge.SendMessage(ctx, s.ID, "usr_other", hitl.Message{Type: hitl.TypeText, Text: "hi"}); hitl.ErrorCode(err) != hitl.CodeInvalid {
		t.Fatalf("wrong user: err = %v", err)
	}
	f.provider.send = func(_ context.Context, s hitl.Session, _ hitl.Message) (hitl.Sent, error) {
		v := s.Visitor
		v.Credentials = hitl.Credentials("fresh")
		return hitl.Sent{MessageID: "m1", Visitor: &v}, nil
	}
	if id, err := f.bridge.SendMessage(ctx, s.ID, f.user.ID, hitl.Message{Type: hitl.TypeText, Text: "hi"}); err != nil || id != "m1" {
		t.Fatalf("send = %q, %v", id, err)
	}
	got, _ := f.store.GetSession(ctx, s.ID)
	if string(got.Visitor.Credentials) != "fresh" {
		t.Fatalf("refreshed credentials not kept: %q", []byte(got.Visitor.Credentials))
	}
}

// refreshingProvider is a fakeProvider whose visitor credentials expire.
type refreshingProvider struct {
	fakeProvider
	refresh func(context.Context, hitl.Visitor) (hitl.Visitor, error)
}

func (p *refreshingProvider) RefreshVisitor(ctx context.Context, v hitl.Visitor) (hitl.Visitor, error) {
	return p.refresh(ctx, v)
}

func TestRefreshVisitorsRenewsDueCredentialsOnly(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Now()
	soon := hitl.Visitor{ID: "visitor-1", Credentials: hitl.Credentials("old"), CredentialsExpireAt: now.Add(10 * time.Minute)}
	later := hitl.Visitor{ID: "visitor-1", Credentials: hitl.Credentials("later"), CredentialsExpireAt: now.Add(5 * time.Hour)}
	due, notDue, other := f.start(t, ""), f.start(t, ""), f.start(t, "")
	for id, v := range map[string]hitl.Visitor{due.ID: soon, notDue.ID: later} {
		if err := f.store.SaveVisitor(ctx, id, v); err != nil {
			t.Fatal(err)
		}
	}
	renewed := now.Add(8 * time.Hour)
	p := &refreshingProvider{refresh: func(_ context.Context, v hitl.Visitor) (hitl.Visitor, error) {
		if string(v.Credentials) != "old" {
			t.Errorf("refreshed credentials %q, want the due ones", []byte(v.Credentials))
		}
		return hitl.Visitor{ID: v.ID, Credentials: hitl.Credentials("new"), CredentialsExpireAt: renewed}, nil
	}}
	f.bridge.Providers["fake"] = p
	// A due visitor of a provider that renews nothing is left alone.
	f.bridge.Providers["plain"] = &fakeProvider{}
	if err := f.store.SaveVisitor(ctx, other.ID, soon); err != nil {
		t.Fatal(err)
	}
	if n, err := f.bridge.RefreshVisitors(ctx, time.Hour); err != nil || n != 2 {
		t.Fatalf("RefreshVisitors = %d, %v; want 2 (the two due sessions of the renewing provider)", n, err)
	}
	for id, want := range map[string]string{due.ID: "new", other.ID: "new", notDue.ID: "later"} {
		got, err := f.store.GetSession(ctx, id)
		if err != nil || string(got.Visitor.Credentials) != want {
			t.Errorf("session %s credentials %q, %v; want %q", id, []byte(got.Visitor.Credentials), err, want)
		}
	}
	if n, err := f.bridge.RefreshVisitors(ctx, time.Hour); err != nil || n != 0 {
		t.Errorf("second RefreshVisitors = %d, %v; want nothing due", n, err)
	}
}

func TestVisitorCredentialsNeverPrint(t *testing.T) {
	v := hitl.Visitor{ID: "visitor-1", Credentials: hitl.Credentials("s3cret")}
	var log strings.Builder
	slog.New(slog.NewJSONHandler(&log, nil)).Info("x", "visitor", v, "credentials", v.Credentials)
	slog.New(slog.NewTextHandler(&log, nil)).Info("x", "visitor", v, "credentials", v.Credentials)
	out := fmt.Sprintf("%v %+v %#v %s %v", v, v, v, v.Credentials, v.Credentials) + log.String()
	if body, err := json.Marshal(hitl.Session{ID: "ses_1", Visitor: v}); err != nil {
		t.Fatal(err)
	} else {
		out += string(body)
	}
	if strings.Contains(out, "s3cret") || !strings.Contains(out, "visitor-1") {
		t.Errorf("credentials printed, or the id not: %s", out)
	}
}

func TestOutboxKeepsEventsWhileTheBotIsDown(t *testing.T) {
	f := newFixture(t)
	s := f.start(t, "")
	ctx := context.Background()
	f.bot.down = true
	for i, key := range []string{"m1", "m2", "m3"} {
		e := agentEvent(s.ProviderConversationID, key, hitl.EventMessage)
		e.Message = &hitl.Message{Type: hitl.TypeText, Text: key}
		e.OccurredAt = time.Now().Add(time.Duration(i) * time.Second)
		if err := f.bridge.HandleProviderEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.bot.received()); n != 0 {
		t.Fatalf("bot down but %d events delivered", n)
	}
	f.bot.down = false
	d := f.bridge.Outbox.(*delivery.Dispatcher)
	d.Now = func() time.Time { return time.Now().Add(time.Hour) } // past every backoff
	if n, err := d.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v", n, err)
	}
	got := f.bot.received()
	if len(got) != 3 || got[0].Message.Text != "m1" || got[1].Message.Text != "m2" || got[2].Message.Text != "m3" {
		t.Fatalf("after recovery the bot got %+v", got)
	}
}
