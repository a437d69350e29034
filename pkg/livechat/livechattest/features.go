package livechattest

import (
	"cmp"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// Routing statuses as list_routing_statuses spells them
// (https://platform.text.com/docs/messaging/agent-chat-api#list-routing-statuses).
const (
	AcceptingChats    = "accepting_chats"
	NotAcceptingChats = "not_accepting_chats"
	Offline           = "offline"
)

type routingStatus struct {
	status string
	groups []int
}

// bot is a bot agent created with create_bot.
type bot struct {
	id, secret, name, avatar, ownerClientID string
	groups                                  []int
}

// botTokenTTL: issue_bot_token's tokens are "valid for 24 hours"
// (https://platform.text.com/docs/management/configuration-api#issue-bot-token).
const botTokenTTL = 24 * time.Hour

// know adds agents to the directory get_agent reads. Callers hold s.mu.
func (s *Server) know(agents ...Agent) {
	for _, a := range agents {
		if known, ok := s.directory[a.ID]; ok {
			a.Name, a.AvatarURL = cmp.Or(a.Name, known.Name), cmp.Or(a.AvatarURL, known.AvatarURL)
		}
		s.directory[a.ID] = a
	}
}

// SetQueueWaitPerChat changes Options.QueueWaitPerChat.
func (s *Server) SetQueueWaitPerChat(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.QueueWaitPerChat = d
}

// SetRoutingStatus sets an agent's routing status (AcceptingChats,
// NotAcceptingChats) in the given groups, as the agent's app does
// (https://platform.text.com/docs/messaging/agent-chat-api#set-routing-status).
func (s *Server) SetRoutingStatus(a Agent, status string, groups ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.know(a)
	s.statuses[a.ID] = routingStatus{status: status, groups: groups}
}

// CreateBot creates a bot agent in groups as the Configuration API's
// create_bot does, owned by the simulator's client id, and returns its id
// and secret.
func (s *Server) CreateBot(name, avatar string, groups ...int) (id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.newBot(name, avatar, s.opts.ClientID, groups)
	return b.id, b.secret
}

// newBot stores a bot; its routing status is not accepting chats until
// set, so routing never assigns it (create_bot: "To make the bot available
// for receiving chats or webhooks, use the Set Routing Status method",
// https://platform.text.com/docs/management/configuration-api#create-bot).
// Callers hold s.mu.
func (s *Server) newBot(name, avatar, owner string, groups []int) *bot {
	b := &bot{id: simcore.RandomHex(16), secret: simcore.RandomHex(16), name: name, avatar: avatar, ownerClientID: owner, groups: groups}
	s.bots[b.id] = b
	s.statuses[b.id] = routingStatus{status: NotAcceptingChats, groups: groups}
	return b
}

// requester returns who an Agent Chat API call is made as: the PAT's
// integration agent, or a bot by its Bearer token; "" when unauthenticated.
// Callers hold s.mu.
func (s *Server) requester(r *http.Request) (requester, botID string) {
	auth := r.Header.Get("Authorization")
	if auth == "Basic "+s.AgentToken() {
		return s.opts.IntegrationAgentID, ""
	}
	if bearer, ok := strings.CutPrefix(auth, "Bearer "); ok {
		if bot, known := s.botTokens.Subject(bearer); known {
			return bot, bot
		}
	}
	return "", ""
}

// queue is chat_transferred's "queue" for c, now queued: its position among
// the group's queued chats, oldest first, and wait_time, the approximate
// wait in seconds (https://platform.text.com/docs/management/webhooks#chat_transferred,
// https://platform.text.com/docs/messaging/agent-chat-api/data-structures,
// the chat's "queue"), here QueueWaitPerChat per chat up to c. Callers
// hold s.mu.
func (s *Server) queue(c *Chat) map[string]any {
	position := 1
	for _, other := range s.chats {
		if other != c && other.Queued && other.GroupID == c.GroupID && other.CreatedAt.Before(c.CreatedAt) {
			position++
		}
	}
	return map[string]any{
		"position":  position,
		"wait_time": int(time.Duration(position) * s.opts.QueueWaitPerChat / time.Second),
		"queued_at": s.Now().UTC().Format(timeFormat),
	}
}

// agentSendEvent is the Agent API's send_event: the requester must be in
// the chat ("The user must be added to the chat before they can send an
// event"); it updates the requester's events_seen_up_to and causes
// incoming_event (https://platform.text.com/docs/messaging/agent-chat-api#send-event).
// Callers hold s.mu.
func (s *Server) agentSendEvent(r *http.Request, requester string) (any, [][]byte, *apiError) {
	var in struct {
		ChatID string  `json:"chat_id"`
		Event  eventIn `json:"event"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, nil, err
	}
	c, err := s.activeChat(in.ChatID)
	if err != nil {
		return nil, nil, err
	}
	i := slices.IndexFunc(c.Users, func(u User) bool { return u.ID == requester })
	if i < 0 {
		return nil, nil, errorf(http.StatusBadRequest, "validation", "Requester is not present in the chat")
	}
	visibility := cmp.Or(in.Event.Visibility, "all")
	switch {
	case in.Event.Type != "message" || strings.TrimSpace(in.Event.Text) == "" || len(in.Event.Text) > maxText:
		return nil, nil, errorf(http.StatusBadRequest, "validation", "Invalid event")
	case visibility == "all" && c.Users[i].Visibility == "agents":
		return nil, nil, errorf(http.StatusBadRequest, "validation", "Users with visibility agents cannot send events with visibility all")
	}
	ev := s.appendEvent(c, Event{Type: "message", Text: in.Event.Text, CustomID: in.Event.CustomID, AuthorID: requester, Visibility: visibility})
	c.Users[i].SeenUpTo = ev.CreatedAt
	body, _ := s.envelope("incoming_event", map[string]any{"chat_id": c.ID, "thread_id": c.ThreadID, "event": eventJSON(ev)})
	return map[string]string{"event_id": ev.ID}, [][]byte{body}, nil
}

// listRoutingStatuses is the Agent API's list_routing_statuses: each
// agent's (and bot's) status, filtered by filters.group_ids
// (https://platform.text.com/docs/messaging/agent-chat-api#list-routing-statuses).
// Callers hold s.mu.
func (s *Server) listRoutingStatuses(r *http.Request) (any, *apiError) {
	var in struct {
		Filters struct {
			GroupIDs []int `json:"group_ids"`
		} `json:"filters"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	out := []map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(s.statuses)) {
		st := s.statuses[id]
		if len(in.Filters.GroupIDs) > 0 && !slices.ContainsFunc(st.groups, func(g int) bool { return slices.Contains(in.Filters.GroupIDs, g) }) {
			continue
		}
		out = append(out, map[string]string{"agent_id": id, "status": st.status})
	}
	return out, nil
}

// sneakPeek is the Customer API's send_sneak_peek: chat_id and
// sneak_peek_text, both required
// (https://platform.text.com/docs/messaging/customer-chat-api#send-sneak-peek).
// Callers hold s.mu.
func (s *Server) sneakPeek(r *http.Request, c *customer) (any, *apiError) {
	var in struct {
		ChatID string  `json:"chat_id"`
		Text   *string `json:"sneak_peek_text"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	chat, err := s.customerChat(in.ChatID, c)
	if err != nil {
		return nil, err
	}
	if in.Text == nil {
		return nil, errorf(http.StatusBadRequest, "validation", "sneak_peek_text is required")
	}
	chat.SneakPeeks = append(chat.SneakPeeks, *in.Text)
	return map[string]any{}, nil
}

// customerSeen is the Customer API's mark_events_as_seen: seen_up_to in
// RFC 3339 (https://platform.text.com/docs/messaging/customer-chat-api#mark-events-as-seen).
// Callers hold s.mu.
func (s *Server) customerSeen(r *http.Request, c *customer) (any, *apiError) {
	var in struct {
		ChatID   string `json:"chat_id"`
		SeenUpTo string `json:"seen_up_to"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	chat, err := s.customerChat(in.ChatID, c)
	if err != nil {
		return nil, err
	}
	at, perr := time.Parse(time.RFC3339Nano, in.SeenUpTo)
	if perr != nil {
		return nil, errorf(http.StatusBadRequest, "validation", "seen_up_to must be an RFC 3339 date-time")
	}
	for i := range chat.Users {
		if chat.Users[i].ID == c.ID && at.After(chat.Users[i].SeenUpTo) {
			chat.Users[i].SeenUpTo = at.UTC()
		}
	}
	return map[string]any{}, nil
}

// setSessionFields is the Customer API's set_customer_session_fields: an
// ordered array of one-pair objects, at most 100 keys
// (https://platform.text.com/docs/messaging/customer-chat-api#set-customer-session-fields).
// Callers hold s.mu.
func (s *Server) setSessionFields(r *http.Request, c *customer) (any, *apiError) {
	var in struct {
		Fields []map[string]string `json:"session_fields"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	keys := 0
	for _, f := range in.Fields {
		keys += len(f)
	}
	if in.Fields == nil || keys > 100 {
		return nil, errorf(http.StatusBadRequest, "validation", "session_fields must be an array of at most 100 keys")
	}
	c.SessionFields = in.Fields
	return map[string]any{}, nil
}

// customerChat is a chat the customer is in. Callers hold s.mu.
func (s *Server) customerChat(id string, c *customer) (*Chat, *apiError) {
	chat, ok := s.chats[id]
	if !ok || !slices.ContainsFunc(chat.Users, func(u User) bool { return u.ID == c.ID }) {
		return nil, errorf(http.StatusForbidden, "authorization", "Customer has no access to the chat")
	}
	return chat, nil
}

// AgentReads marks the chat's events seen by its agent up to the latest,
// as the agent's app does, and sends events_marked_as_seen
// (https://platform.text.com/docs/management/webhooks#events_marked_as_seen).
func (s *Server) AgentReads(chatID string) (int, error) {
	return s.act(chatID, func(c *Chat) (string, any, error) {
		agent := s.currentAgent(c, s.opts.IntegrationAgentID)
		i := slices.IndexFunc(c.Users, func(u User) bool { return u.ID == agent })
		if i < 0 || len(c.Events) == 0 {
			return "", nil, errors.New("no agent has joined the chat, or it has no event")
		}
		upTo := c.Events[len(c.Events)-1].CreatedAt
		c.Users[i].SeenUpTo = upTo
		return "events_marked_as_seen", map[string]any{"user_id": agent, "chat_id": c.ID, "seen_up_to": upTo.Format(timeFormat)}, nil
	})
}

// CustomerRates rates the chat's thread as the customer's widget does: the
// rating namespace's score (0 bad, 1 good) and comment
// (https://platform.text.com/docs/messaging/references/default-properties#rating,
// set together by the customer SDK's rateChat,
// https://platform.text.com/docs/extending-chat-widget/customer-sdk#ratechat),
// and sends thread_properties_updated with the properties that changed
// (https://platform.text.com/docs/management/webhooks#thread_properties_updated).
func (s *Server) CustomerRates(chatID string, score int, comment string) (int, error) {
	return s.act(chatID, func(c *Chat) (string, any, error) {
		rating := map[string]any{"score": score}
		if comment != "" {
			rating["comment"] = comment
		}
		if c.ThreadProperties == nil {
			c.ThreadProperties = map[string]map[string]any{}
		}
		c.ThreadProperties["rating"] = rating
		return "thread_properties_updated", map[string]any{
			"chat_id": c.ID, "thread_id": c.ThreadID, "properties": map[string]any{"rating": rating},
		}, nil
	})
}

// agentConfiguration serves the Configuration API's get_agent, create_bot
// and issue_bot_token (https://platform.text.com/docs/management/configuration-api)
// for handleConfiguration, which holds s.mu and checked the PAT.
func (s *Server) agentConfiguration(w http.ResponseWriter, r *http.Request, action string) {
	if err := s.misdirected(r); err != nil {
		writeError(w, err)
		return
	}
	var (
		out any
		err *apiError
	)
	switch action {
	case "get_agent":
		out, err = s.getAgent(r)
	case "create_bot":
		out, err = s.createBot(r)
	case "issue_bot_token":
		out, err = s.issueBotToken(r)
	default:
		err = errorf(http.StatusNotFound, "not_found", "Unknown action %s", action)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// getAgent is get_agent: id, name, avatar, login_status
// (https://platform.text.com/docs/management/configuration-api#get-agent).
// Callers hold s.mu.
func (s *Server) getAgent(r *http.Request) (any, *apiError) {
	var in struct {
		ID string `json:"id"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	a, ok := s.directory[in.ID]
	if !ok {
		return nil, errorf(http.StatusNotFound, "not_found", "Agent not found")
	}
	out := map[string]any{"id": a.ID, "name": a.Name, "role": "normal", "login_status": strings.ReplaceAll(cmp.Or(s.statuses[a.ID].status, Offline), "_", " ")}
	if a.AvatarURL != "" {
		out["avatar"] = a.AvatarURL
	}
	return out, nil
}

// createBot is create_bot: name required, owner_client_id required with a
// PAT, groups with a priority each; it answers the id and secret
// (https://platform.text.com/docs/management/configuration-api#create-bot).
// Callers hold s.mu.
func (s *Server) createBot(r *http.Request) (any, *apiError) {
	var in struct {
		Name   string `json:"name"`
		Avatar string `json:"avatar"`
		Owner  string `json:"owner_client_id"`
		Groups []struct {
			ID       int    `json:"id"`
			Priority string `json:"priority"`
		} `json:"groups"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	if in.Name == "" || in.Owner == "" {
		return nil, errorf(http.StatusBadRequest, "validation", "name and owner_client_id are required")
	}
	var groups []int
	for _, g := range in.Groups {
		if g.Priority == "" {
			return nil, errorf(http.StatusBadRequest, "validation", "groups[].priority is required")
		}
		groups = append(groups, g.ID)
	}
	b := s.newBot(in.Name, in.Avatar, in.Owner, groups)
	return map[string]string{"id": b.id, "secret": b.secret}, nil
}

// issueBotToken is issue_bot_token: bot_id, client_id, bot_secret and
// organization_id, all required; the token lives 24 hours
// (https://platform.text.com/docs/management/configuration-api#issue-bot-token).
// Callers hold s.mu.
func (s *Server) issueBotToken(r *http.Request) (any, *apiError) {
	var in struct {
		BotID          string `json:"bot_id"`
		ClientID       string `json:"client_id"`
		BotSecret      string `json:"bot_secret"`
		OrganizationID string `json:"organization_id"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	b := s.bots[in.BotID]
	switch {
	case b == nil:
		return nil, errorf(http.StatusNotFound, "not_found", "Bot not found")
	case in.ClientID != b.ownerClientID || in.BotSecret != b.secret || in.OrganizationID != s.opts.OrganizationID:
		return nil, errorf(http.StatusUnauthorized, "authentication", "Invalid bot credentials")
	}
	tok := s.opts.Region + ":" + simcore.RandomHex(16)
	s.botTokens.Issue(tok, b.id, botTokenTTL)
	return map[string]string{"token": tok}, nil
}

// ExpireBotTokens makes every bot token issued so far expire now.
func (s *Server) ExpireBotTokens() { s.botTokens.ExpireAll() }
