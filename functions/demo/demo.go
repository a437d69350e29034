package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

// runDemo plays a scripted handoff to each provider: the bridge on the
// embedded store, the LiveChat and Zoho SalesIQ simulators the tests use,
// and a bot receiver that checks every callback's signature. Everything
// listens on loopback. logs, if not nil, receives the bridge's log.
func runDemo(ctx context.Context, out, logs io.Writer) error {
	dir, err := os.MkdirTemp("", "hitl-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := bolt.Open(filepath.Join(dir, "bridge.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	e, err := apptest.Start(st)
	if err != nil {
		return err
	}
	defer e.Close()
	if logs != nil {
		defer func() { _, _ = io.WriteString(logs, e.Logs.String()) }()
	}
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(demoPNG)
	}))
	defer files.Close()

	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	e.Bot.OnEvent = func(ev hitl.Event) {
		say("bot    ← %-16s %s  [%s, signature verified]", ev.Type, describe(ev), ev.ID)
	}
	d := &demo{ctx: ctx, e: e, say: say, image: files.URL + "/screenshot.png"}

	say("hitl-bridge demo: a bot hands Ada to a human agent and back, once per provider")
	say("  bridge %s (embedded store in %s); LiveChat and Zoho SalesIQ simulators; bot %s", e.Server.URL, dir, e.Config.BotCallbackURL)
	if err := d.liveChat(); err != nil {
		return err
	}
	return d.zoho()
}

type demo struct {
	ctx   context.Context
	e     *apptest.Env
	say   func(string, ...any)
	image string
}

// start creates the user and starts a session with provider.
func (d *demo) start(provider string) (sessionID, conversationID string, err error) {
	var user struct{ UserID string }
	if err := d.call("POST", "/v1/users", "", map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"}, &user); err != nil {
		return "", "", err
	}
	var s struct{ SessionID, ProviderConversationID string }
	err = d.call("POST", "/v1/sessions", "demo-"+provider, map[string]any{
		"userId": user.UserID, "provider": provider, "title": "Order #1042 has not arrived",
		"description": "Customer asks for a human", "botConversationId": "conv-42",
		"messageHistory": []map[string]any{
			history("user", "Where is my order #1042?"),
			history("bot", "It left our warehouse on Monday. Shall I get you a person?"),
			history("user", "Yes please"),
		},
	}, &s)
	return s.SessionID, s.ProviderConversationID, err
}

func history(from, text string) map[string]any {
	return map[string]any{"source": map[string]string{"type": from}, "type": "text", "payload": map[string]string{"text": text}}
}

func (d *demo) userSays(sessionID, text string) error {
	return d.call("POST", "/v1/sessions/"+sessionID+"/messages", "", map[string]any{"type": "text", "payload": map[string]string{"text": text}}, nil)
}

func (d *demo) userSendsImage(sessionID string) error {
	return d.call("POST", "/v1/sessions/"+sessionID+"/messages", "", map[string]any{"type": "image", "payload": map[string]string{"imageUrl": d.image}}, nil)
}

// agent announces what an agent does, then does it: the callbacks it
// causes are printed as they arrive.
func (d *demo) agent(what string, act func() (int, error)) error {
	d.say("agent  · %s", what)
	status, err := act()
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("the bridge answered the provider's webhook with %d", status)
	}
	return nil
}

func (d *demo) liveChat() error {
	d.say("\n== LiveChat ==")
	d.say("(nobody in the group is available yet: LiveChat queues the chat)")
	d.e.LiveChat.SetRouting(livechattest.RoutingQueue)
	d.e.LiveChat.SetQueueWaitPerChat(2 * time.Minute)
	sessionID, chat, err := d.start("livechat")
	if err != nil {
		return err
	}
	lc := d.e.LiveChat
	ann := livechattest.Agent{ID: "ann@example.com", Name: "Ann", AvatarURL: "https://cdn.example.com/avatars/ann.png"}
	steps := []func() error{
		func() error { return d.userSays(sessionID, "The tracking page says 'label created'") },
		func() error { return d.userSendsImage(sessionID) },
		func() error {
			return d.agent("Ann joins the chat", func() (int, error) { return lc.AgentJoins(chat, ann) })
		},
		func() error {
			return d.agent("Ann: Hi Ada, I'm checking with the courier now.", func() (int, error) { return lc.AgentSays(chat, "Hi Ada, I'm checking with the courier now.") })
		},
		func() error {
			return d.agent("Ann writes an internal note (agents only: not forwarded)", func() (int, error) { return lc.AgentNote(chat, "courier ticket 7781, do not share") })
		},
		func() error {
			return d.agent("Ann sends a file: new-label.pdf", func() (int, error) {
				return lc.AgentSendsFile(chat, "new-label.pdf", "application/pdf", []byte("%PDF-1.4 demo"))
			})
		},
		func() error { return d.userSays(sessionID, "Got it, thank you!") },
		func() error {
			return d.agent("Ann reads Ada's messages", func() (int, error) { return lc.AgentReads(chat) })
		},
		func() error {
			d.say("user   · Ada rates the chat: good, \"Quick and kind\"")
			return d.agent("LiveChat reports the rating", func() (int, error) { return lc.CustomerRates(chat, 1, "Quick and kind") })
		},
		func() error {
			return d.agent("Ann closes the chat", func() (int, error) { return lc.AgentCloses(chat) })
		},
		func() error { return d.call("GET", "/v1/sessions/"+sessionID, "", nil, nil) },
	}
	if err := runSteps(steps); err != nil {
		return err
	}
	d.say("\nWhat the LiveChat agent saw in chat %s:", chat)
	c, _ := lc.Chat(chat)
	names := map[string]string{}
	for _, u := range c.Users {
		names[u.ID] = u.Name
		if customer, ok := lc.Customer(u.ID); ok && u.Type == "customer" {
			names[u.ID] = customer.Name + " (customer)"
		}
	}
	for _, ev := range c.Events {
		who := ev.AuthorID
		if n := names[ev.AuthorID]; n != "" {
			who = n
		}
		if ev.Visibility != "all" {
			who += " (note)"
		}
		text := ev.Text
		if ev.Type == "file" {
			text = fmt.Sprintf("[file] %s (%s, %d bytes)", ev.Name, ev.ContentType, ev.Size)
		}
		d.transcriptLine(who, text)
	}
	return nil
}

