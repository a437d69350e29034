package botpress_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/botpress"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Run(m)) }

// desks are the providers the Botpress flow is played against: Botpress
// sessions open with the configured provider.
var desks = []struct {
	provider string
	desk     func(e *apptest.BotpressEnv) agentDesk
}{
	{hitl.LiveChat, func(e *apptest.BotpressEnv) agentDesk { return liveChatDesk{e.LiveChat} }},
	{hitl.Zoho, func(e *apptest.BotpressEnv) agentDesk { return zohoDesk{e.Zoho} }},
}

// forEach runs test on every provider and store.
func forEach(t *testing.T, test func(t *testing.T, e *apptest.BotpressEnv, desk agentDesk)) {
	for _, d := range desks {
		for name, newStore := range apptest.Stores {
			t.Run(d.provider+"/"+name, func(t *testing.T) {
				e := apptest.NewBotpress(t, newStore(t), func(c *config.Config) { c.DefaultProvider = d.provider })
				test(t, e, d.desk(e))
				assertNothingSecretLogged(t, e)
			})
		}
	}
}

func assertNothingSecretLogged(t *testing.T, e *apptest.BotpressEnv) {
	t.Helper()
	logs := e.Logs.String()
	secrets := []string{apptest.BotpressToken, apptest.BotpressWebhookPath, e.LiveChat.Options().PAT, e.LiveChat.AgentToken(),
		e.Zoho.Options().ClientSecret, e.Zoho.Options().RefreshToken}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("a log line contains the secret %q", s)
		}
	}
}

// agentDesk is the provider's side of a handoff: what its agents see and do.
type agentDesk interface {
	// opened counts the provider conversations opened so far.
	opened() int
	// seen is everything the conversation shows the agent, one event a line.
	seen(t *testing.T, conv string) string
	// visitor is the end user as the agent sees them.
	visitor(t *testing.T, conv string) (name, email string)
	active(t *testing.T, conv string) bool
	join(t *testing.T, conv, agentID, name string)
	say(t *testing.T, conv, text string)
	sendFile(t *testing.T, conv, name, contentType string, body []byte)
	// transfer hands the conversation to another agent, the way the
	// provider does it (LiveChat: through the queue).
	transfer(t *testing.T, conv, agentID, name string)
	close(t *testing.T, conv string)
}

type liveChatDesk struct{ lc *livechattest.Server }

func (d liveChatDesk) opened() int { return d.lc.Calls("start_chat") }

func (d liveChatDesk) chat(t *testing.T, conv string) livechattest.Chat {
	t.Helper()
	c, ok := d.lc.Chat(conv)
	if !ok {
		t.Fatalf("LiveChat has no chat %s", conv)
	}
	return c
}

func (d liveChatDesk) seen(t *testing.T, conv string) string {
	var b strings.Builder
	for _, e := range d.chat(t, conv).Events {
		if e.Type == "file" {
			fmt.Fprintf(&b, "[file %s %s]\n", e.Name, e.ContentType)
		} else {
			b.WriteString(e.Text + "\n")
		}
	}
	return b.String()
}

func (d liveChatDesk) visitor(t *testing.T, conv string) (string, string) {
	for _, u := range d.chat(t, conv).Users {
		if u.Type == "customer" {
			c, _ := d.lc.Customer(u.ID)
			return c.Name, c.Email
		}
	}
	t.Fatalf("chat %s has no customer", conv)
	return "", ""
}

func (d liveChatDesk) active(t *testing.T, conv string) bool { return d.chat(t, conv).Active }

func (d liveChatDesk) join(t *testing.T, conv, id, name string) {
	simcore.Delivered(t)(d.lc.AgentJoins(conv, livechattest.Agent{ID: id, Name: name}))
}
func (d liveChatDesk) say(t *testing.T, conv, text string) {
	simcore.Delivered(t)(d.lc.AgentSays(conv, text))
}
func (d liveChatDesk) sendFile(t *testing.T, conv, name, contentType string, body []byte) {
	simcore.Delivered(t)(d.lc.AgentSendsFile(conv, name, contentType, body))
}
func (d liveChatDesk) transfer(t *testing.T, conv, id, name string) {
	simcore.Delivered(t)(d.lc.TransferToQueue(conv, 1))
	d.join(t, conv, id, name)
}
func (d liveChatDesk) close(t *testing.T, conv string) { simcore.Delivered(t)(d.lc.AgentCloses(conv)) }

