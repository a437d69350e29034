package livechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/outbound"
)

var (
	_ hitl.AvailabilityChecker = (*Client)(nil)
	_ hitl.TypingNotifier      = (*Client)(nil)
	_ hitl.SeenMarker          = (*Client)(nil)
	_ hitl.BotSender           = (*Client)(nil)
)

// seenLayout is LiveChat's RFC 3339 timestamp with microseconds.
const seenLayout = "2006-01-02T15:04:05.000000Z07:00"

// Availability counts the agents of the configured group whose routing
// status is accepting chats, with the Agent Chat API's
// list_routing_statuses filtered by the group
// (https://platform.text.com/docs/messaging/agent-chat-api#list-routing-statuses;
// scopes agents--all:ro and agents-bot--all:ro). The answer spells the
// status "accepting_chats"; the routing_status_set webhook spells it
// "accepting chats" (https://platform.text.com/docs/management/webhooks#routing_status_set):
// both count. The integration's own agent and the bridge's bot are not
// counted: neither takes a handoff. Other bots of the group are, since the
// answer does not tell bots from agents.
func (c *Client) Availability(ctx context.Context) (hitl.Availability, error) {
	var statuses []json.RawMessage
	if err := c.agentCall(ctx, "list_routing_statuses", false, map[string]any{
		"filters": map[string]any{"group_ids": []int{c.groupID}},
	}, &statuses); err != nil {
		return hitl.Availability{}, publicError("read livechat routing statuses", err)
	}
	self, err := c.IntegrationAgentID(ctx)
	if err != nil {
		return hitl.Availability{}, publicError("learn the integration's agent id", err)
	}
	n := 0
	for _, raw := range statuses {
		var s struct {
			AgentID string `json:"agent_id"`
			Status  string `json:"status"`
		}
		if json.Unmarshal(raw, &s) != nil || s.AgentID == "" {
			continue
		}
		accepting := s.Status == "accepting_chats" || s.Status == "accepting chats"
		if accepting && !strings.EqualFold(s.AgentID, self) && !strings.EqualFold(s.AgentID, c.botID) {
			n++
		}
	}
	return hitl.Availability{Accepting: n > 0, Agents: n}, nil
}

// unknownPreview is the sneak peek sent when the end user types and the
// bot did not say what: the Customer Chat API's sneak peek is text, and an
// empty one reads as the input being cleared.
const unknownPreview = "…"

// Typing shows the agent what the end user is typing with the Customer
// Chat API's send_sneak_peek, as the customer
// (https://platform.text.com/docs/messaging/customer-chat-api#send-sneak-peek).
// A preview the bot does not know is sent as "…". LiveChat has no web
// call for a plain typing indicator from the customer's side.
func (c *Client) Typing(ctx context.Context, s hitl.Session, text string) error {
	if strings.TrimSpace(text) == "" {
		text = unknownPreview
	}
	v, err := newVisitor(s.Visitor)
	if err == nil {
		err = c.asCustomer(ctx, v, "send_sneak_peek", false, map[string]any{
			"chat_id": s.ProviderConversationID, "sneak_peek_text": truncate(text),
		}, nil)
	}
	if err != nil {
		return publicError("send sneak peek to livechat chat "+s.ProviderConversationID, err)
	}
	return nil
}

// MarkSeen marks the chat's events up to upTo as seen by the customer with
// the Customer Chat API's mark_events_as_seen
// (https://platform.text.com/docs/messaging/customer-chat-api#mark-events-as-seen).
func (c *Client) MarkSeen(ctx context.Context, s hitl.Session, upTo time.Time) error {
	v, err := newVisitor(s.Visitor)
	if err == nil {
		err = c.asCustomer(ctx, v, "mark_events_as_seen", false, map[string]any{
			"chat_id": s.ProviderConversationID, "seen_up_to": upTo.UTC().Format(seenLayout),
		}, nil)
	}
	if err != nil {
		return publicError("mark livechat chat "+s.ProviderConversationID+" seen", err)
	}
	return nil
}

