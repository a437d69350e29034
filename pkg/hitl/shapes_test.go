package hitl_test

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// The callback bodies have exactly the fields the README's table lists for
// each type, beside the common ones.
func TestCallbackShapes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.start(t, "")
	conv := s.ProviderConversationID
	ann := &hitl.Agent{ID: "ann@x", Name: "Ann", AvatarURL: "https://cdn.example.com/ann.png"}
	events := []hitl.ProviderEvent{
		{Type: hitl.EventQueued, Key: "q", Queue: &hitl.Queue{Position: 2, EstimatedWaitSeconds: 90}},
		{Type: hitl.EventAssigned, Key: "a", Agent: ann},
		{Type: hitl.EventMessage, Key: "m", Agent: ann, Message: &hitl.Message{Type: hitl.TypeText, Text: "Hi"}},
		{Type: hitl.EventSeen, Key: "s", Agent: ann, SeenUpTo: time.Now()},
		{Type: hitl.EventTransferred, Key: "t", Agent: &hitl.Agent{ID: "bob@x", Name: "Bob"}},
		{Type: hitl.EventUnassigned, Key: "u", Agent: &hitl.Agent{ID: "bob@x"}},
		{Type: hitl.EventRated, Key: "r", Rating: &hitl.Rating{Score: 1, OutOf: 1, Comment: "quick"}},
		{Type: hitl.EventStopped, Key: "x", Reason: hitl.ReasonAgentClosed},
	}
	for _, e := range events {
		e.Provider, e.ConversationID = "fake", conv
		if err := f.bridge.HandleProviderEvent(ctx, e); err != nil {
			t.Fatalf("%s: %v", e.Type, err)
		}
	}
	common := []string{"id", "type", "sessionId", "botConversationId", "provider", "occurredAt"}
	want := map[hitl.EventType][]string{
		hitl.EventQueued:      {"queue"},
		hitl.EventAssigned:    {"agent"},
		hitl.EventMessage:     {"agent", "message"},
		hitl.EventSeen:        {"seenUpTo", "agent"},
		hitl.EventTransferred: {"agent"},
		hitl.EventUnassigned:  {"agent"},
		hitl.EventRated:       {"rating"},
		hitl.EventStopped:     {"reason", "metrics"},
	}
	got := f.bot.received()
	if len(got) != len(events) {
		t.Fatalf("bot received %v", types(got))
	}
	for _, e := range got {
		raw, _ := json.Marshal(e)
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			t.Fatal(err)
		}
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		expect := append(slices.Clone(common), want[e.Type]...)
		sort.Strings(expect)
		if !slices.Equal(keys, expect) {
			t.Errorf("%s has fields %v, want %v", e.Type, keys, expect)
		}
	}
	var stopped hitl.Event
	for _, e := range got {
		if e.Type == hitl.EventStopped {
			stopped = e
		}
	}
	if m := stopped.Metrics; m == nil || m.TimeToAssignmentSeconds == nil || m.TimeToFirstReplySeconds == nil || m.Abandoned {
		t.Errorf("hitl.stopped metrics = %+v", stopped.Metrics)
	}
	if got[1].Agent.AvatarURL == "" {
		t.Errorf("hitl.assigned lost the agent's avatar: %+v", got[1].Agent)
	}
}
