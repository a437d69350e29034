package hitl_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

func types(events []hitl.Event) []hitl.EventType {
	var out []hitl.EventType
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

// SalesIQ-like: the platform assigns an operator and greets while the open
// call runs, before its answer names the conversation.
func TestDeliveriesBeforeTheOpenAnswerAreHeldAndReplayed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.provider.open = func(ctx context.Context, r hitl.OpenRequest) (hitl.Opened, error) {
		assigned := agentEvent("100000000000000001", "attender-1", hitl.EventAssigned)
		greeting := agentEvent("100000000000000001", "msg-1", hitl.EventMessage)
		greeting.Message = &hitl.Message{Type: hitl.TypeText, Text: "Hi, I'm Ann"}
		for _, e := range []hitl.ProviderEvent{assigned, greeting, greeting} {
			e.MaybeOpening, e.AltConversationIDs = true, []string{"vc-9"}
			if err := f.bridge.HandleProviderEvent(ctx, e); err != nil {
				return hitl.Opened{}, err
			}
		}
		return hitl.Opened{ConversationID: "vc-9", AltConversationIDs: []string{"100000000000000001"}}, nil
	}
	s := f.start(t, "")
	if s.Status != hitl.StatusAssigned || s.Agent == nil || s.Agent.ID != "agent@x" {
		t.Errorf("StartSession answered %s with agent %+v; want assigned to agent@x", s.Status, s.Agent)
	}
	if got := types(f.bot.received()); !slices.Equal(got, []hitl.EventType{hitl.EventAssigned, hitl.EventMessage}) {
		t.Fatalf("bot received %v, want the assignment then the greeting", got)
	}
	// A later delivery, by either id, is applied in order after them.
	later := agentEvent("vc-9", "msg-2", hitl.EventMessage)
	later.MaybeOpening = true
	if err := f.bridge.HandleProviderEvent(ctx, later); err != nil {
		t.Fatal(err)
	}
	if got := f.bot.received(); len(got) != 3 || got[2].Type != hitl.EventMessage || got[2].SessionID != s.ID {
		t.Fatalf("bot received %v after a later message", types(got))
	}
}

// A held delivery whose conversation is recorded between the webhook's
// lookup and its hold is applied by the webhook itself.
func TestHeldDeliveryOfAConversationRecordedMeanwhile(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.start(t, "")
	e := agentEvent(s.ProviderConversationID, "attender-1", hitl.EventAssigned)
	e.MaybeOpening = true
	// The bridge caches nothing for this conversation yet, so this is the
	// path of a delivery racing the opener.
	if err := f.store.Hold(ctx, e, timeIn(f)); err != nil {
		t.Fatal(err)
	}
	if err := f.bridge.HandleProviderEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	if got := f.bot.received(); len(got) != 1 || got[0].Type != hitl.EventAssigned {
		t.Fatalf("bot received %v, want one assignment", types(got))
	}
}

// heldReads counts the Held reads of a bridge's store.
type heldReads struct {
	hitl.SessionStore
	n atomic.Int32
}

func (s *heldReads) Held(ctx context.Context, provider, conversationID string, now time.Time) ([]hitl.ProviderEvent, error) {
	s.n.Add(1)
	return s.SessionStore.Held(ctx, provider, conversationID, now)
}

// process is another process (a Lambda container) of the bridge of f,
// sharing its store, provider and bot, with its held reads counted.
func (f *fixture) process() (*hitl.Bridge, *heldReads) {
	reads := &heldReads{SessionStore: f.store}
	return &hitl.Bridge{Store: reads, Providers: f.bridge.Providers, DefaultProvider: f.bridge.DefaultProvider,
		Outbox: f.bridge.Outbox, Log: f.bridge.Log}, reads
}

// maybeOpening is agent message key of conv, delivered while its
// conversation may still be opening.
func maybeOpening(conv, key string) hitl.ProviderEvent {
	e := agentEvent(conv, key, hitl.EventMessage)
	e.MaybeOpening, e.Message = true, &hitl.Message{Type: hitl.TypeText, Text: key}
	return e
}

func keys(events []hitl.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Message.Text)
	}
	return out
}