type zohoDesk struct{ z *zohotest.Server }

func (d zohoDesk) opened() int { return d.z.Calls("open") }

func (d zohoDesk) conversation(t *testing.T, conv string) zohotest.Conversation {
	t.Helper()
	c, ok := d.z.Conversation(conv)
	if !ok {
		t.Fatalf("SalesIQ has no conversation %s", conv)
	}
	return c
}

func (d zohoDesk) seen(t *testing.T, conv string) string {
	c := d.conversation(t, conv)
	var b strings.Builder
	b.WriteString(c.Question + "\n")
	for _, m := range c.Messages {
		if m.FileName != "" {
			fmt.Fprintf(&b, "[file %s %s] ", m.FileName, m.ContentType)
		}
		b.WriteString(m.Text + "\n")
	}
	return b.String()
}

func (d zohoDesk) visitor(t *testing.T, conv string) (string, string) {
	c := d.conversation(t, conv)
	return c.VisitorName, c.VisitorEmail
}

func (d zohoDesk) active(t *testing.T, conv string) bool { return !d.z.Closed(conv) }

func (d zohoDesk) join(t *testing.T, conv, id, name string) {
	simcore.Delivered(t)(d.z.OperatorAccepts(conv, zohotest.Operator{ID: id, Name: name, Email: id}))
}
func (d zohoDesk) say(t *testing.T, conv, text string) {
	simcore.Delivered(t)(d.z.OperatorReplies(conv, text))
}
func (d zohoDesk) sendFile(t *testing.T, conv, name, contentType string, body []byte) {
	simcore.Delivered(t)(d.z.OperatorSendsFile(conv, name, contentType, body, ""))
}
func (d zohoDesk) transfer(t *testing.T, conv, id, name string) {
	simcore.Delivered(t)(d.z.TransferAccepted(conv, zohotest.Operator{ID: id, Name: name, Email: id}))
}
func (d zohoDesk) close(t *testing.T, conv string) { simcore.Delivered(t)(d.z.Completes(conv)) }

// integration replays what Botpress's plus/hitl-api integration sends:
// POST <endpointBaseUrl>/<action>, JSON, no credentials. Every request is
// checked against the external-service contract, and so is every answer
// to a request that succeeds.
type integration struct {
	t       *testing.T
	base    string
	service *contract
}

func newIntegration(t *testing.T, e *apptest.BotpressEnv) *integration {
	return &integration{t: t, base: e.BaseURL, service: loadContract(t, serviceContract)}
}

func (c *integration) call(action string, body any) (int, map[string]any) {
	c.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.service.checkRequest(c.t, "/"+action, raw)
	status, header, answer := post(c.t, c.base+"/"+action, raw)
	if status == http.StatusOK {
		c.service.checkAnswer(c.t, "/"+action, raw, status, header, answer)
	}
	var out map[string]any
	if err := json.Unmarshal(answer, &out); err != nil {
		c.t.Fatalf("%s answered %d with non-JSON %q", action, status, answer)
	}
	return status, out
}

func (c *integration) ok(action string, body any) map[string]any {
	c.t.Helper()
	status, out := c.call(action, body)
	if status != http.StatusOK {
		c.t.Fatalf("%s: %d %v", action, status, out)
	}
	return out
}

// createUser is the integration's createUser: the hitl input plus role.
func (c *integration) createUser(name, email string) string {
	c.t.Helper()
	out := c.ok("createRemoteUser", map[string]any{"type": "createRemoteUser", "payload": map[string]any{
		"role": "end-user", "name": name, "email": email, "pictureUrl": "https://example.com/avatar.png",
	}})
	return out["id"].(string)
}

