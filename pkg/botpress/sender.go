package botpress

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// Sender delivers the events of Botpress sessions to the integration's
// webhook (the config secret's botpressWebhookUrl): hitl.message as /message-from-agent,
// hitl.assigned as /agent-assigned, hitl.stopped as /stop-hitl, and
// hitl.transferred to a named agent as /agent-assigned. A transfer to a
// queue has no counterpart in the contract and is accepted without a call.
// The Dispatcher's outbox gives these calls the same retries and per-session
// order as native callbacks.
//
// remoteConversationId is our session id (what createRemoteConversation
// answered) and remoteUserId the agent's provider id, so Botpress gives
// each agent a user of their own.
type Sender struct {
	// WebhookURL is the integration's webhook, e.g.
	// https://webhook.botpress.cloud/<id>. It lets anyone post as an agent,
	// so it is kept out of errors and logs.
	WebhookURL string
	Client     *http.Client
}

var _ delivery.Sender = (*Sender)(nil)

// Send posts e's callback; any 2xx answer is acceptance.
func (s *Sender) Send(ctx context.Context, e hitl.Event) error {
	route, body, err := callback(e)
	if err != nil || route == "" {
		return err
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode %s callback of event %s: %w", route, e.ID, err)
	}
	if err := delivery.Post(ctx, s.Client, strings.TrimRight(s.WebhookURL, "/")+route, raw, nil); err != nil {
		return fmt.Errorf("%s: %w", route, err)
	}
	return nil
}

// Callback bodies (openapi-botpress-webhook.json).
type (
	agentMessage struct {
		RemoteConversationID string          `json:"remoteConversationId"`
		RemoteUserID         string          `json:"remoteUserId"`
		MessageType          string          `json:"messageType"`
		Payload              json.RawMessage `json:"payload"`
	}
	agentAssigned struct {
		RemoteConversationID string `json:"remoteConversationId"`
		RemoteUserID         string `json:"remoteUserId"`
	}
	stopHitl struct {
		RemoteConversationID string `json:"remoteConversationId"`
	}
)

// callback maps e to its webhook route and body; no route means the
// contract has nothing to carry it.
func callback(e hitl.Event) (route string, body any, err error) {
	switch e.Type {
	case hitl.EventMessage:
		if e.Message == nil {
			return "", nil, fmt.Errorf("event %s is a message without one", e.ID)
		}
		typ, payload, err := wire(*e.Message)
		if err != nil {
			return "", nil, fmt.Errorf("encode the message of event %s: %w", e.ID, err)
		}
		return "/message-from-agent", agentMessage{e.SessionID, agentID(e.Agent), typ, payload}, nil
	case hitl.EventAssigned:
		return "/agent-assigned", agentAssigned{e.SessionID, agentID(e.Agent)}, nil
	case hitl.EventTransferred:
		if e.Queued || e.Agent == nil {
			return "", nil, nil
		}
		return "/agent-assigned", agentAssigned{e.SessionID, agentID(e.Agent)}, nil
	case hitl.EventStopped:
		return "/stop-hitl", stopHitl{e.SessionID}, nil
	}
	return "", nil, nil
}

func agentID(a *hitl.Agent) string {
	if a == nil || a.ID == "" {
		return "agent"
	}
	return a.ID
}

// wire returns m as a Botpress message type and payload. A file the agent
// sent shows as an image, audio or video message when its content type
// says so; events read back from the outbox have no content type, and the
// file's name or URL tells it instead.
func wire(m hitl.Message) (string, json.RawMessage, error) {
	if m.Type == hitl.TypeFile {
		ct := m.ContentType
		if ct == "" {
			ct = mime.TypeByExtension(path.Ext(m.Title))
		}
		if u, err := url.Parse(m.URL); ct == "" && err == nil {
			ct = mime.TypeByExtension(path.Ext(u.Path))
		}
		for _, t := range []string{hitl.TypeImage, hitl.TypeAudio, hitl.TypeVideo} {
			if strings.HasPrefix(ct, t+"/") {
				m.Type = t
			}
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", nil, err
	}
	var w struct {
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
	}
	err = json.Unmarshal(raw, &w)
	return w.Type, w.Payload, err
}