// The held events of a conversation are read once per process: by the
// opener after recording it, by the first delivery to any other process,
// and never again by the deliveries after it.
func TestHeldEventsAreReadOncePerProcess(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	webhooks, reads := f.process()
	f.provider.open = func(ctx context.Context, r hitl.OpenRequest) (hitl.Opened, error) {
		if err := webhooks.HandleProviderEvent(ctx, maybeOpening("conv-1", "early")); err != nil {
			return hitl.Opened{}, err
		}
		return hitl.Opened{ConversationID: "conv-1", AltConversationIDs: []string{"alias-1"}}, nil
	}
	opener, openerReads := f.process()
	if _, err := opener.StartSession(ctx, hitl.StartRequest{UserID: f.user.ID}); err != nil {
		t.Fatal(err)
	}
	if n := openerReads.n.Load(); n != 2 {
		t.Errorf("the opener read held events %d times, want once per conversation id (2)", n)
	}
	reads.n.Store(0)
	for i := range 5 {
		if err := webhooks.HandleProviderEvent(ctx, maybeOpening("conv-1", fmt.Sprintf("m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := reads.n.Load(); n != 2 {
		t.Errorf("5 deliveries to a process that had not replayed read held events %d times, want 2 (once per id)", n)
	}
	if err := opener.HandleProviderEvent(ctx, maybeOpening("alias-1", "m5")); err != nil {
		t.Fatal(err)
	}
	if n := openerReads.n.Load(); n != 2 {
		t.Errorf("a delivery to the opener's process read held events again (%d reads)", n)
	}
	if got := keys(f.bot.received()); !slices.Equal(got, []string{"early", "m0", "m1", "m2", "m3", "m4", "m5"}) {
		t.Fatalf("bot received %v", got)
	}
}

// An opener that dies between recording the conversation and replaying
// what was held: the first delivery to each process replays it, in order.
func TestHeldEventsOfAnOpenerThatDiedAreReplayedFirst(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := hitl.Session{ID: "ses_1", UserID: f.user.ID, Provider: "fake", Channel: hitl.ChannelNative,
		Status: hitl.StatusOpening, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if _, err := f.store.CreateSession(ctx, s, ""); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"early-1", "early-2"} {
		if err := f.store.Hold(ctx, maybeOpening("conv-1", key), timeIn(f)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // hold order is by the wall clock
	}
	if err := f.store.Opened(ctx, s.ID, hitl.Opened{ConversationID: "conv-1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The opener dies here.
	for _, key := range []string{"later-1", "later-2"} {
		if err := f.bridge.HandleProviderEvent(ctx, maybeOpening("conv-1", key)); err != nil {
			t.Fatal(err)
		}
	}
	if got := keys(f.bot.received()); !slices.Equal(got, []string{"early-1", "early-2", "later-1", "later-2"}) {
		t.Fatalf("bot received %v, want the held events first", got)
	}
}

// A holder that dies between its hold and its second look answered no 2xx:
// a process that already replayed the conversation does not read the hold
// again, and SalesIQ's retry of that delivery is applied once.
func TestHolderThatDiedIsCoveredByTheRetry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.start(t, "")
	conv := s.ProviderConversationID
	if err := f.bridge.HandleProviderEvent(ctx, maybeOpening(conv, "m1")); err != nil {
		t.Fatal(err)
	}
	lost := maybeOpening(conv, "m2")
	if err := f.store.Hold(ctx, lost, timeIn(f)); err != nil { // then the holder dies
		t.Fatal(err)
	}
	if err := f.bridge.HandleProviderEvent(ctx, maybeOpening(conv, "m3")); err != nil {
		t.Fatal(err)
	}
	for range 2 { // SalesIQ retries the unanswered delivery
		if err := f.bridge.HandleProviderEvent(ctx, lost); err != nil {
			t.Fatal(err)
		}
	}
	// The dead holder's delivery was never answered, so it owes no order.
	if got := slices.Sorted(slices.Values(keys(f.bot.received()))); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Fatalf("bot received %v, want m1, m2 and m3 once each", got)
	}
}

func TestDeliveriesOfConversationsNotOursAreIgnored(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.start(t, "")
	foreign := agentEvent("CONV-other", "m1", hitl.EventMessage)
	if err := f.bridge.HandleProviderEvent(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	if held, _ := f.store.Held(ctx, "fake", "CONV-other", timeIn(f).Add(-hitl.HoldFor)); len(held) != 0 {
		t.Errorf("a delivery that cannot precede an open answer was held: %+v", held)
	}
	if got := f.bot.received(); len(got) != 0 {
		t.Errorf("bot received %v for a conversation it never started", types(got))
	}
}

// LiveChat-like: the conversation is kept before the routing call, whose
// webhooks arrive before Open returns.
func TestDeliveriesAfterKeepConversationReachTheBot(t *testing.T) {
	f := newFixture(t)
	f.provider.open = func(ctx context.Context, r hitl.OpenRequest) (hitl.Opened, error) {
		if err := r.KeepConversation(ctx, "CHAT-1"); err != nil {
			return hitl.Opened{}, err
		}
		routed := agentEvent("CHAT-1", "added-1", hitl.EventAssigned)
		greeting := agentEvent("CHAT-1", "msg-1", hitl.EventMessage)
		greeting.Message = &hitl.Message{Type: hitl.TypeText, Text: "Hello"}
		for _, e := range []hitl.ProviderEvent{routed, greeting} {
			if err := f.bridge.HandleProviderEvent(ctx, e); err != nil {
				return hitl.Opened{}, err
			}
		}
		return hitl.Opened{ConversationID: "CHAT-1", Visitor: hitl.Visitor{ID: "visitor-1"}}, nil
	}
	s := f.start(t, "")
	if s.Status != hitl.StatusAssigned {
		t.Errorf("status = %s, want assigned", s.Status)
	}
	if got := types(f.bot.received()); !slices.Equal(got, []hitl.EventType{hitl.EventAssigned, hitl.EventMessage}) {
		t.Fatalf("bot received %v", got)
	}
}

// An open that fails after the conversation was kept leaves nothing that
// maps to it, and the retry can open again.
func TestFailedOpenAfterKeepConversationCanBeRetried(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.provider.open = func(ctx context.Context, r hitl.OpenRequest) (hitl.Opened, error) {
		if err := r.KeepConversation(ctx, "CHAT-1"); err != nil {
			return hitl.Opened{}, err
		}
		return hitl.Opened{}, errors.New("transfer failed")
	}
	if _, err := f.bridge.StartSession(ctx, hitl.StartRequest{UserID: f.user.ID, IdempotencyKey: "k"}); hitl.ErrorCode(err) != hitl.CodeProvider {
		t.Fatalf("err = %v, want provider_error", err)
	}
	if _, err := f.store.SessionByConversation(ctx, "fake", "CHAT-1"); !errors.Is(err, hitl.ErrNotFound) {
		t.Fatalf("the abandoned conversation still maps to a session: %v", err)
	}
	f.provider.open = nil
	if s := f.start(t, "k"); s.Status != hitl.StatusWaiting {
		t.Fatalf("retry = %+v", s)
	}
}

func TestAgentLeavingSetsTheSessionWaiting(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.start(t, "")
	conv := s.ProviderConversationID
	first := agentEvent(conv, "added-ann", hitl.EventAssigned)
	otherLeft := agentEvent(conv, "removed-bob", hitl.EventUnassigned)
	otherLeft.Agent = &hitl.Agent{ID: "bob@x"}
	annLeft := agentEvent(conv, "removed-ann", hitl.EventUnassigned)
	for _, e := range []hitl.ProviderEvent{first, otherLeft, annLeft} {
		if err := f.bridge.HandleProviderEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if got := types(f.bot.received()); !slices.Equal(got, []hitl.EventType{hitl.EventAssigned, hitl.EventUnassigned}) {
		t.Fatalf("bot received %v", got)
	}
	got, err := f.bridge.GetSession(ctx, s.ID)
	if err != nil || got.Status != hitl.StatusWaiting || got.Agent != nil {
		t.Fatalf("session = %+v, %v; want waiting without agent", got, err)
	}
}

// timeIn is a hold deadline within the bridge's hold window.
func timeIn(*fixture) time.Time { return time.Now().Add(hitl.HoldFor) }
