package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt"
)

const (
	demoBotKey     = "demo-bot-key-0123456789"
	demoSigningKey = "demo-signing-secret-0123456789"
)

// runDemo plays a scripted LiveChat handoff: the bridge on the embedded
// store, the LiveChat simulator as the provider, and a bot receiver that
// checks every callback's signature. Everything listens on loopback.
func runDemo(ctx context.Context, out io.Writer, log *slog.Logger) error {
	dir, err := os.MkdirTemp("", "hitl-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	bot := httptest.NewServer(botReceiver(say))
	defer bot.Close()
	lc := livechattest.New(livechattest.Options{})
	defer lc.Close()
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(demoPNG)
	}))
	defer files.Close()

	env := map[string]string{
		"BOT_CALLBACK_URL":         bot.URL + "/hitl",
		"LIVECHAT_ORGANIZATION_ID": lc.Options().OrganizationID,
		"LIVECHAT_CLIENT_ID":       lc.Options().ClientID,
		"LIVECHAT_REDIRECT_URI":    "https://bot.example.com/",
		"LIVECHAT_GROUP_ID":        "1",
		"LIVECHAT_API_URL":         lc.APIURL(),
		"LIVECHAT_ACCOUNTS_URL":    lc.AccountsURL(),
		"HITL_ALLOW_PRIVATE_URLS":  "true", // the demo's files are on loopback
	}
	c, err := config.Env(func(k string) string { return env[k] })
	if err != nil {
		return err
	}
	c.Secret = config.Secret{
		BotAPIKeys: []string{demoBotKey}, CallbackSigningSecret: demoSigningKey,
		LiveChat: &config.LiveChatSecret{AgentToken: lc.AgentToken(), WebhookSecret: lc.Options().WebhookSecret},
	}
	st, err := bolt.Open(filepath.Join(dir, "bridge.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	a, err := app.New(c, app.Options{Store: st, Log: log})
	if err != nil {
		return err
	}
	bridge := httptest.NewServer(a.Handler())
	defer bridge.Close()
	lc.SetWebhookURL(bridge.URL + "/webhooks/livechat")

	say("hitl-bridge demo: a bot hands Ada to a LiveChat agent and back")
	say("  bridge %s (embedded store), LiveChat simulator %s, bot %s", bridge.URL, lc.URL(), bot.URL)
	say("")
	api := &demoClient{base: bridge.URL, say: say}

	var user struct{ UserID string }
	if err := api.call(ctx, "POST", "/v1/users", "", map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"}, &user); err != nil {
		return err
	}
	var session struct{ SessionID, ProviderConversationID string }
	err = api.call(ctx, "POST", "/v1/sessions", "demo-start-1", map[string]any{
		"userId": user.UserID, "title": "Order #1042 has not arrived", "description": "Customer asks for a human",
		"botConversationId": "conv-42",
		"messageHistory": []map[string]any{
			{"source": map[string]string{"type": "user"}, "type": "text", "payload": map[string]string{"text": "Where is my order #1042?"}},
			{"source": map[string]string{"type": "bot"}, "type": "text", "payload": map[string]string{"text": "It left our warehouse on Monday. Shall I get you a person?"}},
			{"source": map[string]string{"type": "user"}, "type": "text", "payload": map[string]string{"text": "Yes please"}},
		},
	}, &session)
	if err != nil {
		return err
	}
	chat := session.ProviderConversationID
	msgs := "/v1/sessions/" + session.SessionID + "/messages"
	steps := []func() error{
		func() error {
			return api.call(ctx, "POST", msgs, "", map[string]any{"type": "text", "payload": map[string]string{"text": "The tracking page says 'label created'"}}, nil)
		},
		func() error {
			return api.call(ctx, "POST", msgs, "", map[string]any{"type": "image", "payload": map[string]string{"imageUrl": files.URL + "/screenshot.png"}}, nil)
		},
		func() error {
			say("agent  · Ann joins the chat")
			return agentAct(lc.AgentJoins(chat, livechattest.Agent{ID: "ann@example.com", Name: "Ann"}))
		},
		func() error {
			say("agent  · Ann: Hi Ada, I'm checking with the courier now.")
			return agentAct(lc.AgentSays(chat, "Hi Ada, I'm checking with the courier now."))
		},
		func() error {
			say("agent  · Ann writes an internal note (agents only)")
			return agentAct(lc.AgentNote(chat, "courier ticket 7781, do not share"))
		},
		func() error {
			say("agent  · Ann sends a file: new-label.pdf")
			return agentAct(lc.AgentSendsFile(chat, "new-label.pdf", "application/pdf", []byte("%PDF-1.4 demo")))
		},
		func() error {
			return api.call(ctx, "POST", msgs, "", map[string]any{"type": "text", "payload": map[string]string{"text": "Got it, thank you!"}}, nil)
		},
		func() error {
			say("agent  · Ann closes the chat")
			return agentAct(lc.AgentCloses(chat))
		},
		func() error {
			return api.call(ctx, "GET", "/v1/sessions/"+session.SessionID, "", nil, nil)
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}

	say("")
	say("What the LiveChat agent saw in chat %s:", chat)
	lcChat, _ := lc.Chat(chat)
	for _, e := range lcChat.Events {
		text := e.Text
		if e.Type == "file" {
			text = fmt.Sprintf("[file] %s (%s, %d bytes)", e.Name, e.ContentType, e.Size)
		}
		who := e.AuthorID
		if e.Visibility != "all" {
			who += " (note)"
		}
		say("  %-28s %s", who, strings.ReplaceAll(text, "\n", "\n  "+strings.Repeat(" ", 29)))
	}
	return nil
}

// agentAct turns a simulator action's webhook answer into an error.
func agentAct(status int, err error) error {
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("the bridge answered the LiveChat webhook with %d", status)
	}
	return nil
}

// demoClient is the bot's side of the native API.
type demoClient struct {
	base string
	say  func(string, ...any)
}

func (c *demoClient) call(ctx context.Context, method, path, idempotencyKey string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+demoBotKey)
	req.Header.Set("Content-Type", "application/json")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	c.say("bot    → %s %s  ⇒ %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(answer)))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s answered %d", method, path, resp.StatusCode)
	}
	if out != nil {
		return json.Unmarshal(answer, out)
	}
	return nil
}

// botReceiver prints each callback after checking its signature, as a bot
// should.
func botReceiver(say func(string, ...any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get(delivery.HeaderSignature)
		ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
		var at int64
		fmt.Sscan(ts, &at)
		verdict := "signature ok"
		if delivery.Sign([]byte(demoSigningKey), time.Unix(at, 0), body) != sig {
			verdict = "BAD SIGNATURE"
		}
		var e hitl.Event
		_ = json.Unmarshal(body, &e)
		detail := ""
		switch {
		case e.Message != nil && e.Message.Type == hitl.TypeText:
			detail = fmt.Sprintf("%q", e.Message.Text)
		case e.Message != nil:
			detail = fmt.Sprintf("%s %s", e.Message.Type, e.Message.URL)
		case e.Reason != "":
			detail = "reason " + e.Reason
		case e.Queued:
			detail = "queued"
		}
		if e.Agent != nil && e.Agent.Name != "" {
			detail = "from " + e.Agent.Name + " " + detail
		}
		say("bot    ← %-16s %s  [%s, %s]", e.Type, detail, r.Header.Get(delivery.HeaderEventID), verdict)
		w.WriteHeader(http.StatusNoContent)
	})
}

// demoPNG is a 1×1 PNG the demo user "sends".
var demoPNG = []byte{
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
	0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
	0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
	0x42, 0x60, 0x82,
}
