package livechattest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// timeFormat is LiveChat's timestamp layout: RFC 3339, microseconds, UTC.
const timeFormat = "2006-01-02T15:04:05.000000Z"

// AgentJoins adds a to the chat, as routing does when an agent takes it,
// and sends user_added_to_chat. It returns the webhook answer's status.
func (s *Server) AgentJoins(chatID string, a Agent) (int, error) {
	return s.act(chatID, func(c *Chat) (string, any, error) {
		if !c.Active {
			return "", nil, errors.New("chat is inactive")
		}
		if !slices.ContainsFunc(c.Users, func(u User) bool { return u.ID == a.ID }) {
			c.Users = append(c.Users, User{ID: a.ID, Name: a.Name, Type: "agent", Visibility: "all"})
		}
		s.know(a)
		c.Queued = false
		return "user_added_to_chat", s.userAdded(c, a, "manual", a.ID), nil
	})
}

// agentUser is the "User > Agent" object
// (https://platform.text.com/docs/messaging/agent-chat-api/data-structures#agent).
func agentUser(a Agent, seen time.Time) map[string]any {
	u := map[string]any{
		"id":                a.ID,
		"name":              a.Name,
		"type":              "agent",
		"present":           true,
		"visibility":        "all",
		"events_seen_up_to": seen.UTC().Format(timeFormat),
	}
	if strings.Contains(a.ID, "@") {
		u["email"] = a.ID
	}
	if a.AvatarURL != "" {
		u["avatar"] = a.AvatarURL
	}
	return u
}

// userAdded is user_added_to_chat's payload for an agent
// (https://platform.text.com/docs/management/webhooks#user_added_to_chat).
// Callers hold s.mu.
func (s *Server) userAdded(c *Chat, a Agent, reason, requester string) map[string]any {
	return map[string]any{
		"chat_id":      c.ID,
		"thread_id":    c.ThreadID,
		"user":         agentUser(a, s.Now()),
		"user_type":    "agent",
		"reason":       reason,
		"requester_id": requester,
	}
}

// AgentSays posts a message from the chat's agent to everyone and sends
// incoming_event.
func (s *Server) AgentSays(chatID, text string) (int, error) {
	return s.agentEvent(chatID, Event{Type: "message", Text: text, Visibility: "all"})
}

// AgentNote posts a message visible to agents only and sends
// incoming_event; the end user must never see it.
func (s *Server) AgentNote(chatID, text string) (int, error) {
	return s.agentEvent(chatID, Event{Type: "message", Text: text, Visibility: "agents"})
}

// AgentSendsFile uploads a file as the chat's agent, posts it and sends
// incoming_event with the file event.
func (s *Server) AgentSendsFile(chatID, name, contentType string, body []byte) (int, error) {
	return s.act(chatID, func(c *Chat) (string, any, error) {
		url := s.StoreFile(name, contentType, body)
		e := Event{Type: "file", Name: name, URL: url, ContentType: contentType, Size: len(body), Visibility: "all"}
		return s.postAsAgent(c, e)
	})
}

func (s *Server) agentEvent(chatID string, e Event) (int, error) {
	return s.act(chatID, func(c *Chat) (string, any, error) { return s.postAsAgent(c, e) })
}

func (s *Server) postAsAgent(c *Chat, e Event) (string, any, error) {
	if !c.Active {
		return "", nil, errors.New("chat is inactive")
	}
	agent := s.currentAgent(c, s.opts.IntegrationAgentID)
	if agent == "" {
		return "", nil, errors.New("no agent has joined the chat")
	}
	e.AuthorID = agent
	e = s.appendEvent(c, e)
	return "incoming_event", map[string]any{"chat_id": c.ID, "thread_id": c.ThreadID, "event": eventJSON(e)}, nil
}

// Redeliver sends incoming_event for a stored event, such as the end
// user's own message, which LiveChat also reports to webhooks.
func (s *Server) Redeliver(chatID, eventID string) (int, error) {
	return s.act(chatID, func(c *Chat) (string, any, error) {
		i := slices.IndexFunc(c.Events, func(e Event) bool { return e.ID == eventID })
		if i < 0 {
			return "", nil, fmt.Errorf("no event %s", eventID)
		}
		return "incoming_event", map[string]any{"chat_id": c.ID, "thread_id": c.ThreadID, "event": eventJSON(c.Events[i])}, nil
	})
}