// startHitl is what reaches us of the integration's startHitl: its input
// parsed down to title and description.
func (c *integration) startHitl(title, description string) string {
	c.t.Helper()
	out := c.ok("createRemoteConversation", map[string]any{"type": "createRemoteConversation", "payload": map[string]any{
		"title": title, "description": description,
	}})
	return out["id"].(string)
}

// send is the integration's hitl channel: the hitl plugin's payload (with
// the Botpress user id when the user wrote it) under remoteUserId, our
// user id or "BOT".
func (c *integration) send(conv, remoteUser string, payload map[string]any) (int, map[string]any) {
	c.t.Helper()
	if remoteUser != "BOT" {
		payload["userId"] = "user_01JBOTPRESSUSER"
	}
	return c.call("botSendsMessage", map[string]any{
		"type": "botSendsMessage", "remoteConversationId": conv, "remoteUserId": remoteUser, "payload": payload,
	})
}

func (c *integration) mustSend(conv, remoteUser string, payload map[string]any) {
	c.t.Helper()
	if status, out := c.send(conv, remoteUser, payload); status != http.StatusOK {
		c.t.Fatalf("botSendsMessage %v: %d %v", payload, status, out)
	}
}

func post(t *testing.T, url string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, answer
}

// callback is a call the integration's webhook received.
type callback struct {
	Route                string
	RemoteConversationID string         `json:"remoteConversationId"`
	RemoteUserID         string         `json:"remoteUserId"`
	MessageType          string         `json:"messageType"`
	Payload              map[string]any `json:"payload"`
}

func (c callback) String() string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", c.Route, c.RemoteUserID, c.MessageType))
}

// callbacks returns the webhook's calls for conv, each checked against the
// webhook contract.
func callbacks(t *testing.T, e *apptest.BotpressEnv, conv string) []callback {
	t.Helper()
	webhook := loadContract(t, webhookContract)
	var out []callback
	for _, call := range e.Webhook.Calls() {
		webhook.checkRequest(t, call.Route, call.Body)
		c := callback{Route: call.Route}
		if err := json.Unmarshal(call.Body, &c); err != nil {
			t.Fatal(err)
		}
		if c.RemoteConversationID == conv {
			out = append(out, c)
		}
	}
	return out
}

