package app_test

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

func TestMain(m *testing.M) { os.Exit(awstest.Run(m)) }

// forEachStore runs test on every store implementation.
func forEachStore(t *testing.T, test func(t *testing.T, e *apptest.Env)) {
	for name, newStore := range apptest.Stores {
		t.Run(name, func(t *testing.T) {
			e := apptest.New(t, newStore(t))
			test(t, e)
			assertNoSecretsLogged(t, e)
		})
	}
}

func assertNoSecretsLogged(t *testing.T, e *apptest.Env) {
	t.Helper()
	logs := e.Logs.String()
	secrets := []string{apptest.BotKey, apptest.AdminKey, apptest.SigningKey, e.LiveChat.Options().PAT,
		e.LiveChat.AgentToken(), e.LiveChat.Options().WebhookSecret, "__lc_cst"}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a log line contains the secret %q", s)
		}
	}
}

func eventTypes(events []hitl.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, string(e.Type))
	}
	return out
}

func TestLiveChatHandoffEndToEnd(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		lc := e.LiveChat
		lc.SetDeliveries(3) // every webhook arrives three times, as retries do
		status, u := e.Do(t, "POST", "/v1/users", map[string]any{"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+15145550100"})
		if status != http.StatusCreated || !strings.HasPrefix(u["userId"].(string), "usr_") {
			t.Fatalf("create user: %d %v", status, u)
		}
		status, s := e.Do(t, "POST", "/v1/sessions", map[string]any{
			"userId": u["userId"], "title": "Order #1042", "description": "late delivery", "botConversationId": "bc-9",
			"messageHistory": []map[string]any{
				{"source": map[string]string{"type": "user"}, "type": "text", "payload": map[string]string{"text": "where is my parcel"}},
				{"source": map[string]string{"type": "bot"}, "type": "choice", "payload": map[string]any{"text": "Pick one", "options": []map[string]string{{"label": "Talk to a human", "value": "h"}}}},
			},
		}, "Idempotency-Key", "start-1")
		if status != http.StatusCreated || s["provider"] != "livechat" || s["status"] != "waiting" {
			t.Fatalf("start: %d %v", status, s)
		}
		sessionID, chatID := s["sessionId"].(string), s["providerConversationId"].(string)
		chat, ok := lc.Chat(chatID)
		if !ok || !chat.Active || !chat.Continuous || chat.GroupID != 1 {
			t.Fatalf("LiveChat chat = %+v", chat)
		}
		var transcript strings.Builder
		for _, ev := range chat.Events {
			transcript.WriteString(ev.Text + "\n")
		}
		for _, want := range []string{"Order #1042", "late delivery", "where is my parcel", "Talk to a human"} {
			if !strings.Contains(transcript.String(), want) {
				t.Errorf("the agent cannot see %q in the chat:\n%s", want, transcript.String())
			}
		}
		var customerID string
		for _, user := range chat.Users {
			if user.Type == "customer" {
				customerID = user.ID
			}
		}
		if c, ok := lc.Customer(customerID); !ok || c.Name != "Ada Lovelace" || c.Email != "ada@example.com" {
			t.Fatalf("customer = %+v (id %q)", c, customerID)
		}
		if lc.Calls("transfer_chat") != 1 {
			t.Fatalf("transfer_chat called %d times", lc.Calls("transfer_chat"))
		}

		msgs := "/v1/sessions/" + sessionID + "/messages"
		files := newFileServer(t)
		for _, m := range []map[string]any{
			{"type": "text", "payload": map[string]any{"text": "hello agent"}},
			{"type": "image", "payload": map[string]any{"imageUrl": files.URL + "/photo.png"}},
			{"type": "file", "payload": map[string]any{"fileUrl": files.URL + "/big.bin", "title": "Big"}},
			{"type": "location", "payload": map[string]any{"latitude": 45.5, "longitude": -73.56, "address": "Montréal"}},
			{"type": "card", "payload": map[string]any{"title": "Refund", "actions": []map[string]string{{"action": "url", "label": "Policy", "value": "https://x.test/p"}}}},
		} {
			if status, out := e.Do(t, "POST", msgs, m); status != http.StatusAccepted || out["messageId"] == "" {
				t.Fatalf("send %s: %d %v", m["type"], status, out)
			}
		}
		chat, _ = lc.Chat(chatID)
		var sawUpload, sawBigLink, sawLocation, sawCard bool
		for _, ev := range chat.Events {
			switch {
			case ev.Type == "file" && ev.ContentType == "image/png":
				sawUpload = true
			case strings.Contains(ev.Text, files.URL+"/big.bin"):
				sawBigLink = true
			case strings.Contains(ev.Text, "Montréal") && strings.Contains(ev.Text, "45.5"):
				sawLocation = true
			case strings.Contains(ev.Text, "Refund") && strings.Contains(ev.Text, "https://x.test/p"):
				sawCard = true
			}
		}
		if !sawUpload || !sawBigLink || !sawLocation || !sawCard {
			t.Fatalf("upload=%v bigLink=%v location=%v card=%v; chat events %+v", sawUpload, sawBigLink, sawLocation, sawCard, chat.Events)
		}

		agent := livechattest.Ann
		simcore.Delivered(t)(lc.AgentJoins(chatID, agent))
		simcore.Delivered(t)(lc.AgentSays(chatID, "Hi Ada"))
		simcore.Delivered(t)(lc.AgentNote(chatID, "internal only"))
		simcore.Delivered(t)(lc.AgentSendsFile(chatID, "label.pdf", "application/pdf", []byte("%PDF")))
		simcore.Delivered(t)(lc.TransferToQueue(chatID, 1))
		simcore.Delivered(t)(lc.AgentJoins(chatID, livechattest.Agent{ID: "bob@example.com", Name: "Bob"}))
		simcore.Delivered(t)(lc.AgentCloses(chatID))

		got := e.Bot.Events()
		want := []string{"hitl.assigned", "hitl.message", "hitl.message", "hitl.queued", "hitl.assigned", "hitl.stopped"}
		if strings.Join(eventTypes(got), " ") != strings.Join(want, " ") {
			t.Fatalf("bot received %v, want %v", eventTypes(got), want)
		}
		seen := map[string]bool{}
		for _, ev := range got {
			if seen[ev.ID] {
				t.Fatalf("event %s delivered twice", ev.ID)
			}
			seen[ev.ID] = true
			if ev.SessionID != sessionID || ev.BotConversationID != "bc-9" || ev.Provider != "livechat" {
				t.Fatalf("event routing fields: %+v", ev)
			}
		}
		if got[0].Agent == nil || got[0].Agent.ID != agent.ID || got[0].Agent.Name != "Ann" {
			t.Fatalf("assigned carries agent %+v", got[0].Agent)
		}
		if got[1].Message.Text != "Hi Ada" || got[1].Agent.ID != agent.ID {
			t.Fatalf("agent message = %+v", got[1])
		}
		if got[2].Message.Type != hitl.TypeFile || got[2].Message.Title != "label.pdf" || !strings.HasPrefix(got[2].Message.URL, "http") {
			t.Fatalf("agent file = %+v", got[2].Message)
		}
		if got[3].Queue == nil || got[3].Queue.Position != 1 || got[4].Agent.Name != "Bob" || got[5].Reason != hitl.ReasonAgentClosed {
			t.Fatalf("transfer %+v / reassigned %+v / stop %+v", got[3], got[4], got[5])
		}
		if e.Bot.BadSignatures() != 0 {
			t.Fatal("a callback was badly signed")
		}
		status, after := e.Do(t, "GET", "/v1/sessions/"+sessionID, nil)
		if status != http.StatusOK || after["status"] != "closed" || after["closeReason"] != "agent_closed" {
			t.Fatalf("session after close: %d %v", status, after)
		}
		if _, leaked := after["visitor"]; leaked {
			t.Fatal("the session answer carries visitor credentials")
		}
		if status, _ := e.Do(t, "POST", msgs, map[string]any{"type": "text", "payload": map[string]any{"text": "late"}}); status != http.StatusConflict {
			t.Fatalf("message to closed session: %d", status)
		}
	})
}

