package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

func TestBadBotRequestsAreRefusedAndChangeNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		sessionID, _ := e.Handoff(t)
		callsBefore, eventsBefore := len(e.LiveChat.CallLog()), len(e.Bot.Events())
		msgs := "/v1/sessions/" + sessionID + "/messages"
		huge := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`
		tests := []struct {
			name, method, path string
			body               any
			header             []string
			status             int
			code               string
		}{
			{"no key", "POST", "/v1/users", `{"name":"x"}`, []string{"Authorization", ""}, 401, "unauthenticated"},
			{"wrong key", "POST", "/v1/users", `{"name":"x"}`, []string{"Authorization", "Bearer nope"}, 401, "unauthenticated"},
			{"malformed json", "POST", "/v1/users", `{"name":`, nil, 400, "invalid_argument"},
			{"trailing data", "POST", "/v1/users", `{"name":"x"}{}`, nil, 400, "invalid_argument"},
			{"wrong type", "POST", "/v1/users", `{"name":42}`, nil, 400, "invalid_argument"},
			{"json null", "POST", "/v1/users", `null`, nil, 400, "invalid_argument"},
			{"empty body", "POST", "/v1/users", ``, nil, 400, "invalid_argument"},
			{"bad email", "POST", "/v1/users", `{"name":"x","email":"not-an-email"}`, nil, 400, "invalid_argument"},
			{"oversize", "POST", "/v1/users", huge, nil, 413, "payload_too_large"},
			{"unknown route", "POST", "/v1/nothing", `{}`, nil, 404, "not_found"},
			{"unknown user", "POST", "/v1/sessions", `{"userId":"usr_missing"}`, nil, 404, "not_found"},
			{"unknown provider", "POST", "/v1/sessions", `{"userId":"usr_x","provider":"teams"}`, nil, 400, "invalid_argument"},
			{"history wrong source", "POST", "/v1/sessions", `{"userId":"usr_x","messageHistory":[{"source":{"type":"agent"},"type":"text","payload":{"text":"x"}}]}`, nil, 400, "invalid_argument"},
			{"unknown message type", "POST", msgs, `{"type":"hologram","payload":{}}`, nil, 400, "invalid_argument"},
			{"text wrong type", "POST", msgs, `{"type":"text","payload":{"text":["a"]}}`, nil, 400, "invalid_argument"},
			{"invalid utf-8", "POST", msgs, []byte("{\"type\":\"text\",\"payload\":{\"text\":\"\xff\xfe\"}}"), nil, 400, "invalid_argument"},
			{"image without url", "POST", msgs, `{"type":"image","payload":{}}`, nil, 400, "invalid_argument"},
			{"unknown session", "POST", "/v1/sessions/ses_missing/messages", `{"type":"text","payload":{"text":"x"}}`, nil, 404, "not_found"},
			{"get unknown session", "GET", "/v1/sessions/ses_missing", nil, nil, 404, "not_found"},
			{"stop unknown session", "POST", "/v1/sessions/ses_missing/stop", nil, nil, 404, "not_found"},
			{"admin route with bot key", "GET", "/v1/admin/dead-letters", nil, nil, 401, "unauthenticated"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, out := e.Do(t, tt.method, tt.path, tt.body, tt.header...)
				errObj, _ := out["error"].(map[string]any)
				if status != tt.status || errObj == nil || errObj["code"] != tt.code || errObj["message"] == "" {
					t.Fatalf("got %d %v, want %d %s", status, out, tt.status, tt.code)
				}
			})
		}
		if len(e.LiveChat.CallLog()) != callsBefore || len(e.Bot.Events()) != eventsBefore {
			t.Fatalf("bad requests reached LiveChat (%d calls) or the bot (%d events)", len(e.LiveChat.CallLog())-callsBefore, len(e.Bot.Events())-eventsBefore)
		}
	})
}

func TestBadWebhooksAreRefusedAndChangeNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		_, chatID := e.Handoff(t)
		eventsBefore := len(e.Bot.Events())
		secret := e.LiveChat.Options().WebhookSecret
		org := e.LiveChat.Options().OrganizationID
		message := func(secretKey, chat string) string {
			return `{"webhook_id":"w1","secret_key":"` + secretKey + `","action":"incoming_event","organization_id":"` + org +
				`","payload":{"chat_id":"` + chat + `","thread_id":"T1","event":{"id":"E1","type":"message","text":"forged","author_id":"mallory@example.com","visibility":"all","created_at":"2026-01-01T00:00:00.000000Z"}},"additional_data":{}}`
		}
		tests := []struct {
			name, path, body string
			status           int
		}{
			{"wrong secret", "/webhooks/livechat", message("wrong-secret", chatID), 401},
			{"no secret", "/webhooks/livechat", strings.Replace(message("", chatID), `"secret_key":"",`, "", 1), 401},
			{"malformed", "/webhooks/livechat", `{"webhook_id":`, 400},
			{"wrong types", "/webhooks/livechat", `{"webhook_id":1,"secret_key":"` + secret + `","action":["x"]}`, 400},
			{"oversize", "/webhooks/livechat", `{"x":"` + strings.Repeat("a", 1<<20) + `"}`, 413},
			{"unknown provider", "/webhooks/teams", `{}`, 404},
			{"unknown action", "/webhooks/livechat", `{"webhook_id":"w","secret_key":"` + secret + `","action":"agent_created","organization_id":"` + org + `","payload":{}}`, 200},
			{"chat we did not start", "/webhooks/livechat", message(secret, "SOMEONE_ELSES_CHAT"), 200},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, out := e.Do(t, "POST", tt.path, tt.body, "Authorization", "")
				if status != tt.status {
					t.Fatalf("got %d %v, want %d", status, out, tt.status)
				}
				if status >= 400 && out["error"] == nil {
					t.Fatalf("error answer without the error object: %v", out)
				}
			})
		}
		if n := len(e.Bot.Events()) - eventsBefore; n != 0 {
			t.Fatalf("%d events reached the bot", n)
		}
		if strings.Contains(e.Logs.String(), "wrong-secret") {
			t.Fatal("the presented secret was logged")
		}
	})
}

