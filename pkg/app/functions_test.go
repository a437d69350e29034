package app_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin/page"
	"github.com/hitl-bridge/hitl-bridge/pkg/apigw"
	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/lambdarun"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
)

// The Lambda functions of functions/ play the sample events of events/
// (those `sam local invoke` uses), each wired as its main wires it.

// function is the handler a main of functions/ gives lambda.Start:
// handler (apigw.New or lambdarun.Scheduled) around what the function's
// constructor returned. Main's Load… runs the constructor on the
// configuration it loads; the tests pass the Env's, as in
// function(t, apigw.New)(app.NewActions(e.Config, e.Options)).
func function[T, H any](t *testing.T, handler func(T) H) func(T, error) lambda.Handler {
	return func(v T, err error) lambda.Handler {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return lambda.NewHandler(handler(v))
	}
}

func TestActionsFunctionDrivesAHandoff(t *testing.T) {
	e := apptest.New(t, apptest.Dynamo(t))
	h := function(t, apigw.New)(app.NewActions(e.Config, e.Options))

	if resp := apptest.Invoke(t, h, apptest.Event(t, "actions-healthz.json")); resp.StatusCode != 200 {
		t.Fatalf("healthz: %+v", resp)
	}
	resp := apptest.Invoke(t, h, apptest.Event(t, "actions-create-user.json"))
	var user struct{ UserID string }
	if resp.StatusCode != 201 || json.Unmarshal([]byte(resp.Body), &user) != nil {
		t.Fatalf("create user: %+v", resp)
	}
	resp = apptest.Invoke(t, h, apptest.Event(t, "actions-start-session.json", "usr_demo", user.UserID))
	var session struct{ SessionID, Status string }
	if resp.StatusCode != 201 || json.Unmarshal([]byte(resp.Body), &session) != nil || session.Status != "waiting" {
		t.Fatalf("start session: %+v", resp)
	}
	// The sample's Idempotency-Key makes a replay of the same event return the same session.
	again := apptest.Invoke(t, h, apptest.Event(t, "actions-start-session.json", "usr_demo", user.UserID))
	if again.Body != resp.Body || e.LiveChat.Calls("start_chat") != 1 {
		t.Fatalf("replayed start: %+v, %d chats", again, e.LiveChat.Calls("start_chat"))
	}
	ids := []string{"usr_demo", user.UserID, "ses_demo", session.SessionID}
	for _, step := range []struct {
		event  string
		status int
	}{
		{"actions-send-message.json", 202},
		{"actions-get-session.json", 200},
		{"actions-stop-session.json", 200},
		{"actions-stop-session.json", 200},
		{"actions-send-message.json", 409},
	} {
		if resp := apptest.Invoke(t, h, apptest.Event(t, step.event, ids...)); resp.StatusCode != step.status {
			t.Fatalf("%s: %d %s, want %d", step.event, resp.StatusCode, resp.Body, step.status)
		}
	}
	if got := e.Bot.Events(); len(got) != 1 || got[0].Type != "hitl.stopped" || got[0].Reason != "bot_stopped" {
		t.Fatalf("bot received %+v", got)
	}
}

func TestActionsFunctionRefusesAMalformedEvent(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t))
	h := function(t, apigw.New)(app.NewActions(e.Config, e.Options))
	payload := apptest.Event(t, "actions-create-user.json", `"isBase64Encoded": false`, `"isBase64Encoded": true`)
	if resp := apptest.Invoke(t, h, payload); resp.StatusCode != 400 {
		t.Fatalf("a body that is not base64 under isBase64Encoded: %+v", resp)
	}
}

func TestActionsFunctionServesBotpressEvents(t *testing.T) {
	e := apptest.NewBotpress(t, apptest.Dynamo(t))
	h := function(t, apigw.New)(app.NewActions(e.Config, e.Options))
	var user, session struct{ ID string }
	resp := apptest.Invoke(t, h, apptest.Event(t, "actions-botpress-create-remote-user.json"))
	if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &user) != nil {
		t.Fatalf("createRemoteUser: %+v", resp)
	}
	resp = apptest.Invoke(t, h, apptest.Event(t, "actions-botpress-create-remote-conversation.json"))
	if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &session) != nil {
		t.Fatalf("createRemoteConversation: %+v", resp)
	}
	if e.LiveChat.Calls("start_chat") != 0 {
		t.Fatal("a chat was opened before the user's first message")
	}
	resp = apptest.Invoke(t, h, apptest.Event(t, "actions-botpress-bot-sends-message.json", "usr_demo", user.ID, "ses_demo", session.ID))
	if resp.StatusCode != 200 || e.LiveChat.Calls("start_chat") != 1 {
		t.Fatalf("first user message: %+v, %d chats", resp, e.LiveChat.Calls("start_chat"))
	}
	wrong := apptest.Event(t, "actions-botpress-create-remote-user.json", apptest.BotpressToken, "wrong-token-0123456789-abcdefghij")
	if resp := apptest.Invoke(t, h, wrong); resp.StatusCode != 404 {
		t.Fatalf("wrong token: %+v", resp)
	}
}

