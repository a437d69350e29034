package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

// agents is a platform's agent side, as the shared end-to-end test drives
// it through the platform's simulator.
type agents interface {
	// sees is everything an agent sees of the conversation.
	sees(conversationID string) string
	takes(conversationID, agentID, name string) (int, error)
	says(conversationID, agentID, text string) (int, error)
	closes(conversationID string) (int, error)
	closed(conversationID string) bool
}

// platform starts a bridge with one platform's simulator on a store.
type platform struct {
	name  string
	start func(t *testing.T, st hitl.Store) (*apptest.Env, agents)
}

// platforms are every platform the bridge is tested with: the two it is
// built with, and testchat, a platform of the tests' own composed through
// the same seam.
var platforms = []platform{
	{"livechat", func(t *testing.T, st hitl.Store) (*apptest.Env, agents) {
		e := apptest.New(t, st)
		return e, liveChatAgents{e.LiveChat}
	}},
	{"zoho", func(t *testing.T, st hitl.Store) (*apptest.Env, agents) {
		e := apptest.New(t, st)
		return e, zohoAgents{e.Zoho}
	}},
	{testchatName, func(t *testing.T, st hitl.Store) (*apptest.Env, agents) {
		sim := newTestchatSim()
		t.Cleanup(sim.srv.Close)
		e := apptest.New(t, st, apptest.WithPlatform(testchatIntegration(),
			map[string]string{"TESTCHAT_API_URL": sim.srv.URL},
			testchatSecret{APIKey: testchatAPIKey, WebhookSecret: testchatHookKey}))
		// The platform learns where its webhooks go from the bridge's own
		// setup, as LiveChat and SalesIQ do in production.
		code, out := e.Do(t, "POST", "/v1/admin/setup", nil, "Authorization", "Bearer "+apptest.AdminKey)
		if code != http.StatusOK || out["providers"].(map[string]any)[testchatName] == nil || strings.Contains(fmt.Sprint(out["checks"]), testchatName) {
			t.Fatalf("setup: %d %v", code, out)
		}
		return e, testchatAgents{sim}
	}},
}

// TestNativeHandoffOnEveryPlatform runs the native API's handoff on every
// platform and store: start with a transcript, messages both ways, an
// agent taking it, and both ways of ending.
func TestNativeHandoffOnEveryPlatform(t *testing.T) {
	for _, p := range platforms {
		for storeName, newStore := range apptest.Stores {
			for _, ending := range []string{"agent closes", "bot stops"} {
				t.Run(p.name+"/"+storeName+"/"+ending, func(t *testing.T) {
					e, desk := p.start(t, newStore(t))
					nativeHandoff(t, e, desk, p.name, ending == "bot stops")
				})
			}
		}
	}
}

