package livechat_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// withBot gives the fixture's client a bot created in the group; it
// returns the bot's id.
func (f *fixture) withBot(t *testing.T) string {
	t.Helper()
	id, secret := f.sim.CreateBot("Helper Bot", "https://cdn.files-text.com/avatars/bot.png", groupID)
	cfg := f.cfg
	cfg.BotID, cfg.BotSecret = id, secret
	c, err := livechat.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	return id
}

// webhooks sends the simulator's webhooks through a parser that knows the
// integration's agent, the bot and how to look agents up; it returns what
// the parser made of them so far.
func (f *fixture) webhooks(t *testing.T, botID string) func() []hitl.ProviderEvent {
	t.Helper()
	w := livechat.NewWebhooks(f.sim.Options().WebhookSecret, f.sim.Options().OrganizationID).
		WithIntegrationAgent(f.client.IntegrationAgentID).WithBot(botID).WithAgentLookup(f.client.Agent)
	var mu sync.Mutex
	var got []hitl.ProviderEvent
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		events, err := w.Parse(body)
		if err != nil {
			http.Error(rw, hitl.ErrorMessage(err), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, events...)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	f.sim.SetWebhookURL(srv.URL)
	return func() []hitl.ProviderEvent {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

func TestAvailability(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, err := f.client.Availability(ctx)
	if err != nil || a.Accepting || a.Agents != 0 {
		t.Fatalf("nobody: %+v, %v", a, err)
	}
	f.withBot(t)
	integration := livechattest.Agent{ID: f.sim.Options().IntegrationAgentID}
	f.sim.SetRoutingStatus(integration, livechattest.AcceptingChats, groupID)
	f.sim.SetRoutingStatus(livechattest.Omar, livechattest.AcceptingChats, groupID+1) // another group
	f.sim.SetRoutingStatus(livechattest.Nora, livechattest.NotAcceptingChats, groupID)
	if a, err := f.client.Availability(ctx); err != nil || a.Accepting {
		t.Fatalf("only the integration, the bot and another group's agent: %+v, %v", a, err)
	}
	f.sim.SetRoutingStatus(livechattest.Nora, livechattest.AcceptingChats, groupID, groupID+1)
	f.sim.SetRoutingStatus(livechattest.Omar, livechattest.AcceptingChats, groupID)
	if a, err := f.client.Availability(ctx); err != nil || !a.Accepting || a.Agents != 2 {
		t.Fatalf("two agents: %+v, %v", a, err)
	}
	f.sim.FailNext("list_routing_statuses", 1, livechattest.Fault{Status: 403, Type: "authorization", Message: "Scope missing"})
	if _, err := f.client.Availability(ctx); hitl.ErrorCode(err) != hitl.CodeProvider {
		t.Fatalf("refused: %v", err)
	}
}

func TestTypingAndSeen(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	ctx := context.Background()
	if err := f.client.Typing(ctx, s, "I ordered the"); err != nil {
		t.Fatal(err)
	}
	if err := f.client.Typing(ctx, s, ""); err != nil {
		t.Fatal(err)
	}
	upTo := time.Date(2026, 3, 2, 9, 16, 30, 250000000, time.UTC)
	if err := f.client.MarkSeen(ctx, s, upTo); err != nil {
		t.Fatal(err)
	}
	chat := f.chat(t, s.ProviderConversationID)
	if !slices.Equal(chat.SneakPeeks, []string{"I ordered the", "…"}) {
		t.Errorf("sneak peeks %q", chat.SneakPeeks)
	}
	i := slices.IndexFunc(chat.Users, func(u livechattest.User) bool { return u.ID == s.Visitor.ID })
	if i < 0 || !chat.Users[i].SeenUpTo.Equal(upTo) {
		t.Errorf("customer's seen up to: %+v", chat.Users)
	}
	f.sim.FailNext("send_sneak_peek", 1, livechattest.Fault{Status: 422, Type: "chat_inactive", Message: "Chat is inactive"})
	if err := f.client.Typing(ctx, s, "x"); !errors.Is(err, hitl.ErrConversationEnded) {
		t.Errorf("typing in an ended chat: %v", err)
	}
}

func TestOpenGivesTheAgentTheContext(t *testing.T) {
	f := newFixture(t)
	req := openRequest()
	req.Context = map[string]string{"plan": "Pro", "order": "8841-2203", "locale": "pl-PL"}
	opened, err := f.client.Open(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := f.sim.Customer(opened.Visitor.ID)
	want := []map[string]string{{"locale": "pl-PL"}, {"order": "8841-2203"}, {"plan": "Pro"}}
	if !slices.EqualFunc(c.SessionFields, want, func(a, b map[string]string) bool { return len(a) == 1 && a[firstKey(b)] == b[firstKey(b)] }) {
		t.Errorf("session fields %v, want %v", c.SessionFields, want)
	}
	header := f.chat(t, opened.ConversationID).Events[0].Text
	if !strings.Contains(header, "Context:\nlocale: pl-PL\norder: 8841-2203\nplan: Pro") {
		t.Errorf("header %q", header)
	}

	// Refused fields cost only the structured form.
	f.sim.FailNext("set_customer_session_fields", 3, livechattest.Fault{Status: 400, Type: "validation", Message: "Too many keys"})
	if _, err := f.client.Open(context.Background(), req); err != nil {
		t.Fatalf("open with refused session fields: %v", err)
	}
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

func TestSendAsBot(t *testing.T) {
	f := newFixture(t)
	botID := f.withBot(t)
	events := f.webhooks(t, botID)
	s := f.open(t)
	ctx := context.Background()
	chatID := s.ProviderConversationID

	// Waiting in the queue: the bot does not join; the customer carries it.
	s.Status = hitl.StatusWaiting
	if _, err := f.client.SendAsBot(ctx, s, hitl.Message{Type: hitl.TypeText, Text: "still looking"}); err != nil {
		t.Fatal(err)
	}
	chat := f.chat(t, chatID)
	if last := chat.Events[len(chat.Events)-1]; last.AuthorID != s.Visitor.ID || last.Text != hitl.BotPrefix+"still looking" {
		t.Fatalf("queued bot message %+v", last)
	}

	simcore.Delivered(t)(f.sim.AgentJoins(chatID, livechattest.Nora))
	s.Status = hitl.StatusAssigned
	for _, text := range []string{"your order ships Monday", "anything else?"} {
		sent, err := f.client.SendAsBot(ctx, s, hitl.Message{Type: hitl.TypeText, Text: text})
		if err != nil || sent.MessageID == "" {
			t.Fatalf("send as bot: %+v, %v", sent, err)
		}
	}
	chat = f.chat(t, chatID)
	var byBot []string
	for _, e := range chat.Events {
		if e.AuthorID == botID {
			byBot = append(byBot, e.Text)
		}
	}
	if !slices.Equal(byBot, []string{"your order ships Monday", "anything else?"}) {
		t.Fatalf("bot's events %q", byBot)
	}
	if f.sim.Calls("add_user_to_chat") != 1 || f.sim.Calls("issue_bot_token") != 1 {
		t.Errorf("calls %q", f.sim.CallLog())
	}
	// The agent keeps the chat: still Nora's, and the bot's joining and
	// messages reach no one as an agent's.
	simcore.Delivered(t)(f.sim.AgentSays(chatID, "Thanks, bot"))
	got := events()
	var types []hitl.EventType
	for _, e := range got {
		types = append(types, e.Type)
		if e.Agent != nil && e.Agent.ID != livechattest.Nora.ID {
			t.Errorf("event of another agent: %+v", e)
		}
	}
	if !slices.Equal(types, []hitl.EventType{hitl.EventAssigned, hitl.EventMessage}) {
		t.Errorf("events %q", types)
	}

	// The token expired, and the chat went to another agent meanwhile,
	// which removed the bot: a new token, the bot joins again.
	f.sim.ExpireBotTokens()
	simcore.Delivered(t)(f.sim.TransferToQueue(chatID, groupID))
	simcore.Delivered(t)(f.sim.AgentJoins(chatID, livechattest.Omar))
	if _, err := f.client.SendAsBot(ctx, s, hitl.Message{Type: hitl.TypeImage, URL: "https://img.example.com/map.png"}); err != nil {
		t.Fatal(err)
	}
	chat = f.chat(t, chatID)
	if last := chat.Events[len(chat.Events)-1]; last.AuthorID != botID || !strings.Contains(last.Text, "https://img.example.com/map.png") {
		t.Fatalf("bot's image %+v", last)
	}
	if f.sim.Calls("issue_bot_token") != 2 || f.sim.Calls("add_user_to_chat") != 2 {
		t.Errorf("calls %q", f.sim.CallLog())
	}
	assertNoSecrets(t, f.logs.String(), f.sim, s.Visitor)
}

func TestWebhooksCarryAgentIdentity(t *testing.T) {
	f := newFixture(t)
	events := f.webhooks(t, "")
	s := f.open(t)
	chatID := s.ProviderConversationID
	f.sim.SetRouting(livechattest.RoutingSilent, livechattest.Omar) // Omar is known to the directory only

	simcore.Delivered(t)(f.sim.AgentJoins(chatID, livechattest.Nora))
	simcore.Delivered(t)(f.sim.AgentSays(chatID, "Hi Ada"))
	simcore.Delivered(t)(f.sim.AgentReads(chatID))
	// Another agent takes over without joining first, as a transfer does:
	// the parser has never seen them and looks them up once.
	simcore.Delivered(t)(f.sim.Deliver("chat_transferred", map[string]any{"chat_id": chatID, "thread_id": f.chat(t, chatID).ThreadID,
		"requester_id": livechattest.Nora.ID, "reason": "manual", "transferred_to": map[string]any{"agent_ids": []string{livechattest.Omar.ID}}}))
	simcore.Delivered(t)(f.sim.Deliver("events_marked_as_seen", map[string]any{"chat_id": chatID, "user_id": livechattest.Omar.ID, "seen_up_to": "2026-03-02T09:20:00.000000Z"}))
	simcore.Delivered(t)(f.sim.CustomerRates(chatID, 1, "Quick and kind"))
	simcore.Delivered(t)(f.sim.CustomerRates(chatID, 0, ""))

	got := events()
	var types []hitl.EventType
	for _, e := range got {
		types = append(types, e.Type)
	}
	want := []hitl.EventType{hitl.EventAssigned, hitl.EventMessage, hitl.EventSeen, hitl.EventTransferred, hitl.EventSeen, hitl.EventRated, hitl.EventRated}
	if !slices.Equal(types, want) {
		t.Fatalf("events %q, want %q", types, want)
	}
	for i, a := range []livechattest.Agent{livechattest.Nora, livechattest.Nora, livechattest.Nora, livechattest.Omar, livechattest.Omar} {
		if e := got[i].Agent; e == nil || e.ID != a.ID || e.Name != a.Name || e.AvatarURL != a.AvatarURL {
			t.Errorf("event %d (%s) agent %+v, want %+v", i, got[i].Type, e, a)
		}
	}
	if f.sim.Calls("get_agent") != 1 {
		t.Errorf("get_agent called %d times; Nora was learned from her joining and Omar looked up once", f.sim.Calls("get_agent"))
	}
	if chat := f.chat(t, chatID); !got[2].SeenUpTo.Equal(chat.Events[len(chat.Events)-1].CreatedAt.Truncate(time.Microsecond)) {
		t.Errorf("seen up to %v", got[2].SeenUpTo)
	}
	if r := got[5].Rating; r == nil || *r != (hitl.Rating{Score: 1, OutOf: 1, Comment: "Quick and kind"}) {
		t.Errorf("rating %+v", r)
	}
	if r := got[6].Rating; r == nil || *r != (hitl.Rating{Score: 0, OutOf: 1}) || got[5].Key == got[6].Key {
		t.Errorf("second rating %+v, keys %s / %s", r, got[5].Key, got[6].Key)
	}
}

func TestAgentLookupFailureIsNotFatal(t *testing.T) {
	f := newFixture(t)
	events := f.webhooks(t, "")
	s := f.open(t)
	chatID := s.ProviderConversationID
	f.sim.FailNext("get_agent", 5, livechattest.Fault{Status: 403, Type: "authorization", Message: "Scope agents--all:ro missing"})
	for range 2 {
		simcore.Delivered(t)(f.sim.Deliver("events_marked_as_seen", map[string]any{"chat_id": chatID, "user_id": livechattest.Omar.ID, "seen_up_to": "2026-03-02T09:20:00.000000Z"}))
	}
	// A customer's id is never looked up as an agent's.
	simcore.Delivered(t)(f.sim.Deliver("incoming_event", map[string]any{"chat_id": chatID, "event": map[string]any{
		"id": "E1", "type": "message", "text": "hello?", "visibility": "all", "author_id": s.Visitor.ID}}))
	got := events()
	if len(got) != 3 || got[0].Agent == nil || got[0].Agent.ID != livechattest.Omar.ID || got[0].Agent.Name != "" || got[2].Agent.ID != s.Visitor.ID {
		t.Fatalf("events %+v", got)
	}
	if f.sim.Calls("get_agent") != 1 {
		t.Errorf("get_agent called %d times: a failed look-up was repeated, or a customer looked up", f.sim.Calls("get_agent"))
	}
}