// setSessionFields gives the customer the handoff's context as session
// fields, which the agent sees beside the chat: the Customer Chat API's
// set_customer_session_fields takes an ordered array of one-pair objects,
// at most 100 keys
// (https://platform.text.com/docs/messaging/customer-chat-api#set-customer-session-fields).
// The pairs go in key order. The same pairs are in the transcript header,
// so a refusal costs only the structured form and does not stop the
// handoff.
func (c *Client) setSessionFields(ctx context.Context, v *visitor, req hitl.OpenRequest) {
	if len(req.Context) == 0 {
		return
	}
	fields := []map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(req.Context)) {
		fields = append(fields, map[string]string{k: req.Context[k]})
	}
	err := c.asCustomer(ctx, v, "set_customer_session_fields", false, map[string]any{"session_fields": fields}, nil)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "livechat context kept in the transcript only",
			slog.String("session_id", req.SessionID), slog.String("error", outbound.Brief(err)))
	}
}

// Agent reads an agent's name and avatar with the Configuration API's
// get_agent (https://platform.text.com/docs/management/configuration-api#get-agent;
// scope agents--all:ro). The webhook parser calls it, through its cache,
// for agents no webhook has described yet.
func (c *Client) Agent(ctx context.Context, id string) (hitl.Agent, error) {
	var a struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Avatar string `json:"avatar"`
	}
	if err := c.configCall(ctx, "get_agent", false, map[string]any{"id": id}, &a); err != nil {
		return hitl.Agent{}, err
	}
	return hitl.Agent{ID: id, Name: a.Name, AvatarURL: avatarURL(a.Avatar)}, nil
}

// avatarURL makes LiveChat's avatar (an https URL, sometimes without its
// scheme) absolute; "" when it is not a usable URL.
func avatarURL(s string) string {
	if strings.HasPrefix(s, "//") {
		s = "https:" + s
	} else if s != "" && !strings.Contains(s, "://") {
		s = "https://" + s
	}
	if !hitl.HTTPURL(s) {
		return ""
	}
	return s
}

// botTokenLife is how long a bot token is used: issue_bot_token's tokens
// are "valid for 24 hours"
// (https://platform.text.com/docs/management/configuration-api#issue-bot-token).
const botTokenLife = 23 * time.Hour

// SendAsBot posts m to the chat as the configured LiveChat bot, an agent of
// its own name and avatar, so the agent tells the bot's words from the
// customer's. The bot must be in the chat to send
// (https://platform.text.com/docs/messaging/agent-chat-api#send-event:
// "The user must be added to the chat before they can send an event"): the
// integration's agent adds it with add_user_to_chat, visibility all
// (https://platform.text.com/docs/messaging/agent-chat-api#add-user-to-chat),
// once per chat and container; the bot then sends with its own token,
// issued by the Configuration API's issue_bot_token and kept for its life.
// Media travel as their link.
//
// The bot joins only chats an agent has taken: adding an agent to a
// queued chat could take it out of the queue, which the docs leave open.
// Before that, and without a configured bot, the message goes as the
// customer's, marked hitl.BotPrefix, as for providers without bots.
func (c *Client) SendAsBot(ctx context.Context, s hitl.Session, m hitl.Message) (hitl.Sent, error) {
	if c.botID == "" || s.Status != hitl.StatusAssigned {
		return c.Send(ctx, s, hitl.Message{Type: hitl.TypeText, Text: hitl.BotPrefix + m.Readable()})
	}
	op := "send bot message to livechat chat " + s.ProviderConversationID
	ev := event{Type: "message", Text: truncate(m.Readable()), CustomID: customIDPrefix + s.ID}
	var sent struct {
		EventID string `json:"event_id"`
	}
	err := c.botSend(ctx, s.ProviderConversationID, ev, &sent)
	if err != nil {
		return hitl.Sent{}, publicError(op, err)
	}
	return hitl.Sent{MessageID: sent.EventID}, nil
}