func newFileServer(t *testing.T) *httptestServer {
	return startFileServer(t, map[string][]byte{
		"/photo.png": {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 0},
		"/big.bin":   make([]byte, 11<<20), // over LiveChat's 10 MB upload limit
	})
}

func TestBotStopsTheHandoff(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		sessionID, chatID := e.Handoff(t)
		for range 2 {
			status, out := e.Do(t, "POST", "/v1/sessions/"+sessionID+"/stop", map[string]any{"reason": "resolved by bot"})
			if status != http.StatusOK || out["status"] != "closed" {
				t.Fatalf("stop: %d %v", status, out)
			}
		}
		chat, _ := e.LiveChat.Chat(chatID)
		if chat.Active || e.LiveChat.Calls("deactivate_chat") != 1 {
			t.Fatalf("chat active=%v after %d deactivate_chat calls", chat.Active, e.LiveChat.Calls("deactivate_chat"))
		}
		var stops []hitl.Event
		for _, ev := range e.Bot.Events() {
			if ev.Type == hitl.EventStopped {
				stops = append(stops, ev)
			}
		}
		if len(stops) != 1 || stops[0].Reason != hitl.ReasonBotStopped {
			t.Fatalf("stop events %+v", stops)
		}
		// LiveChat's own chat_deactivated for the same chat adds nothing.
		simcore.Delivered(t)(e.LiveChat.Deliver("chat_deactivated", map[string]any{"chat_id": chatID, "thread_id": chat.ThreadID}))
		if n := len(e.Bot.Events()); n != 1 {
			t.Fatalf("bot has %d events, want 1", n)
		}
	})
}

