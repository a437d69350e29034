package app_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// With routing on, LiveChat routes an available agent into the chat and
// sends the webhooks before transfer_chat answers: the bot hears the
// assignment and the greeting, once each, and never the integration's own
// agent. The agent leaving later sets the session waiting again.
func TestLiveChatRoutingOn(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		ann := livechattest.Ann
		e.LiveChat.SetRouting(livechattest.RoutingAssign, ann)
		e.LiveChat.SetDeliveries(2) // and each webhook arrives twice
		_, u := e.Do(t, "POST", "/v1/users", map[string]any{"name": "Ada"})
		status, s := e.Do(t, "POST", "/v1/sessions", map[string]any{"userId": u["userId"], "botConversationId": "bc-r"})
		if status != http.StatusCreated || s["status"] != "assigned" {
			t.Fatalf("start: %d %v, want 201 assigned", status, s)
		}
		if agent, _ := s["agent"].(map[string]any); agent["id"] != ann.ID {
			t.Errorf("start answer agent = %v, want %s", s["agent"], ann.ID)
		}
		got := e.Bot.Events()
		if types := eventTypes(got); !slices.Equal(types, []string{"hitl.assigned", "hitl.message"}) {
			t.Fatalf("bot received %v, want the assignment and the greeting", types)
		}
		for _, ev := range got {
			if ev.Agent == nil || ev.Agent.ID != ann.ID {
				t.Errorf("%s names agent %+v, want %s (never the integration's agent)", ev.Type, ev.Agent, ann.ID)
			}
			if ev.SessionID != s["sessionId"] {
				t.Errorf("%s for session %s, want %s", ev.Type, ev.SessionID, s["sessionId"])
			}
		}

		chatID := s["providerConversationId"].(string)
		simcore.Delivered(t)(e.LiveChat.Deliver("user_removed_from_chat", map[string]any{
			"chat_id": chatID, "thread_id": "T1", "user_id": ann.ID, "user_type": "agent", "reason": "manual",
		}))
		_, after := e.Do(t, "GET", "/v1/sessions/"+s["sessionId"].(string), nil)
		if after["status"] != "waiting" || after["agent"] != nil {
			t.Errorf("after the agent left: status %v agent %v, want waiting without agent", after["status"], after["agent"])
		}
		if last := e.Bot.Events(); last[len(last)-1].Type != hitl.EventUnassigned {
			t.Errorf("bot received %v, want hitl.unassigned last", eventTypes(last))
		}
	})
}

// With routing on and nobody available, the chat queues: the session
// waits and no agent is reported.
func TestLiveChatRoutingQueues(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		e.LiveChat.SetRouting(livechattest.RoutingQueue)
		_, u := e.Do(t, "POST", "/v1/users", map[string]any{"name": "Ada"})
		status, s := e.Do(t, "POST", "/v1/sessions", map[string]any{"userId": u["userId"]})
		if status != http.StatusCreated || s["status"] != "waiting" || s["agent"] != nil {
			t.Fatalf("start: %d %v, want 201 waiting without agent", status, s)
		}
		for _, ev := range e.Bot.Events() {
			if ev.Type == hitl.EventAssigned || ev.Agent != nil {
				t.Errorf("a queued chat reported an agent: %+v", ev)
			}
		}
	})
}
