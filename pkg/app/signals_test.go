package app_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// Bad input to the hand-off options and signals gets a clear 4xx and
// reaches no platform.
func TestHandoffOptionsRefuseBadInput(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		_, u := e.Do(t, "POST", "/v1/users", map[string]any{"name": "Ada"})
		bigContext := map[string]string{}
		for i := range 21 {
			bigContext[strings.Repeat("k", i+1)] = "v"
		}
		for name, body := range map[string]map[string]any{
			"bad ifNoAgent":       {"userId": u["userId"], "ifNoAgent": "wait"},
			"21 context pairs":    {"userId": u["userId"], "context": bigContext},
			"empty context key":   {"userId": u["userId"], "context": map[string]string{"": "x"}},
			"long context value":  {"userId": u["userId"], "context": map[string]string{"plan": strings.Repeat("x", 1025)}},
			"context not strings": {"userId": u["userId"], "context": map[string]any{"n": 1}},
			"unknown provider":    {"userId": u["userId"], "provider": "teams"},
		} {
			status, res := e.Do(t, "POST", "/v1/sessions", body)
			if status != http.StatusBadRequest || res["error"].(map[string]any)["code"] != "invalid_argument" {
				t.Errorf("%s: %d %v, want 400 invalid_argument", name, status, res)
			}
		}
		if n := e.LiveChat.Calls("start_chat") + e.LiveChat.Calls("customer_token"); n != 0 {
			t.Errorf("refused starts made %d LiveChat calls", n)
		}

		sessionID, _ := e.Handoff(t)
		if status, res := e.Do(t, "POST", "/v1/sessions/"+sessionID+"/messages", map[string]any{
			"type": "text", "payload": map[string]string{"text": "hi"}, "from": "agent",
		}); status != http.StatusBadRequest {
			t.Errorf("message from an agent: %d %v, want 400", status, res)
		}
		if status, res := e.Do(t, "POST", "/v1/sessions/"+sessionID+"/typing", map[string]any{"text": strings.Repeat("x", 16*1024+1)}); status != http.StatusBadRequest {
			t.Errorf("oversize typing preview: %d %v, want 400", status, res)
		}
		if status, res := e.Do(t, "POST", "/v1/sessions/"+sessionID+"/stop", nil); status != http.StatusOK {
			t.Fatalf("stop: %d %v", status, res)
		}
		for _, route := range []string{"typing", "seen"} {
			status, res := e.Do(t, "POST", "/v1/sessions/"+sessionID+"/"+route, map[string]any{})
			if status != http.StatusConflict {
				t.Errorf("%s on a closed session: %d %v, want 409", route, status, res)
			}
		}
		if status, _ := e.Do(t, "POST", "/v1/sessions/ses_missing/typing", nil); status != http.StatusNotFound {
			t.Errorf("typing on a missing session: %d, want 404", status)
		}
		if status, _ := e.Do(t, "GET", "/v1/availability?provider=teams", nil); status != http.StatusBadRequest {
			t.Errorf("availability of an unknown provider: %d, want 400", status)
		}
	})
}

// The hand-off metrics are on GET session and on hitl.stopped.
func TestHandoffMetrics(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		sessionID, chatID := e.Handoff(t)
		e.Clock.Advance(30 * time.Second)
		if _, err := e.LiveChat.AgentJoins(chatID, livechattest.Ann); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(15 * time.Second)
		if _, err := e.LiveChat.AgentSays(chatID, "Hello"); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(time.Minute)
		_, s := e.Do(t, "GET", "/v1/sessions/"+sessionID, nil)
		m, _ := s["metrics"].(map[string]any)
		if m["timeToAssignmentSeconds"] == nil || m["timeToFirstReplySeconds"] == nil || m["abandoned"] != false {
			t.Fatalf("GET session metrics = %v", s["metrics"])
		}
		if m["timeToFirstReplySeconds"].(float64) < m["timeToAssignmentSeconds"].(float64) {
			t.Errorf("first reply before assignment: %v", m)
		}
		if status, _ := e.Do(t, "POST", "/v1/sessions/"+sessionID+"/stop", map[string]any{"reason": "resolved: refund sent"}); status != http.StatusOK {
			t.Fatal("stop failed")
		}
		events := e.Bot.Events()
		last := events[len(events)-1]
		if last.Type != "hitl.stopped" || last.Metrics == nil || last.Metrics.DurationSeconds == nil || last.Metrics.Abandoned {
			t.Fatalf("hitl.stopped = %+v", last)
		}
		// The bot's stop reason is kept: on the event and the session.
		if _, s := e.Do(t, "GET", "/v1/sessions/"+sessionID, nil); last.Note != "resolved: refund sent" || s["closeNote"] != "resolved: refund sent" {
			t.Errorf("stop note: event %q, session %v", last.Note, s["closeNote"])
		}
		// And as CloudWatch metrics (embedded metric format).
		emitted := e.Metrics.String()
		for _, want := range []string{`"TimeToAssignment":30\d{3}[,.]`, `"TimeToFirstReply":45\d{3}[,.]`, `"HandoffDuration":105\d{3}[,.]`, `"HandoffsEnded":1,`} {
			if !regexp.MustCompile(want).MatchString(emitted) {
				t.Errorf("no metric %s in:\n%s", want, emitted)
			}
		}
		if strings.Contains(emitted, "HandoffsAbandoned") {
			t.Error("an assigned hand-off counted as abandoned")
		}
	})
}

// Platforms ask for the rating as the chat ends: a rating that arrives
// after the end still reaches the bot, once.
func TestRatingAfterTheEndReachesTheBot(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		_, chatID := e.Handoff(t)
		simcore.Delivered(t)(e.LiveChat.AgentJoins(chatID, livechattest.Ann))
		simcore.Delivered(t)(e.LiveChat.AgentCloses(chatID))
		simcore.Delivered(t)(e.LiveChat.CustomerRates(chatID, 1, "thanks"))
		simcore.Delivered(t)(e.LiveChat.CustomerRates(chatID, 1, "thanks"))

		zohoSession, convID := e.HandoffTo(t, "zoho")
		if status, _ := e.Do(t, "POST", "/v1/sessions/"+zohoSession+"/stop", nil); status != http.StatusOK {
			t.Fatal("stop failed")
		}
		simcore.Delivered(t)(e.Zoho.VisitorRates(convID, 4, "quick"))

		var rated []hitl.Event
		for _, ev := range e.Bot.Events() {
			if ev.Type == hitl.EventRated {
				rated = append(rated, ev)
			}
		}
		if len(rated) != 2 || rated[0].Rating.Comment != "thanks" || rated[1].Rating.Score != 4 || rated[1].Provider != "zoho" {
			t.Fatalf("ratings after the end = %+v, want LiveChat's once and SalesIQ's", rated)
		}
	})
}