// TransferToQueue moves the chat to a group with nobody available: its
// agents leave and it waits in the queue; sends chat_transferred.
func (s *Server) TransferToQueue(chatID string, groupID int) (int, error) {
	return s.act(chatID, func(c *Chat) (string, any, error) {
		if !c.Active {
			return "", nil, errors.New("chat is inactive")
		}
		requester := s.currentAgent(c, "")
		c.Users = slices.DeleteFunc(c.Users, func(u User) bool { return u.Type == "agent" })
		c.GroupID, c.Queued = groupID, true
		return "chat_transferred", map[string]any{
			"chat_id":        c.ID,
			"thread_id":      c.ThreadID,
			"requester_id":   requester,
			"reason":         "manual",
			"transferred_to": map[string]any{"group_ids": []int{groupID}},
			"queue":          s.queue(c),
		}, nil
	})
}

// AgentCloses deactivates the chat as its agent and sends chat_deactivated.
func (s *Server) AgentCloses(chatID string) (int, error) {
	return s.act(chatID, func(c *Chat) (string, any, error) {
		if !c.Active {
			return "", nil, errors.New("chat is inactive")
		}
		agent := s.currentAgent(c, "")
		c.Active, c.Queued = false, false
		payload := map[string]any{"chat_id": c.ID, "thread_id": c.ThreadID}
		if agent != "" {
			payload["user_id"] = agent
		}
		return "chat_deactivated", payload, nil
	})
}

// Deliver sends a webhook with any action and payload, in the envelope
// LiveChat uses.
func (s *Server) Deliver(action string, payload any) (int, error) {
	s.mu.Lock()
	body, err := s.envelope(action, payload)
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return s.deliver(body)
}

// act changes a chat under the lock and delivers the webhook it produces
// after releasing it, so the receiver may call the API meanwhile.
func (s *Server) act(chatID string, change func(*Chat) (action string, payload any, err error)) (int, error) {
	s.mu.Lock()
	c, ok := s.chats[chatID]
	if !ok {
		s.mu.Unlock()
		return 0, fmt.Errorf("livechattest: no chat %s", chatID)
	}
	action, payload, err := change(c)
	var body []byte
	if err == nil {
		body, err = s.envelope(action, payload)
	}
	s.mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("livechattest: chat %s: %w", chatID, err)
	}
	return s.deliver(body)
}

// envelope wraps a payload as LiveChat's webhook body. Callers hold s.mu.
func (s *Server) envelope(action string, payload any) ([]byte, error) {
	env := map[string]any{
		"webhook_id":      fmt.Sprintf("%x", action),
		"secret_key":      s.opts.WebhookSecret,
		"action":          action,
		"payload":         payload,
		"additional_data": map[string]any{},
	}
	if s.opts.LicenseID != 0 {
		env["license_id"] = s.opts.LicenseID
	} else {
		env["organization_id"] = s.opts.OrganizationID
	}
	return json.Marshal(env)
}

var webhookClient = &http.Client{Timeout: 10 * time.Second}

// webhookRetries is how often LiveChat retries a delivery not answered 200
// within its ~10 s timeout: "up to 3 times within ~1 minute"
// (https://platform.text.com/docs/guides/livechat-apps#building-a-webhook-app).
const webhookRetries = 3

// deliver posts body to the webhook URL the configured number of times,
// each time retrying an answer other than 2xx, or none, up to
// webhookRetries times spaced by Options.WebhookRetryDelay, as LiveChat
// does. It returns the last status, or the last error when no answer came.
func (s *Server) deliver(body []byte) (int, error) {
	url, times := s.Webhook()
	if url == "" {
		return 0, errors.New("livechattest: no webhook URL set")
	}
	status := 0
	var err error
	for range times {
		for attempt := 0; attempt <= webhookRetries; attempt++ {
			if attempt > 0 {
				time.Sleep(s.opts.WebhookRetryDelay)
			}
			var resp *http.Response
			resp, err = webhookClient.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				err = fmt.Errorf("livechattest: deliver webhook: %w", err)
				status = 0
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
			if status >= 200 && status <= 299 {
				break
			}
		}
	}
	if status == 0 {
		return 0, err
	}
	return status, nil
}

// currentAgent is the last agent to join other than except and the bots.
// Callers hold s.mu.
func (s *Server) currentAgent(c *Chat, except string) string {
	for i := len(c.Users) - 1; i >= 0; i-- {
		if u := c.Users[i]; u.Type == "agent" && u.ID != except && s.bots[u.ID] == nil {
			return u.ID
		}
	}
	return ""
}

func eventJSON(e Event) map[string]any {
	m := map[string]any{
		"id":         e.ID,
		"created_at": e.CreatedAt.Format(timeFormat),
		"visibility": e.Visibility,
		"type":       e.Type,
		"author_id":  e.AuthorID,
	}
	if e.CustomID != "" {
		m["custom_id"] = e.CustomID
	}
	switch e.Type {
	case "message":
		m["text"] = e.Text
	case "file":
		m["name"], m["url"], m["content_type"], m["size"] = e.Name, e.URL, e.ContentType, e.Size
	}
	return m
}
