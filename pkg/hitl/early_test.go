package hitl_test

import (
	"context"
	"errors"
	"slices"
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
