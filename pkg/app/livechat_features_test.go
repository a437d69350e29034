package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// The LiveChat features beyond carrying messages, end to end on every
// store: queue position, agent identity, seen both ways, typing, rating,
// context, availability and the bot speaking as a LiveChat bot.

// eachStoreWithBot runs test on every store with a LiveChat bot set up as
// the README says: created with the Configuration API's create_bot in the
// handoff group with the supervisor priority, its id in LIVECHAT_BOT_ID
// and its secret in livechat.botSecret.
func eachStoreWithBot(t *testing.T, test func(t *testing.T, e *apptest.Env, botID string)) {
	for name, newStore := range apptest.Stores {
		t.Run(name, func(t *testing.T) {
			var botID, botSecret string
			e := apptest.New(t, newStore(t), func(c *config.Config) {
				lc := c.Platforms[hitl.LiveChat].(*livechat.Settings)
				var agentToken string
				apptest.EditBlock(c, hitl.LiveChat, func(s *livechat.ConfigSecret) { agentToken = s.AgentToken })
				botID, botSecret = createBot(t, lc, agentToken)
				lc.BotID = botID
				apptest.EditBlock(c, hitl.LiveChat, func(s *livechat.ConfigSecret) { s.BotSecret = botSecret })
			})
			e.AddSecret(botSecret)
			test(t, e, botID)
		})
	}
}

func createBot(t *testing.T, lc *livechat.Settings, agentToken string) (id, secret string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"name": "Helper Bot", "avatar": "https://cdn.files-text.com/avatars/bot.png", "owner_client_id": lc.ClientID,
		"groups": []map[string]any{{"id": lc.GroupID, "priority": "supervisor"}},
	})
	req, _ := http.NewRequest(http.MethodPost, lc.APIURL+"/configuration/action/create_bot", bytes.NewReader(body))
	req.Header.Set("Authorization", "Basic "+agentToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var bot struct{ ID, Secret string }
	if err := json.NewDecoder(resp.Body).Decode(&bot); err != nil || resp.StatusCode != http.StatusOK || bot.ID == "" {
		t.Fatalf("create_bot: %d, %v", resp.StatusCode, err)
	}
	return bot.ID, bot.Secret
}

func eventsOf(e *apptest.Env, sessionID string, typ hitl.EventType) []hitl.Event {
	var out []hitl.Event
	for _, ev := range e.Bot.Events() {
		if ev.SessionID == sessionID && ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func assertAgent(t *testing.T, what string, got *hitl.Agent, want livechattest.Agent) {
	t.Helper()
	if got == nil || got.ID != want.ID || got.Name != want.Name || got.AvatarURL != want.AvatarURL {
		t.Errorf("%s: agent %+v, want %+v", what, got, want)
	}
}

func TestLiveChatQueuePositionAndAgentIdentity(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		lc := e.LiveChat
		lc.SetRouting(livechattest.RoutingQueue)
		lc.SetQueueWaitPerChat(90 * time.Second)
		lc.SetRoutingStatus(livechattest.Omar, livechattest.NotAcceptingChats, 1) // known to LiveChat, never seen by the bridge
		e.Handoff(t)                                                              // someone else waits first
		sessionID, chatID := e.Handoff(t)

		queued := eventsOf(e, sessionID, hitl.EventQueued)
		if len(queued) != 1 || queued[0].Queue == nil || *queued[0].Queue != (hitl.Queue{Position: 2, EstimatedWaitSeconds: 180}) {
			t.Fatalf("queued events %+v", queued)
		}
		if _, s := e.Do(t, "GET", "/v1/sessions/"+sessionID, nil); s["status"] != "waiting" {
			t.Fatalf("session while queued: %v", s)
		}

		simcore.Delivered(t)(lc.AgentJoins(chatID, livechattest.Nora))
		simcore.Delivered(t)(lc.AgentSays(chatID, "Hi, Nora here"))
		// A transfer to an agent the bridge never saw: looked up by id.
		chat, _ := lc.Chat(chatID)
		simcore.Delivered(t)(lc.Deliver("chat_transferred", map[string]any{"chat_id": chatID, "thread_id": chat.ThreadID,
			"requester_id": livechattest.Nora.ID, "reason": "manual", "transferred_to": map[string]any{"agent_ids": []string{livechattest.Omar.ID}}}))

		assigned := eventsOf(e, sessionID, hitl.EventAssigned)
		messages := eventsOf(e, sessionID, hitl.EventMessage)
		transferred := eventsOf(e, sessionID, hitl.EventTransferred)
		if len(assigned) != 1 || len(messages) != 1 || len(transferred) != 1 {
			t.Fatalf("bot received %v", eventTypes(e.Bot.Events()))
		}
		assertAgent(t, "assigned", assigned[0].Agent, livechattest.Nora)
		assertAgent(t, "message", messages[0].Agent, livechattest.Nora)
		assertAgent(t, "transferred", transferred[0].Agent, livechattest.Omar)
		_, s := e.Do(t, "GET", "/v1/sessions/"+sessionID, nil)
		if agent, _ := s["agent"].(map[string]any); s["status"] != "assigned" || agent["id"] != livechattest.Omar.ID || agent["avatarUrl"] != livechattest.Omar.AvatarURL {
			t.Fatalf("session after the transfer: %v", s)
		}
	})
}