func wantCallbacks(t *testing.T, got []callback, want ...string) {
	t.Helper()
	var lines []string
	for _, c := range got {
		lines = append(lines, c.String())
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the webhook received\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func fileServer(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/photo.png":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write([]byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 0})
		case "/invoice.pdf":
			w.Header().Set("Content-Type", "application/pdf")
			_, _ = w.Write([]byte("%PDF-1.4"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func session(t *testing.T, e *apptest.BotpressEnv, id string) hitl.Session {
	t.Helper()
	s, err := e.App.Bridge.GetSession(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBotpressHandoffEndToEnd(t *testing.T) {
	forEach(t, func(t *testing.T, e *apptest.BotpressEnv, desk agentDesk) {
		bp := newIntegration(t, e)
		files := fileServer(t)

		// register
		bp.ok("ping", map[string]any{"type": "ping"})
		// hitl plugin: createUser, then startHitl.
		user := bp.createUser("Ada Lovelace", "ada@example.com")
		conv := bp.startHitl("Order #1042", "The parcel is late")
		if s := session(t, e, conv); s.Status != hitl.StatusPending || s.Channel != botpress.Channel || desk.opened() != 0 {
			t.Fatalf("after startHitl: session %+v, %d provider conversations", s, desk.opened())
		}
		// The bot speaks before the user does: kept for the agent.
		bp.mustSend(conv, "BOT", map[string]any{"type": "text", "text": "Connecting you with an agent…"})
		if desk.opened() != 0 {
			t.Fatal("a bot message opened the provider conversation")
		}
		// The user's first message opens it, as the user.
		bp.mustSend(conv, user, map[string]any{"type": "text", "text": "Where is my parcel?"})
		s := session(t, e, conv)
		if s.Status != hitl.StatusWaiting || s.UserID != user || desk.opened() != 1 {
			t.Fatalf("after the first message: session %+v, %d provider conversations", s, desk.opened())
		}
		chat := s.ProviderConversationID
		if name, email := desk.visitor(t, chat); name != "Ada Lovelace" || email != "ada@example.com" {
			t.Fatalf("the agent sees the visitor as %q <%s>", name, email)
		}
		// More messages of several types, some without "type" as other
		// clients send them, and the bot again.
		for _, m := range []map[string]any{
			{"type": "image", "imageUrl": files.URL + "/photo.png"},
			{"type": "file", "fileUrl": files.URL + "/invoice.pdf", "title": "invoice.pdf"},
			{"latitude": 45.5017, "longitude": -73.5673, "address": "Montréal"},
			{"title": "Refund", "subtitle": "14 days", "actions": []map[string]any{{"action": "url", "label": "Policy", "value": "https://example.com/refunds"}}},
			{"type": "choice", "text": "Which order?", "options": []map[string]any{{"label": "#1042", "value": "1042"}}},
		} {
			bp.mustSend(conv, user, m)
		}
		bp.mustSend(conv, "BOT", map[string]any{"type": "text", "text": "Agents answer within 5 minutes"})
		seen := desk.seen(t, chat)
		for _, want := range []string{
			"Order #1042", "The parcel is late", "Connecting you with an agent…", "Where is my parcel?",
			"image/png", "invoice.pdf", "Montréal", "Refund", "https://example.com/refunds", "#1042",
			hitl.BotPrefix + "Agents answer within 5 minutes",
		} {
			if !strings.Contains(seen, want) {
				t.Errorf("the agent cannot see %q:\n%s", want, seen)
			}
		}
		if strings.Index(seen, "Connecting you") > strings.Index(seen, "Where is my parcel?") {
			t.Errorf("the bot's earlier message comes after the user's:\n%s", seen)
		}

		// The agents' side.
		desk.join(t, chat, "ann@example.com", "Ann")
		desk.say(t, chat, "Hi Ada, let me check")
		desk.sendFile(t, chat, "map.png", "image/png", []byte{0x89, 'P', 'N', 'G'})
		desk.sendFile(t, chat, "label.pdf", "application/pdf", []byte("%PDF"))
		desk.transfer(t, chat, "bob@example.com", "Bob")
		desk.close(t, chat)

		got := callbacks(t, e, conv)
		wantCallbacks(t, got,
			"/agent-assigned ann@example.com",
			"/message-from-agent ann@example.com text",
			"/message-from-agent ann@example.com image",
			"/message-from-agent ann@example.com file",
			"/agent-assigned bob@example.com",
			"/stop-hitl",
		)
		if got[1].Payload["text"] != "Hi Ada, let me check" {
			t.Errorf("text payload %v", got[1].Payload)
		}
		if u, _ := got[2].Payload["imageUrl"].(string); !strings.HasPrefix(u, "http") {
			t.Errorf("image payload %v", got[2].Payload)
		}
		if u, _ := got[3].Payload["fileUrl"].(string); !strings.HasPrefix(u, "http") || got[3].Payload["title"] != "label.pdf" {
			t.Errorf("file payload %v", got[3].Payload)
		}

		if s := session(t, e, conv); s.Status != hitl.StatusClosed || s.CloseReason != hitl.ReasonAgentClosed {
			t.Fatalf("after the agent closed: %+v", s)
		}
		if status, out := bp.send(conv, user, map[string]any{"type": "text", "text": "thanks"}); status != http.StatusConflict {
			t.Fatalf("message to a closed session: %d %v", status, out)
		}
	})
}

func TestBotpressStopsTheHandoff(t *testing.T) {
	forEach(t, func(t *testing.T, e *apptest.BotpressEnv, desk agentDesk) {
		bp := newIntegration(t, e)
		user := bp.createUser("Ada Lovelace", "ada@example.com")
		conv := bp.startHitl("Help", "")
		bp.mustSend(conv, user, map[string]any{"type": "text", "text": "hello"})
		chat := session(t, e, conv).ProviderConversationID

		// What the stock integration sends: its own conversation id, which
		// it never told us. Accepted, and the session stays.
		bp.ok("closeRemoteTicket", map[string]any{"type": "closeRemoteTicket", "payload": map[string]any{"botpressConversationId": "conv_01JBOTPRESSCONV"}})
		if s := session(t, e, conv); s.Closed() || !desk.active(t, chat) {
			t.Fatalf("an unknown ticket closed the session: %+v", s)
		}
		if !strings.Contains(e.Logs.String(), "conv_01JBOTPRESSCONV") {
			t.Error("the unmapped closeRemoteTicket was not logged")
		}
		// Our session id (a client that sends remoteConversationId) stops it.
		for range 2 {
			bp.ok("closeRemoteTicket", map[string]any{"type": "closeRemoteTicket", "payload": map[string]any{"botpressConversationId": conv}})
		}
		if s := session(t, e, conv); s.CloseReason != hitl.ReasonBotStopped || desk.active(t, chat) {
			t.Fatalf("after closeRemoteTicket: %+v, provider conversation active %v", s, desk.active(t, chat))
		}
		wantCallbacks(t, callbacks(t, e, conv), "/stop-hitl")
	})
}

func TestBotpressSessionsEndWhenIdle(t *testing.T) {
	forEach(t, func(t *testing.T, e *apptest.BotpressEnv, desk agentDesk) {
		bp := newIntegration(t, e)
		user := bp.createUser("Ada Lovelace", "ada@example.com")
		talking := bp.startHitl("Talking", "")
		silent := bp.startHitl("Never answered", "")
		bp.mustSend(talking, user, map[string]any{"type": "text", "text": "hello"})
		bp.mustSend(silent, "BOT", map[string]any{"type": "text", "text": "Connecting you…"})
		chat := session(t, e, talking).ProviderConversationID

		e.Clock.Advance(20 * time.Minute)
		bp.mustSend(talking, user, map[string]any{"type": "text", "text": "still there?"})
		e.Clock.Advance(15 * time.Minute) // silent: 35 min idle; talking: 15
		if n, err := e.App.Bridge.ExpireIdle(t.Context()); err != nil || n != 1 {
			t.Fatalf("ExpireIdle = %d, %v; want 1", n, err)
		}
		if s := session(t, e, silent); s.CloseReason != hitl.ReasonTimeout || desk.opened() != 1 {
			t.Fatalf("silent session %+v; %d provider conversations", s, desk.opened())
		}
		if !desk.active(t, chat) {
			t.Fatal("the active conversation was closed")
		}
		e.Clock.Advance(16 * time.Minute)
		if n, err := e.App.Bridge.ExpireIdle(t.Context()); err != nil || n != 1 {
			t.Fatalf("ExpireIdle = %d, %v; want 1", n, err)
		}
		if s := session(t, e, talking); s.CloseReason != hitl.ReasonTimeout || desk.active(t, chat) {
			t.Fatalf("talking session %+v; provider conversation active %v", s, desk.active(t, chat))
		}
		wantCallbacks(t, callbacks(t, e, silent), "/stop-hitl")
		wantCallbacks(t, callbacks(t, e, talking), "/stop-hitl")
		if status, _ := bp.send(talking, user, map[string]any{"type": "text", "text": "hello?"}); status != http.StatusConflict {
			t.Fatalf("message after the timeout: %d", status)
		}
	})
}

func TestConcurrentFirstMessagesOpenOneConversation(t *testing.T) {
	forEach(t, func(t *testing.T, e *apptest.BotpressEnv, desk agentDesk) {
		bp := newIntegration(t, e)
		user := bp.createUser("Ada Lovelace", "ada@example.com")
		conv := bp.startHitl("Help", "")
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				bp.mustSend(conv, user, map[string]any{"type": "text", "text": fmt.Sprintf("message %d", i)})
			})
		}
		wg.Wait()
		if desk.opened() != 1 {
			t.Fatalf("%d provider conversations for one session", desk.opened())
		}
		seen := desk.seen(t, session(t, e, conv).ProviderConversationID)
		for i := range 6 {
			if !strings.Contains(seen, fmt.Sprintf("message %d", i)) {
				t.Errorf("message %d is missing:\n%s", i, seen)
			}
		}
	})
}

// Callbacks the webhook refused wait for it. The redelivery function's run
// delivers them, and ends the session idle meanwhile, side by side: the bot
// hears them in order, the ending last.
func TestCallbacksWaitForTheWebhook(t *testing.T) {
	for name, newStore := range apptest.Stores {
		t.Run(name, func(t *testing.T) {
			e := apptest.NewBotpress(t, newStore(t))
			desk := liveChatDesk{e.LiveChat}
			bp := newIntegration(t, e)
			user := bp.createUser("Ada Lovelace", "ada@example.com")
			conv := bp.startHitl("Help", "")
			bp.mustSend(conv, user, map[string]any{"type": "text", "text": "hello"})
			chat := session(t, e, conv).ProviderConversationID

			e.Webhook.SetDown(true)
			desk.join(t, chat, "ann@example.com", "Ann")
			desk.say(t, chat, "one")
			desk.say(t, chat, "two")
			e.Webhook.SetDown(false)
			e.Clock.Advance(time.Hour) // past every backoff and the inactivity timeout
			run, err := app.NewRedelivery(e.Config, e.Options)
			if err != nil {
				t.Fatal(err)
			}
			if err := run(t.Context()); err != nil {
				t.Fatal(err)
			}
			got := callbacks(t, e, conv)
			wantCallbacks(t, got, "/agent-assigned ann@example.com", "/message-from-agent ann@example.com text", "/message-from-agent ann@example.com text", "/stop-hitl")
			if got[1].Payload["text"] != "one" || got[2].Payload["text"] != "two" {
				t.Fatalf("out of order: %v", got)
			}
			if s := session(t, e, conv); s.CloseReason != hitl.ReasonTimeout || desk.active(t, chat) {
				t.Fatalf("session %+v; provider conversation active %v", s, desk.active(t, chat))
			}
		})
	}
}

func TestRoutesRevealNothingWithoutTheToken(t *testing.T) {
	e := apptest.NewBotpress(t, apptest.Bolt(t))
	bp := newIntegration(t, e)
	server := strings.TrimSuffix(e.BaseURL, "/botpress/"+apptest.BotpressToken)
	_, _, unknown := post(t, server+"/v1/no-such-route", []byte(`{}`))
	ping := []byte(`{"type":"ping"}`)
	for _, path := range []string{
		"/botpress/wrong-token/ping",
		"/botpress/" + apptest.BotpressToken + "x/ping",
		"/botpress/" + apptest.BotpressToken[:10] + "/ping",
		"/botpress//ping",
		"/botpress/" + apptest.BotpressToken + "/unknownAction",
		"/botpress/" + apptest.BotpressToken + "/teams/ping", // not a configured provider
		"/botpress/" + apptest.BotpressToken,
	} {
		status, _, body := post(t, server+path, ping)
		if status != http.StatusNotFound || !bytes.Equal(body, unknown) {
			t.Errorf("POST %s = %d %s, want 404 %s", path, status, body, unknown)
		}
	}
	resp, err := http.Get(e.BaseURL + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET ping = %d, want 404", resp.StatusCode)
	}

	// The provider may be named in the URL.
	status, _, body := post(t, e.BaseURL+"/livechat/createRemoteConversation", []byte(`{"type":"createRemoteConversation","payload":{}}`))
	if status != http.StatusOK {
		t.Fatalf("createRemoteConversation under a provider: %d %s", status, body)
	}

	bp.ok("ping", map[string]any{"type": "ping"})
	disabled := apptest.NewBotpress(t, apptest.Bolt(t), func(c *config.Config) { c.Secret.BotpressPathToken = "" })
	if status, _, _ := post(t, disabled.BaseURL+"/ping", ping); status != http.StatusNotFound {
		t.Errorf("with no token configured, ping = %d, want 404", status)
	}
	if strings.Contains(e.Logs.String(), apptest.BotpressToken) {
		t.Error("the path token was logged")
	}
}

func TestBadRequestsAreRefused(t *testing.T) {
	e := apptest.NewBotpress(t, apptest.Bolt(t))
	bp := newIntegration(t, e)
	user := bp.createUser("Ada Lovelace", "ada@example.com")
	conv := bp.startHitl("Help", "")
	nativeSession, _ := e.Handoff(t)
	send := func(conv, user, payload string) string {
		return fmt.Sprintf(`{"type":"botSendsMessage","remoteConversationId":%q,"remoteUserId":%q,"payload":%s}`, conv, user, payload)
	}
	tests := []struct {
		name, action, body string
		status             int
		code               string
	}{
		{"malformed json", "createRemoteUser", `{"type":`, 400, "invalid_argument"},
		{"user without payload", "createRemoteUser", `{"type":"createRemoteUser"}`, 400, "invalid_argument"},
		{"title not a string", "createRemoteConversation", `{"type":"createRemoteConversation","payload":{"title":7}}`, 400, "invalid_argument"},
		{"huge title", "createRemoteConversation", `{"type":"createRemoteConversation","payload":{"title":"` + strings.Repeat("x", 600) + `"}}`, 400, "invalid_argument"},
		{"oversize", "createRemoteConversation", `{"payload":{"description":"` + strings.Repeat("x", 1<<20) + `"}}`, 413, "payload_too_large"},
		{"no remoteUserId", "botSendsMessage", `{"type":"botSendsMessage","remoteConversationId":"` + conv + `","payload":{"text":"x"}}`, 400, "invalid_argument"},
		{"payload not an object", "botSendsMessage", send(conv, user, `"hi"`), 400, "invalid_argument"},
		{"unknown message", "botSendsMessage", send(conv, user, `{"foo":1}`), 400, "invalid_argument"},
		{"unknown type", "botSendsMessage", send(conv, user, `{"type":"hologram"}`), 400, "invalid_argument"},
		{"empty text", "botSendsMessage", send(conv, user, `{"type":"text","text":" "}`), 400, "invalid_argument"},
		{"unknown session", "botSendsMessage", send("ses_missing", user, `{"text":"x"}`), 404, "not_found"},
		{"native session", "botSendsMessage", send(nativeSession, user, `{"text":"x"}`), 404, "not_found"},
		{"unknown user", "botSendsMessage", send(conv, "usr_missing", `{"text":"x"}`), 404, "not_found"},
		{"close without id", "closeRemoteTicket", `{"type":"closeRemoteTicket","payload":{}}`, 400, "invalid_argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := post(t, e.BaseURL+"/"+tt.action, []byte(tt.body))
			var out struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(body, &out); err != nil || status != tt.status || out.Error.Code != tt.code || out.Error.Message == "" {
				t.Fatalf("got %d %s, want %d %s", status, body, tt.status, tt.code)
			}
		})
	}
	if e.LiveChat.Calls("start_chat") != 1 { // the native handoff's
		t.Fatal("a bad request opened a provider conversation")
	}
}

func TestUnusableUserFieldsAreDropped(t *testing.T) {
	e := apptest.NewBotpress(t, apptest.Bolt(t))
	bp := newIntegration(t, e)
	out := bp.ok("createRemoteUser", map[string]any{"type": "createRemoteUser", "payload": map[string]any{
		"role": "end-user", "name": "Grace", "email": "user_01J@bot-01J.botpress.invalid", "pictureUrl": "not a url", "extra": nil,
	}})
	u, err := e.Store.GetUser(t.Context(), out["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "Grace" || u.Email != "" || u.PictureURL != "" {
		t.Fatalf("user = %+v", u)
	}
}
