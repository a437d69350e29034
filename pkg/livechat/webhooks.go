package livechat

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// Webhooks verifies and parses LiveChat webhook deliveries. LiveChat puts
// the webhook's secret in the body (secret_key), not in a header.
//
// Authorship: an incoming_event carries the author's id only. Agents' ids
// are their emails, customers' are UUIDs. The end user's own messages come
// back as incoming_event too; those this package posted carry its custom_id
// and are dropped here. As a second guard, message events put the author id
// in ProviderEvent.Agent.ID, and the Bridge must drop an event whose
// Agent.ID equals the session's Visitor.ID (the customer's id).
type Webhooks struct {
	secret       [sha256.Size]byte
	empty        bool
	organization string
}

// NewWebhooks returns a parser that accepts deliveries carrying secret and
// addressed to organization. An empty secret accepts none. Envelopes of
// older registrations carry license_id instead of organization_id; the
// secret alone guards those.
func NewWebhooks(secret, organization string) *Webhooks {
	return &Webhooks{secret: sha256.Sum256([]byte(secret)), empty: secret == "", organization: organization}
}

// Parse verifies a delivery's secret, then maps it to the events that
// concern a conversation. Errors are *hitl.Error: CodeUnauthenticated for a
// wrong or missing secret, CodeInvalid for a malformed body. Actions and
// events of no interest give no events and no error, so the caller answers
// 200 and LiveChat does not retry.
func (w *Webhooks) Parse(body []byte) ([]hitl.ProviderEvent, error) {
	if !json.Valid(body) {
		return nil, hitl.Errorf(hitl.CodeInvalid, "livechat webhook: malformed JSON")
	}
	var head struct {
		SecretKey string `json:"secret_key"`
	}
	// A wrongly typed secret_key stays empty and fails the comparison,
	// which hashes first so it takes the same time whatever the lengths.
	_ = json.Unmarshal(body, &head)
	got := sha256.Sum256([]byte(head.SecretKey))
	if subtle.ConstantTimeCompare(got[:], w.secret[:]) != 1 || w.empty {
		return nil, hitl.Errorf(hitl.CodeUnauthenticated, "livechat webhook: secret_key does not match")
	}

	var env struct {
		WebhookID      string          `json:"webhook_id"`
		Action         string          `json:"action"`
		OrganizationID json.RawMessage `json:"organization_id"`
		Payload        json.RawMessage `json:"payload"`
	}
	if err := decode("envelope", body, &env); err != nil {
		return nil, err
	}
	// The secret alone would let another organization's webhook, registered
	// with the same secret, speak in our chats.
	if env.OrganizationID != nil {
		var org string
		if json.Unmarshal(env.OrganizationID, &org) != nil || org != w.organization {
			return nil, hitl.Errorf(hitl.CodeUnauthenticated, "livechat webhook: delivery for another organization")
		}
	}
	parse, ok := actions[env.Action]
	if !ok {
		return nil, nil
	}
	if p := bytes.TrimSpace(env.Payload); len(p) == 0 || p[0] != '{' {
		return nil, hitl.Errorf(hitl.CodeInvalid, "livechat webhook: %s needs a payload object", env.Action)
	}
	ev, err := parse(env.Payload)
	if err != nil || ev == nil {
		return nil, err
	}
	ev.Provider = hitl.LiveChat
	return []hitl.ProviderEvent{*ev}, nil
}

// actions maps the webhook actions that concern a handoff to their
// parsers. A parser returns nil for a delivery that carries nothing for the
// bot.
var actions = map[string]func(json.RawMessage) (*hitl.ProviderEvent, error){
	"incoming_event":     parseIncomingEvent,
	"user_added_to_chat": parseUserAdded,
	"chat_transferred":   parseTransferred,
	"chat_deactivated":   parseDeactivated,
}

func parseIncomingEvent(raw json.RawMessage) (*hitl.ProviderEvent, error) {
	var p struct {
		ChatID string          `json:"chat_id"`
		Event  json.RawMessage `json:"event"`
	}
	if err := decode("incoming_event payload", raw, &p); err != nil {
		return nil, err
	}
	var kind struct {
		Type string `json:"type"`
	}
	if err := decode("incoming_event event", p.Event, &kind); err != nil {
		return nil, err
	}
	if kind.Type != "message" && kind.Type != "file" {
		return nil, nil // system_message, filled_form, rich_message, …
	}
	var e struct {
		ID          string `json:"id"`
		CustomID    string `json:"custom_id"`
		AuthorID    string `json:"author_id"`
		CreatedAt   string `json:"created_at"`
		Visibility  string `json:"visibility"`
		Recipients  string `json:"recipients"` // v3.1 name of visibility
		Text        string `json:"text"`
		Name        string `json:"name"`
		URL         string `json:"url"`
		ContentType string `json:"content_type"`
	}
	if err := decode("incoming_event event", p.Event, &e); err != nil {
		return nil, err
	}
	if p.ChatID == "" || e.ID == "" {
		return nil, hitl.Errorf(hitl.CodeInvalid, "livechat webhook: incoming_event needs chat_id and event.id")
	}
	visibility := e.Visibility
	if visibility == "" {
		visibility = e.Recipients
	}
	if visibility != "all" || e.AuthorID == "" || strings.HasPrefix(e.CustomID, customIDPrefix) {
		return nil, nil // agents-only note, system event, or our own message
	}
	m := hitl.Message{Type: hitl.TypeText, Text: e.Text}
	if kind.Type == "file" {
		m = hitl.Message{Type: hitl.TypeFile, URL: e.URL, Title: e.Name, ContentType: e.ContentType}
	}
	if strings.TrimSpace(m.Text) == "" && m.URL == "" {
		return nil, nil
	}
	return &hitl.ProviderEvent{
		ConversationID: p.ChatID,
		Key:            "event/" + p.ChatID + "/" + e.ID,
		Type:           hitl.EventMessage,
		OccurredAt:     parseTime(e.CreatedAt),
		Agent:          &hitl.Agent{ID: e.AuthorID},
		Message:        &m,
	}, nil
}