func TestLiveChatSeenTypingRatingAndContext(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		ctx := t.Context()
		lc := e.LiveChat
		u, err := e.App.Bridge.CreateUser(ctx, hitl.UserDetails{Name: "Ada Lovelace", Email: "ada@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		s, err := e.App.Bridge.StartSession(ctx, hitl.StartRequest{UserID: u.ID, Title: "Refund", BotConversationID: "bc-7",
			Context: map[string]string{"order": "8841-2203", "plan": "Pro"}})
		if err != nil {
			t.Fatal(err)
		}
		chatID := s.ProviderConversationID
		chat, _ := lc.Chat(chatID)
		customer, _ := lc.Customer(s.Visitor.ID)
		if !slices.EqualFunc(customer.SessionFields, []map[string]string{{"order": "8841-2203"}, {"plan": "Pro"}}, func(a, b map[string]string) bool {
			return len(a) == 1 && len(b) == 1 && a["order"]+a["plan"] == b["order"]+b["plan"]
		}) {
			t.Errorf("customer's session fields %v", customer.SessionFields)
		}
		if !strings.Contains(chat.Events[0].Text, "Context:\norder: 8841-2203\nplan: Pro") {
			t.Errorf("transcript header %q", chat.Events[0].Text)
		}

		simcore.Delivered(t)(lc.AgentJoins(chatID, livechattest.Nora))
		simcore.Delivered(t)(lc.AgentSays(chatID, "Let me check"))

		// The end user types and reads.
		if fwd, err := e.App.Bridge.Typing(ctx, s.ID, "it was the blue"); err != nil || !fwd {
			t.Fatalf("typing: %v, %v", fwd, err)
		}
		upTo := e.Clock.Now().Add(-time.Second).UTC().Truncate(time.Microsecond)
		if fwd, err := e.App.Bridge.MarkSeen(ctx, s.ID, upTo); err != nil || !fwd {
			t.Fatalf("seen: %v, %v", fwd, err)
		}
		chat, _ = lc.Chat(chatID)
		i := slices.IndexFunc(chat.Users, func(u livechattest.User) bool { return u.ID == s.Visitor.ID })
		if !slices.Equal(chat.SneakPeeks, []string{"it was the blue"}) || i < 0 || !chat.Users[i].SeenUpTo.Equal(upTo) {
			t.Fatalf("sneak peeks %q, users %+v", chat.SneakPeeks, chat.Users)
		}

		// The agent reads; the end user rates.
		simcore.Delivered(t)(lc.AgentReads(chatID))
		simcore.Delivered(t)(lc.CustomerRates(chatID, 1, "Quick and kind"))
		seen := eventsOf(e, s.ID, hitl.EventSeen)
		if len(seen) != 1 || seen[0].SeenUpTo.IsZero() || seen[0].BotConversationID != "bc-7" {
			t.Fatalf("seen events %+v", seen)
		}
		assertAgent(t, "seen", seen[0].Agent, livechattest.Nora)
		rated := eventsOf(e, s.ID, hitl.EventRated)
		if len(rated) != 1 || rated[0].Rating == nil || *rated[0].Rating != (hitl.Rating{Score: 1, OutOf: 1, Comment: "Quick and kind"}) {
			t.Fatalf("rated events %+v", rated)
		}
		// The customer's own seen marks never come back as the agent's.
		simcore.Delivered(t)(lc.Deliver("events_marked_as_seen", map[string]any{"chat_id": chatID, "user_id": s.Visitor.ID,
			"seen_up_to": upTo.Format("2006-01-02T15:04:05.000000Z")}))
		if n := len(eventsOf(e, s.ID, hitl.EventSeen)); n != 1 {
			t.Fatalf("%d seen events after the customer's own mark", n)
		}
	})
}