func TestInactiveChatEndsTheSession(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		sessionID, _ := e.Handoff(t)
		e.LiveChat.FailNext("send_event", 1, livechattest.Fault{Status: 422, Type: "chat_inactive", Message: "Chat is inactive"})
		status, out := e.Do(t, "POST", "/v1/sessions/"+sessionID+"/messages", map[string]any{"type": "text", "payload": map[string]any{"text": "hi"}})
		if status != http.StatusConflict {
			t.Fatalf("send to inactive chat: %d %v", status, out)
		}
		_, s := e.Do(t, "GET", "/v1/sessions/"+sessionID, nil)
		events := e.Bot.Events()
		last := events[len(events)-1]
		if s["status"] != "closed" || last.Type != hitl.EventStopped || last.Reason != hitl.ReasonAgentClosed {
			t.Fatalf("session %v, last event %+v", s, last)
		}
	})
}

func TestCustomerTokensAreRefreshed(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		sessionID, chatID := e.Handoff(t)
		send := func(text string) {
			t.Helper()
			if status, out := e.Do(t, "POST", "/v1/sessions/"+sessionID+"/messages", map[string]any{"type": "text", "payload": map[string]any{"text": text}}); status != http.StatusAccepted {
				t.Fatalf("send %q: %d %v", text, status, out)
			}
		}
		// Expired under a live conversation: refreshed on the 401, message sent once.
		e.LiveChat.ExpireTokens()
		send("after expiry")
		// Scheduled refresh: seven and a half hours later the token is within
		// the refresh horizon and is renewed for the same customer.
		tokensBefore := e.LiveChat.Calls("token")
		e.Clock.Advance(7*time.Hour + 30*time.Minute)
		e.LiveChat.Advance(7*time.Hour + 30*time.Minute)
		n, err := e.App.Bridge.RefreshVisitors(t.Context(), time.Hour)
		if err != nil || n != 1 || e.LiveChat.Calls("token") != tokensBefore+1 {
			t.Fatalf("refreshed %d (%v); token calls %d → %d", n, err, tokensBefore, e.LiveChat.Calls("token"))
		}
		send("after scheduled refresh")
		chat, _ := e.LiveChat.Chat(chatID)
		count := 0
		for _, ev := range chat.Events {
			if ev.Text == "after expiry" || ev.Text == "after scheduled refresh" {
				count++
			}
		}
		if count != 2 {
			t.Fatalf("the chat has %d of the 2 messages", count)
		}
	})
}

func TestConcurrentStartsOpenOneChat(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		_, u := e.Do(t, "POST", "/v1/users", map[string]any{"name": "Ada"})
		var wg sync.WaitGroup
		statuses := make(chan int, 8)
		for range 8 {
			wg.Go(func() {
				status, _ := e.Do(t, "POST", "/v1/sessions", map[string]any{"userId": u["userId"]}, "Idempotency-Key", "same-key")
				statuses <- status
			})
		}
		wg.Wait()
		close(statuses)
		for s := range statuses {
			if s != http.StatusCreated && s != http.StatusConflict {
				t.Fatalf("status %d", s)
			}
		}
		if n := e.LiveChat.Calls("start_chat"); n != 1 {
			t.Fatalf("%d LiveChat chats for one Idempotency-Key", n)
		}
		status, s := e.Do(t, "POST", "/v1/sessions", map[string]any{"userId": u["userId"]}, "Idempotency-Key", "same-key")
		if status != http.StatusCreated || s["status"] != "waiting" || e.LiveChat.Calls("start_chat") != 1 {
			t.Fatalf("repeat: %d %v", status, s)
		}
	})
}

func TestPrivateAddressesAreNotFetched(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t), func(c *config.Config) { c.AllowPrivateURLs = false })
	sessionID, chatID := e.Handoff(t)
	files := newFileServer(t)
	if status, _ := e.Do(t, "POST", "/v1/sessions/"+sessionID+"/messages", map[string]any{"type": "image", "payload": map[string]any{"imageUrl": files.URL + "/photo.png"}}); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	if files.hits() != 0 {
		t.Fatal("the bridge fetched from a loopback address")
	}
	chat, _ := e.LiveChat.Chat(chatID)
	last := chat.Events[len(chat.Events)-1]
	if last.Type != "message" || !strings.Contains(last.Text, files.URL+"/photo.png") {
		t.Fatalf("the image was not sent as its link: %+v", last)
	}
}
