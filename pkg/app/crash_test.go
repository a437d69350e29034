package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// startWithKey posts startHitl with an Idempotency-Key; a crashed request
// gives status 0.
func startWithKey(t *testing.T, e *apptest.Env, userID, provider string) (int, map[string]any) {
	body, _ := json.Marshal(map[string]any{"userId": userID, "provider": provider, "title": "Refund", "botConversationId": "bc-7"})
	req, _ := http.NewRequest("POST", e.Server.URL+"/v1/sessions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apptest.BotKey)
	req.Header.Set("Idempotency-Key", "crash-1")
	resp, err := e.Server.Client().Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestStartAfterACrashReusesTheLiveChatChat(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		e.App.Bridge.Providers[hitl.LiveChat] = &apptest.CrashAfterOpen{Provider: e.App.Bridge.Providers[hitl.LiveChat]}
		_, u := e.Do(t, "POST", "/v1/users", map[string]any{"name": "Ada"})
		// Go's client retries a request with an Idempotency-Key whose
		// connection broke, so the crash is seen as 409 (still opening) or
		// as no answer at all.
		if status, _ := startWithKey(t, e, u["userId"].(string), "livechat"); status != 0 && status != http.StatusConflict {
			t.Fatalf("the crashing start answered %d", status)
		}
		if status, out := startWithKey(t, e, u["userId"].(string), "livechat"); status != http.StatusConflict {
			t.Fatalf("a retry while the opener may still be alive: %d %v", status, out)
		}
		e.Clock.Advance(3 * time.Minute) // the opener is presumed dead
		status, s := startWithKey(t, e, u["userId"].(string), "livechat")
		if status != http.StatusCreated || s["status"] != "waiting" {
			t.Fatalf("retry after the crash: %d %v", status, s)
		}
		if n := e.LiveChat.Calls("start_chat"); n != 1 {
			t.Fatalf("%d LiveChat chats for one handoff", n)
		}
		chatID := s["providerConversationId"].(string)
		simcore.Delivered(t)(e.LiveChat.AgentJoins(chatID, livechattest.Ann))
		if got := e.Bot.Events(); len(got) != 1 || got[0].SessionID != s["sessionId"] {
			t.Fatalf("the resumed chat is not wired to the session: %+v", got)
		}
		if status, again := startWithKey(t, e, u["userId"].(string), "livechat"); status != http.StatusCreated || again["sessionId"] != s["sessionId"] {
			t.Fatalf("a later repeat: %d %v", status, again)
		}
	})
}

func TestStartAfterACrashAtZohoOpensASecondConversation(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t))
	e.App.Bridge.Providers[hitl.Zoho] = &apptest.CrashAfterOpen{Provider: e.App.Bridge.Providers[hitl.Zoho]}
	_, u := e.Do(t, "POST", "/v1/users", map[string]any{"name": "Ada"})
	startWithKey(t, e, u["userId"].(string), "zoho")
	e.Clock.Advance(3 * time.Minute)
	status, s := startWithKey(t, e, u["userId"].(string), "zoho")
	if status != http.StatusCreated || s["status"] != "waiting" {
		t.Fatalf("retry after the crash: %d %v", status, s)
	}
	// SalesIQ's visitor API cannot list a visitor's open conversations, so
	// the first one is left behind (the README says so).
	if n := len(e.Zoho.Conversations()); n != 2 {
		t.Fatalf("%d SalesIQ conversations", n)
	}
}