func TestLiveChatAvailability(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *apptest.Env) {
		ctx := t.Context()
		a, err := e.App.Bridge.Availability(ctx, hitl.LiveChat)
		if err != nil || a.Accepting {
			t.Fatalf("nobody online: %+v, %v", a, err)
		}
		u, err := e.App.Bridge.CreateUser(ctx, hitl.UserDetails{Name: "Ada"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.App.Bridge.StartSession(ctx, hitl.StartRequest{UserID: u.ID, IfNoAgent: hitl.IfNoAgentRefuse})
		if hitl.ErrorCode(err) != hitl.CodeNoAgent || e.LiveChat.Calls("start_chat") != 0 {
			t.Fatalf("refused start: %v, %d chats", err, e.LiveChat.Calls("start_chat"))
		}
		e.LiveChat.SetRoutingStatus(livechattest.Nora, livechattest.AcceptingChats, 1)
		e.LiveChat.SetRoutingStatus(livechattest.Omar, livechattest.AcceptingChats, 2) // another group
		if a, err := e.App.Bridge.Availability(ctx, ""); err != nil || !a.Accepting || a.Agents != 1 {
			t.Fatalf("one agent of the group: %+v, %v", a, err)
		}
		if s, err := e.App.Bridge.StartSession(ctx, hitl.StartRequest{UserID: u.ID, IfNoAgent: hitl.IfNoAgentRefuse}); err != nil || s.ProviderConversationID == "" {
			t.Fatalf("start with an agent online: %+v, %v", s, err)
		}
	})
}

func TestLiveChatBotSpeaksAsTheBot(t *testing.T) {
	eachStoreWithBot(t, func(t *testing.T, e *apptest.Env, botID string) {
		ctx := t.Context()
		lc := e.LiveChat
		sessionID, chatID := e.Handoff(t)
		say := func(text string) {
			t.Helper()
			if _, err := e.App.Bridge.SendBotMessage(ctx, hitl.ChannelNative, sessionID, hitl.Message{Type: hitl.TypeText, Text: text}); err != nil {
				t.Fatalf("bot message %q: %v", text, err)
			}
		}
		say("an agent will be with you shortly") // queued: no agent to read the bot yet
		simcore.Delivered(t)(lc.AgentJoins(chatID, livechattest.Nora))
		say("the customer's order is 8841-2203")
		say("they were charged twice")
		simcore.Delivered(t)(lc.AgentSays(chatID, "Thanks, I see it"))

		chat, _ := lc.Chat(chatID)
		var byBot, asCustomer []string
		for _, ev := range chat.Events {
			switch {
			case ev.AuthorID == botID:
				byBot = append(byBot, ev.Text)
			case strings.HasPrefix(ev.Text, hitl.BotPrefix):
				asCustomer = append(asCustomer, ev.Text)
			}
		}
		if !slices.Equal(byBot, []string{"the customer's order is 8841-2203", "they were charged twice"}) {
			t.Errorf("the bot's own messages: %q", byBot)
		}
		if !slices.Equal(asCustomer, []string{hitl.BotPrefix + "an agent will be with you shortly"}) {
			t.Errorf("bot messages through the customer: %q", asCustomer)
		}
		if !slices.ContainsFunc(chat.Users, func(u livechattest.User) bool { return u.ID == botID && u.Name == "Helper Bot" }) {
			t.Errorf("the bot is not in the chat: %+v", chat.Users)
		}
		// The bot's joining and its messages are not an agent's to the bot.
		if got := strings.Join(eventTypes(e.Bot.Events()), " "); got != "hitl.assigned hitl.message" {
			t.Fatalf("bot received %s", got)
		}
		assertAgent(t, "assigned", e.Bot.Events()[0].Agent, livechattest.Nora)
		if _, s := e.Do(t, "GET", "/v1/sessions/"+sessionID, nil); s["agent"].(map[string]any)["id"] != livechattest.Nora.ID {
			t.Fatalf("session's agent %v", s["agent"])
		}
	})
}