func nativeHandoff(t *testing.T, e *apptest.Env, desk agents, provider string, botStops bool) {
	status, u := e.Do(t, "POST", "/v1/users", map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"})
	if status != http.StatusCreated {
		t.Fatalf("create user: %d %v", status, u)
	}
	status, s := e.Do(t, "POST", "/v1/sessions", map[string]any{
		"userId": u["userId"], "provider": provider, "title": "Order #1042", "description": "late delivery", "botConversationId": "bc-7",
		"messageHistory": []map[string]any{
			{"source": map[string]string{"type": "user"}, "type": "text", "payload": map[string]string{"text": "where is my parcel"}},
			{"source": map[string]string{"type": "bot"}, "type": "text", "payload": map[string]string{"text": "let me find a person"}},
		},
	}, "Idempotency-Key", "handoff-1")
	if status != http.StatusCreated || s["provider"] != provider || s["status"] != "waiting" {
		t.Fatalf("start: %d %v", status, s)
	}
	sessionID, convID := s["sessionId"].(string), s["providerConversationId"].(string)
	msgs := "/v1/sessions/" + sessionID + "/messages"
	if status, out := e.Do(t, "POST", msgs, map[string]any{"type": "text", "payload": map[string]any{"text": "hello agent"}}); status != http.StatusAccepted {
		t.Fatalf("user message: %d %v", status, out)
	}
	seen := desk.sees(convID)
	for _, want := range []string{"Order #1042", "late delivery", "where is my parcel", "let me find a person", "hello agent"} {
		if !strings.Contains(seen, want) {
			t.Errorf("the agent cannot see %q:\n%s", want, seen)
		}
	}

	simcore.Delivered(t)(desk.takes(convID, "ann@example.com", "Ann"))
	simcore.Delivered(t)(desk.says(convID, "ann@example.com", "Hi Ada"))
	if _, got := e.Do(t, "GET", "/v1/sessions/"+sessionID, nil); got["status"] != "assigned" {
		t.Fatalf("session after the agent took it: %v", got)
	}
	if botStops {
		for range 2 {
			if status, out := e.Do(t, "POST", "/v1/sessions/"+sessionID+"/stop", map[string]any{"reason": "resolved"}); status != http.StatusOK || out["status"] != "closed" {
				t.Fatalf("stop: %d %v", status, out)
			}
		}
		if !desk.closed(convID) {
			t.Fatal("the bot stopped the session but the platform's conversation is open")
		}
	} else {
		simcore.Delivered(t)(desk.closes(convID))
	}

	var got []hitl.Event
	for _, ev := range e.Bot.Events() {
		if ev.SessionID == sessionID {
			got = append(got, ev)
		}
	}
	want := "hitl.assigned hitl.message hitl.stopped"
	if strings.Join(eventTypes(got), " ") != want {
		t.Fatalf("bot received %v, want %s (each once)", eventTypes(got), want)
	}
	reason := hitl.ReasonAgentClosed
	if botStops {
		reason = hitl.ReasonBotStopped
	}
	if got[0].Agent == nil || got[0].Agent.Name != "Ann" || got[1].Message == nil || got[1].Message.Text != "Hi Ada" || got[2].Reason != reason {
		t.Fatalf("events %+v", got)
	}
	for _, ev := range got {
		if ev.Provider != provider || ev.BotConversationID != "bc-7" {
			t.Fatalf("event routing fields: %+v", ev)
		}
	}
	if _, after := e.Do(t, "GET", "/v1/sessions/"+sessionID, nil); after["status"] != "closed" || after["closeReason"] != reason {
		t.Fatalf("session after the end: %v", after)
	}
	if status, _ := e.Do(t, "POST", msgs, map[string]any{"type": "text", "payload": map[string]any{"text": "late"}}); status != http.StatusConflict {
		t.Fatalf("message to a closed session: %d", status)
	}
	if e.Bot.BadSignatures() != 0 {
		t.Fatal("a callback was badly signed")
	}
}

// liveChatAgents is LiveChat's agent side.
type liveChatAgents struct{ lc *livechattest.Server }

func (a liveChatAgents) sees(id string) string {
	chat, _ := a.lc.Chat(id)
	var b strings.Builder
	for _, ev := range chat.Events {
		b.WriteString(ev.Text + "\n")
	}
	return b.String()
}

func (a liveChatAgents) takes(id, agentID, name string) (int, error) {
	return a.lc.AgentJoins(id, livechattest.Agent{ID: agentID, Name: name})
}

func (a liveChatAgents) says(id, _, text string) (int, error) { return a.lc.AgentSays(id, text) }
func (a liveChatAgents) closes(id string) (int, error)        { return a.lc.AgentCloses(id) }

func (a liveChatAgents) closed(id string) bool {
	chat, _ := a.lc.Chat(id)
	return !chat.Active
}

// zohoAgents is SalesIQ's operator side.
type zohoAgents struct{ z *zohotest.Server }

func (a zohoAgents) sees(id string) string {
	conv, _ := a.z.Conversation(id)
	texts := []string{conv.Question}
	for _, m := range conv.Messages {
		texts = append(texts, m.Text)
	}
	return strings.Join(texts, "\n")
}

func (a zohoAgents) takes(id, agentID, name string) (int, error) {
	return a.z.OperatorAccepts(id, zohotest.Operator{ID: agentID, Name: name, Email: agentID})
}

func (a zohoAgents) says(id, _, text string) (int, error) { return a.z.OperatorReplies(id, text) }
func (a zohoAgents) closes(id string) (int, error)        { return a.z.Completes(id) }
func (a zohoAgents) closed(id string) bool                { return a.z.Closed(id) }

// The rest of what an integration carries, with testchat: its part of the
// self-check, its scheduled credential renewal, its refused deliveries
// counted, and the webhooks function's view (the ingress part of its
// block, no provider client) on the same store.
func TestTestchatSelfCheckRefreshAndIngress(t *testing.T) {
	sim := newTestchatSim()
	t.Cleanup(sim.srv.Close)
	e := apptest.New(t, apptest.Bolt(t), apptest.WithPlatform(testchatIntegration(),
		map[string]string{"TESTCHAT_API_URL": sim.srv.URL}, testchatSecret{APIKey: testchatAPIKey, WebhookSecret: testchatHookKey}))
	if c := check(report(status(t, e), testchatName), "webhook"); c.Status != health.Fail {
		t.Fatalf("before setup: %+v", c)
	}
	// PUBLIC_URL is not set: the scheduled run renews, and sets nothing up.
	_ = e.App.RefreshCredentials(t.Context())
	sim.mu.Lock()
	renewals := sim.renewals
	sim.mu.Unlock()
	if renewals != 1 {
		t.Fatalf("the scheduled run renewed testchat's key %d times", renewals)
	}
	if code, _ := e.Do(t, "POST", "/v1/admin/setup", nil, adminAuth...); code != http.StatusOK {
		t.Fatalf("setup: %d", code)
	}
	if c := check(report(status(t, e), testchatName), "webhook"); c.Status != health.OK {
		t.Fatalf("after setup: %+v", c)
	}
	sessionID, convID := e.HandoffTo(t, testchatName)

	// A forged delivery is refused, counted, and changes nothing.
	resp, err := http.Post(e.Server.URL+"/webhooks/"+testchatName, "application/json",
		strings.NewReader(`{"id":"ev-x","type":"agent.message","conversation":"`+convID+`","text":"forged"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(e.Bot.Events()) != 0 || !strings.Contains(e.Metrics.String(), testchatName) {
		t.Fatalf("forged delivery: %d, %d events, metrics %s", resp.StatusCode, len(e.Bot.Events()), e.Metrics.String())
	}

	// The webhooks function: only the webhook secret, no provider client.
	c := e.Config
	c.Secret = c.Secret.Ingress(map[string]json.RawMessage{testchatName: json.RawMessage(`{"webhookSecret":"` + testchatHookKey + `"}`)})
	c.Platforms = map[string]integration.Platform{testchatName: c.Platforms[testchatName]}
	c.DefaultProvider = testchatName
	webhooks, err := app.NewWebhooks(c, app.Options{Store: e.Store, Log: e.App.Log, Now: e.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if len(webhooks.Bridge.Providers) != 0 {
		t.Fatalf("the webhooks function has provider clients: %v", webhooks.Bridge.Providers)
	}
	front := httptest.NewServer(webhooks)
	t.Cleanup(front.Close)
	sim.mu.Lock()
	sim.webhookURL = front.URL + "/webhooks/" + testchatName
	sim.mu.Unlock()
	simcore.Delivered(t)(sim.agentJoins(convID, "ann@example.com", "Ann"))
	if ev := e.Bot.Events(); len(ev) != 1 || ev[0].SessionID != sessionID || ev[0].Type != hitl.EventAssigned {
		t.Fatalf("bot events through the webhooks function: %+v", ev)
	}
}