func TestAdminFunctionSignsInToThePage(t *testing.T) {
	e := apptest.New(t, apptest.Dynamo(t))
	sessionID, _ := e.Handoff(t)
	h := function(t, apigw.New)(app.NewAdmin(e.Config, e.Options, page.Render))

	resp := apptest.Invoke(t, h, apptest.Event(t, "admin-page.json"))
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, `id="login"`) || strings.Contains(resp.Body, sessionID) {
		t.Fatalf("signed out: %d %.200s", resp.StatusCode, resp.Body)
	}
	resp = apptest.Invoke(t, h, apptest.Event(t, "admin-sign-in.json"))
	if resp.StatusCode != 303 || len(resp.Cookies) != 1 || !strings.Contains(resp.Cookies[0], "Secure") {
		t.Fatalf("sign-in: %d, cookies %v", resp.StatusCode, resp.Cookies)
	}
	session, _, _ := strings.Cut(resp.Cookies[0], ";")
	resp = apptest.Invoke(t, h, apptest.Event(t, "admin-page.json", `"isBase64Encoded"`, `"cookies": [`+strconv.Quote(session)+`], "isBase64Encoded"`))
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, sessionID) || !strings.Contains(resp.Body, `name="csrf"`) {
		t.Fatalf("signed in: %d %.200s", resp.StatusCode, resp.Body)
	}

	// The function serves the page alone: the bot API is the actions function's.
	if resp := apptest.Invoke(t, h, apptest.Event(t, "actions-healthz.json")); resp.StatusCode != 404 {
		t.Fatalf("healthz on the admin function: %+v", resp)
	}
}

func TestRedeliveryFunctionDeliversWhatTheBotRefused(t *testing.T) {
	e := apptest.New(t, apptest.Dynamo(t))
	_, chatID := e.Handoff(t)
	e.Bot.SetDown(true)
	if status, err := e.LiveChat.AgentJoins(chatID, livechattest.Ann); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	e.Bot.SetDown(false)
	e.Clock.Advance(time.Minute)
	h := function(t, lambdarun.Scheduled)(app.NewRedelivery(e.Config, e.Options))
	if _, err := h.Invoke(t.Context(), apptest.Event(t, "redelivery-schedule.json")); err != nil {
		t.Fatal(err)
	}
	if got := e.Bot.Events(); len(got) != 1 || got[0].Type != "hitl.assigned" {
		t.Fatalf("bot received %+v", got)
	}
}

func TestTokenRefreshFunctionRenewsExpiringCustomerTokens(t *testing.T) {
	e := apptest.New(t, apptest.Dynamo(t))
	e.Handoff(t)
	h := function(t, lambdarun.Scheduled)(app.NewTokenRefresh(e.Config, e.Options))
	payload := apptest.Event(t, "tokenrefresh-schedule.json")

	before := e.LiveChat.Calls("token")
	if _, err := h.Invoke(t.Context(), payload); err != nil || e.LiveChat.Calls("token") != before {
		t.Fatalf("fresh token renewed: err %v, token calls %d → %d", err, before, e.LiveChat.Calls("token"))
	}
	e.Clock.Advance(7*time.Hour + 30*time.Minute)
	e.LiveChat.Advance(7*time.Hour + 30*time.Minute)
	if _, err := h.Invoke(t.Context(), payload); err != nil || e.LiveChat.Calls("token") != before+1 {
		t.Fatalf("expiring token: err %v, token calls %d → %d", err, before, e.LiveChat.Calls("token"))
	}
}

func TestWebhooksFunctionTakesTheSampleWebhooks(t *testing.T) {
	e := apptest.New(t, apptest.Dynamo(t))
	sessionID, chatID := e.Handoff(t)
	chat, _ := e.LiveChat.Chat(chatID)
	w, err := app.NewWebhooks(e.IngressConfig(t), e.Options)
	h := function(t, apigw.New)(w, err)
	if len(w.Bridge.Providers) != 0 {
		t.Fatalf("the webhooks function has provider clients: %v", w.Bridge.Providers)
	}

	steps := []struct {
		event string
		want  string // the event type the bot receives, "" for none
	}{
		{"webhooks-livechat-user-added.json", "hitl.assigned"},
		{"webhooks-livechat-incoming-message.json", "hitl.message"},
		{"webhooks-livechat-incoming-message.json", ""}, // a retried delivery
		{"webhooks-livechat-agent-note.json", ""},
		{"webhooks-livechat-incoming-file.json", "hitl.message"},
		{"webhooks-livechat-license-envelope.json", "hitl.message"},
		{"webhooks-livechat-chat-transferred.json", "hitl.queued"}, // the sample carries a queue
		{"webhooks-livechat-chat-deactivated.json", "hitl.stopped"},
	}
	for _, step := range steps {
		before := len(e.Bot.Events())
		if resp := apptest.Invoke(t, h, apptest.Event(t, step.event, "CHAT_DEMO", chatID, "THREAD_DEMO", chat.ThreadID)); resp.StatusCode != 200 {
			t.Fatalf("%s: %+v", step.event, resp)
		}
		got := e.Bot.Events()[before:]
		switch {
		case step.want == "" && len(got) != 0:
			t.Fatalf("%s: the bot received %+v", step.event, got)
		case step.want != "" && (len(got) != 1 || string(got[0].Type) != step.want || got[0].SessionID != sessionID):
			t.Fatalf("%s: the bot received %+v, want one %s", step.event, got, step.want)
		}
	}

	// The same deliveries with a wrong secret are refused and change nothing.
	before := len(e.Bot.Events())
	resp := apptest.Invoke(t, h, apptest.Event(t, "webhooks-livechat-incoming-message.json", "CHAT_DEMO", chatID, apptest.WebhookSecret, "forged"))
	if resp.StatusCode != 401 || len(e.Bot.Events()) != before {
		t.Fatalf("forged delivery: %d, %d new events", resp.StatusCode, len(e.Bot.Events())-before)
	}
}