// botSend adds the bot to the chat unless it joined it before, and sends
// ev as the bot. A refusal other than an ended chat or a limit makes the
// bot join again and the send repeat once: an agent may have removed it.
func (c *Client) botSend(ctx context.Context, chatID string, ev event, out any) error {
	joined := c.botChats.Contains(chatID)
	if !joined {
		if err := c.addBot(ctx, chatID); err != nil {
			return err
		}
	}
	err := c.asBot(ctx, "send_event", true, map[string]any{"chat_id": chatID, "event": withVisibility(ev)}, out)
	var api *APIError
	if joined && errors.As(err, &api) && api.Status >= 400 && api.Status < 500 && api.Type != "chat_inactive" && !api.rateLimited() {
		c.botChats.Remove(chatID)
		if err := c.addBot(ctx, chatID); err != nil {
			return err
		}
		err = c.asBot(ctx, "send_event", true, map[string]any{"chat_id": chatID, "event": withVisibility(ev)}, out)
	}
	return err
}

func withVisibility(ev event) map[string]string {
	return map[string]string{"type": ev.Type, "text": ev.Text, "custom_id": ev.CustomID, "visibility": "all"}
}

// addBot adds the bot to the chat as the integration's agent.
func (c *Client) addBot(ctx context.Context, chatID string) error {
	err := c.agentCall(ctx, "add_user_to_chat", false, map[string]any{
		"chat_id": chatID, "user_id": c.botID, "user_type": "agent", "visibility": "all",
		"ignore_requester_presence": true,
	}, nil)
	if err != nil {
		return fmt.Errorf("add the bot to the chat: %w", err)
	}
	c.botChats.Add(chatID, struct{}{})
	return nil
}

// asBot makes an Agent Chat API call with the bot's token, issuing a new
// token once when LiveChat refuses the one kept.
func (c *Client) asBot(ctx context.Context, action string, applyOnce bool, in, out any) error {
	token, err := c.botBearer(ctx, false)
	if err != nil {
		return err
	}
	err = c.agentCallAs(ctx, "Bearer "+token, action, applyOnce, in, out)
	var api *APIError
	if errors.As(err, &api) && api.unauthenticated() {
		if token, err = c.botBearer(ctx, true); err != nil {
			return err
		}
		err = c.agentCallAs(ctx, "Bearer "+token, action, applyOnce, in, out)
	}
	return err
}

// botBearer returns the bot's token, issuing one when none is kept, it is
// at the end of its life, or renew is set.
func (c *Client) botBearer(ctx context.Context, renew bool) (string, error) {
	c.botMu.Lock()
	defer c.botMu.Unlock()
	if !renew && c.botToken != "" && c.now().Before(c.botTokenUntil) {
		return c.botToken, nil
	}
	var issued struct {
		Token string `json:"token"`
	}
	err := c.configCall(ctx, "issue_bot_token", false, map[string]any{
		"bot_id": c.botID, "client_id": c.clientID, "bot_secret": c.botSecret, "organization_id": c.organizationID,
	}, &issued)
	if err == nil && issued.Token == "" {
		err = errors.New("livechat issue_bot_token: answer has no token")
	}
	if err != nil {
		return "", fmt.Errorf("issue a token for the bot: %w", err)
	}
	c.botToken, c.botTokenUntil = issued.Token, c.now().Add(botTokenLife)
	c.log.LogAttrs(ctx, slog.LevelInfo, "livechat bot token issued", slog.String("bot_id", c.botID))
	return c.botToken, nil
}

// call posts a JSON action with the given Authorization header to a
// regional API and decodes the answer into out when given.
func (c *Client) call(ctx context.Context, target, authorization, action string, applyOnce bool, in, out any) error {
	payload, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode %s: %w", action, err)
	}
	_, body, err := c.api.Do(ctx, outbound.Request{Op: action, ApplyOnce: applyOnce, Moved: c.followRegion, Build: func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", authorization)
		c.setRegion(req, c.agentRegion)
		return req, nil
	}})
	if err != nil {
		return err
	}
	return decodeAnswer(action, body, out)
}