func TestNothingIsLostWhileTheBotIsDown(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		_, chatID := e.Handoff(t)
		simcore.Delivered(t)(e.LiveChat.AgentJoins(chatID, livechattest.Ann))
		before := len(e.Bot.Events())
		e.Bot.SetDown(true)
		for _, text := range []string{"one", "two", "three"} {
			start := time.Now()
			simcore.Delivered(t)(e.LiveChat.AgentSays(chatID, text))
			if d := time.Since(start); d > 4*time.Second {
				t.Fatalf("webhook took %s with the bot down", d)
			}
		}
		// Sweeps before the backoff has passed deliver nothing.
		if _, err := e.App.Dispatcher.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		e.Bot.SetDown(false)
		if len(e.Bot.Events()) != before {
			t.Fatal("events delivered before their retry time")
		}
		e.Clock.Advance(time.Minute)
		if n, err := e.App.Dispatcher.Sweep(t.Context()); err != nil || n != 1 {
			t.Fatalf("sweep = %d, %v", n, err)
		}
		got := e.Bot.Events()[before:]
		if len(got) != 3 || got[0].Message.Text != "one" || got[1].Message.Text != "two" || got[2].Message.Text != "three" {
			t.Fatalf("after recovery: %v", got)
		}
	})
}

func TestDeadLettersAfterTheRetryWindowCanBeReplayed(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		sessionID, chatID := e.Handoff(t)
		simcore.Delivered(t)(e.LiveChat.AgentJoins(chatID, livechattest.Ann))
		before := len(e.Bot.Events())
		e.Bot.SetDown(true)
		simcore.Delivered(t)(e.LiveChat.AgentSays(chatID, "are you there?"))
		// Retry every 20 minutes for 26 hours: past the 25 h window the
		// event is dead-lettered.
		for range 26 * 3 {
			e.Clock.Advance(20 * time.Minute)
			if _, err := e.App.Dispatcher.Sweep(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		status, out := e.Do(t, "GET", "/v1/admin/dead-letters", nil, "Authorization", "Bearer "+apptest.AdminKey)
		dead, _ := out["deadLetters"].([]any)
		if status != http.StatusOK || len(dead) != 1 {
			t.Fatalf("dead letters: %d %v", status, out)
		}
		e.Bot.SetDown(false)
		status, out = e.Do(t, "POST", "/v1/admin/dead-letters/"+sessionID+"/replay", nil, "Authorization", "Bearer "+apptest.AdminKey)
		if status != http.StatusOK || out["replayed"] != float64(1) {
			t.Fatalf("replay: %d %v", status, out)
		}
		got := e.Bot.Events()[before:]
		if len(got) != 1 || got[0].Message.Text != "are you there?" {
			t.Fatalf("after replay: %+v", got)
		}
		if _, out = e.Do(t, "GET", "/v1/admin/dead-letters", nil, "Authorization", "Bearer "+apptest.AdminKey); len(out["deadLetters"].([]any)) != 0 {
			t.Fatalf("dead letters after replay: %v", out)
		}
	})
}