func parseUserAdded(raw json.RawMessage) (*hitl.ProviderEvent, error) {
	var p struct {
		ChatID   string `json:"chat_id"`
		ThreadID string `json:"thread_id"`
		UserType string `json:"user_type"`
		User     struct {
			ID         string `json:"id"`
			Name       string `json:"name"`
			Type       string `json:"type"`
			Visibility string `json:"visibility"`
		} `json:"user"`
	}
	if err := decode("user_added_to_chat payload", raw, &p); err != nil {
		return nil, err
	}
	if p.ChatID == "" || p.User.ID == "" {
		return nil, hitl.Errorf(hitl.CodeInvalid, "livechat webhook: user_added_to_chat needs chat_id and user.id")
	}
	userType := p.UserType
	if userType == "" {
		userType = p.User.Type
	}
	// The customer joining is our own doing; an agent added with
	// visibility "agents" is a supervisor, not the assignee.
	if userType != "agent" || p.User.Visibility == "agents" {
		return nil, nil
	}
	return &hitl.ProviderEvent{
		ConversationID: p.ChatID,
		Key:            "user_added_to_chat/" + p.ChatID + "/" + p.ThreadID + "/" + p.User.ID,
		Type:           hitl.EventAssigned,
		Agent:          &hitl.Agent{ID: p.User.ID, Name: p.User.Name},
	}, nil
}

func parseTransferred(raw json.RawMessage) (*hitl.ProviderEvent, error) {
	var p struct {
		ChatID        string `json:"chat_id"`
		ThreadID      string `json:"thread_id"`
		Reason        string `json:"reason"`
		TransferredTo struct {
			GroupIDs []int    `json:"group_ids"`
			AgentIDs []string `json:"agent_ids"`
		} `json:"transferred_to"`
		Queue *struct {
			QueuedAt string `json:"queued_at"`
		} `json:"queue"`
	}
	if err := decode("chat_transferred payload", raw, &p); err != nil {
		return nil, err
	}
	if p.ChatID == "" {
		return nil, hitl.Errorf(hitl.CodeInvalid, "livechat webhook: chat_transferred needs chat_id")
	}
	ev := &hitl.ProviderEvent{
		ConversationID: p.ChatID,
		Type:           hitl.EventTransferred,
		Queued:         p.Queue != nil,
	}
	groups := make([]string, len(p.TransferredTo.GroupIDs))
	for i, g := range p.TransferredTo.GroupIDs {
		groups[i] = strconv.Itoa(g)
	}
	queuedAt := ""
	if p.Queue != nil {
		queuedAt = p.Queue.QueuedAt
		ev.OccurredAt = parseTime(queuedAt)
	}
	if len(p.TransferredTo.AgentIDs) > 0 {
		ev.Agent = &hitl.Agent{ID: p.TransferredTo.AgentIDs[0]}
	}
	// Retried deliveries repeat the payload; different transfers of one
	// thread differ in target, reason or queueing time.
	ev.Key = strings.Join([]string{"chat_transferred", p.ChatID, p.ThreadID, p.Reason,
		strings.Join(p.TransferredTo.AgentIDs, ","), strings.Join(groups, ","), queuedAt}, "/")
	return ev, nil
}

func parseDeactivated(raw json.RawMessage) (*hitl.ProviderEvent, error) {
	var p struct {
		ChatID   string `json:"chat_id"`
		ThreadID string `json:"thread_id"`
		UserID   string `json:"user_id"`
	}
	if err := decode("chat_deactivated payload", raw, &p); err != nil {
		return nil, err
	}
	if p.ChatID == "" {
		return nil, hitl.Errorf(hitl.CodeInvalid, "livechat webhook: chat_deactivated needs chat_id")
	}
	// Without user_id the router closed the thread (the chat went
	// inactive), not an agent.
	reason := hitl.ReasonAgentClosed
	if p.UserID == "" {
		reason = hitl.ReasonTimeout
	}
	return &hitl.ProviderEvent{
		ConversationID: p.ChatID,
		Key:            "chat_deactivated/" + p.ChatID + "/" + p.ThreadID,
		Type:           hitl.EventStopped,
		Reason:         reason,
	}, nil
}

// decode reads JSON into v; errors are CodeInvalid and name the part and
// field at fault without echoing the input.
func decode(part string, raw []byte, v any) error {
	if err := hitl.DecodeJSON(raw, v); err != nil {
		return hitl.Errorf(hitl.CodeInvalid, "livechat webhook %s: %s", part, hitl.ErrorMessage(err))
	}
	return nil
}

// parseTime reads LiveChat's RFC 3339 timestamps; the zero time when absent.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