// zoho hands Ada to SalesIQ while Olga is online: SalesIQ routes the
// conversation to her as it opens, so the bot hears her take it, and her
// greeting, before the start answer; Ada rates the chat at the end.
func (d *demo) zoho() error {
	d.say("\n== Zoho SalesIQ ==")
	z := d.e.Zoho
	olga := zohotest.Operator{ID: "6000000001", Name: "Olga", Email: "olga@example.com"}
	d.say("agent  · Olga is online (Available) in the department")
	z.SetAvailableOperator(&olga)
	if err := d.call("GET", "/v1/availability?provider=zoho", "", nil, nil); err != nil {
		return err
	}
	sessionID, conv, err := d.start("zoho")
	if err != nil {
		return err
	}
	steps := []func() error{
		func() error { return d.userSays(sessionID, "The tracking page says 'label created'") },
		func() error { return d.userSendsImage(sessionID) },
		func() error {
			return d.agent("Olga: Hello Ada, a new label is on its way.", func() (int, error) { return z.OperatorReplies(conv, "Hello Ada, a new label is on its way.") })
		},
		func() error {
			return d.agent("Olga sends a file: new-label.pdf", func() (int, error) {
				return z.OperatorSendsFile(conv, "new-label.pdf", "application/pdf", []byte("%PDF-1.4 demo"), "")
			})
		},
		func() error {
			d.say("ada    · rates the chat in SalesIQ: 5, \"Quick and kind\"")
			if status, err := z.VisitorRates(conv, 5, "Quick and kind"); err != nil || status != http.StatusOK {
				return fmt.Errorf("rating delivery: status %d, %v", status, err)
			}
			events := d.e.Bot.Events()
			if r := events[len(events)-1].Rating; r != nil {
				d.say("         rating %d of %d, comment %q", r.Score, r.OutOf, r.Comment)
			}
			return nil
		},
		func() error {
			return d.call("POST", "/v1/sessions/"+sessionID+"/stop", "", map[string]any{"reason": "resolved"}, nil)
		},
	}
	if err := runSteps(steps); err != nil {
		return err
	}
	c, _ := z.Conversation(conv)
	d.say("\nWhat the SalesIQ operator saw in conversation %s (closed: %v):", conv, z.Closed(conv))
	d.transcriptLine(c.VisitorName+" (question)", c.Question)
	for _, m := range c.Messages {
		who := c.VisitorName
		if m.Sender == "operator" {
			who = olga.Name
		}
		text := m.Text
		if m.FileName != "" {
			text = fmt.Sprintf("[file] %s (%s, %d bytes) %s", m.FileName, m.ContentType, len(m.File), m.Text)
		}
		d.transcriptLine(who, text)
	}
	return nil
}

func (d *demo) transcriptLine(who, text string) {
	d.say("  %-24s %s", who, strings.ReplaceAll(strings.TrimSpace(text), "\n", "\n  "+strings.Repeat(" ", 25)))
}

func runSteps(steps []func() error) error {
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// call is the bot's side of the native API.
func (d *demo) call(method, path, idempotencyKey string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(d.ctx, method, d.e.Server.URL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+apptest.BotKey)
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
	d.say("bot    → %s %s  ⇒ %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(answer)))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s answered %d", method, path, resp.StatusCode)
	}
	if out != nil {
		return json.Unmarshal(answer, out)
	}
	return nil
}

// describe is one line about an event, for the transcript.
func describe(e hitl.Event) string {
	var parts []string
	if e.Agent != nil && e.Agent.Name != "" {
		parts = append(parts, "from "+e.Agent.Name)
		if e.Type == hitl.EventAssigned && e.Agent.AvatarURL != "" {
			parts = append(parts, "(avatar "+e.Agent.AvatarURL+")")
		}
	}
	switch {
	case e.Queue != nil:
		parts = append(parts, fmt.Sprintf("queue position %d, about %d s to wait", e.Queue.Position, e.Queue.EstimatedWaitSeconds))
	case !e.SeenUpTo.IsZero():
		parts = append(parts, "has read up to "+e.SeenUpTo.Format(time.TimeOnly))
	case e.Rating != nil:
		parts = append(parts, fmt.Sprintf("rated %d/%d %q", e.Rating.Score, e.Rating.OutOf, e.Rating.Comment))
	case e.Message != nil && e.Message.Type == hitl.TypeText:
		parts = append(parts, fmt.Sprintf("%q", e.Message.Text))
	case e.Message != nil:
		parts = append(parts, e.Message.Type+" "+e.Message.Title)
	case e.Reason != "":
		parts = append(parts, "reason "+e.Reason)
	case e.Queued:
		parts = append(parts, "queued")
	}
	return strings.Join(parts, " ")
}

// demoPNG is a 1×1 PNG the demo user "sends".
var demoPNG = []byte{
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
	0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
	0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
	0x42, 0x60, 0x82,
}
