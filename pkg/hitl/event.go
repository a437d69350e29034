package hitl

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"time"
)

// EventType names what happened, as the bot receives it.
type EventType string

const (
	EventAssigned    EventType = "hitl.assigned"
	EventMessage     EventType = "hitl.message"
	EventTransferred EventType = "hitl.transferred"
	EventStopped     EventType = "hitl.stopped"
	// EventUnassigned: the assigned agent left or was removed; the session
	// waits for an agent again. Agent is the one who left.
	EventUnassigned EventType = "hitl.unassigned"
	// EventQueued: the platform queued the conversation; Queue says where
	// it stands when the platform tells. Sent again when that changes.
	EventQueued EventType = "hitl.queued"
	// EventSeen: the agent has seen the end user's messages up to SeenUpTo.
	EventSeen EventType = "hitl.seen"
	// EventRated: the end user rated the conversation.
	EventRated EventType = "hitl.rated"
)

// Reasons a session stopped.
const (
	ReasonAgentClosed = "agent_closed"
	ReasonMissed      = "missed"
	ReasonBotStopped  = "bot_stopped"
	ReasonTimeout     = "timeout"
)

// Event is a callback to the bot. Its JSON form is the native callback body.
type Event struct {
	ID                string    `json:"id"`
	Type              EventType `json:"type"`
	SessionID         string    `json:"sessionId"`
	BotConversationID string    `json:"botConversationId"`
	Provider          string    `json:"provider"`
	OccurredAt        time.Time `json:"occurredAt"`
	Agent             *Agent    `json:"agent,omitempty"`
	Message           *Message  `json:"message,omitempty"`
	Reason            string    `json:"reason,omitempty"`
	// Note is the bot's own words on stopping (hitl.stopped, bot_stopped).
	Note string `json:"note,omitempty"`
	// Queued is set on hitl.transferred when the chat waits in a queue
	// rather than going to a named agent.
	Queued bool `json:"queued,omitempty"`
	// Queue is where the conversation stands in the queue (hitl.queued).
	Queue *Queue `json:"queue,omitempty"`
	// SeenUpTo is how far the agent has read (hitl.seen).
	SeenUpTo time.Time `json:"seenUpTo,omitzero"`
	// Rating is the end user's rating (hitl.rated).
	Rating *Rating `json:"rating,omitempty"`
	// Metrics measure the hand-off (hitl.stopped).
	Metrics *Metrics `json:"metrics,omitempty"`
	// Channel and UserID route the event; they are not part of the body.
	Channel string `json:"-"`
	UserID  string `json:"-"`
}

// EventID derives a stable event id from what identifies the happening at
// its source, so a provider's retried delivery maps to the same id.
func EventID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "evt_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16]))
}

// ProviderEvent is a parsed, verified provider webhook that concerns a
// conversation: what the provider packages hand to the Bridge.
type ProviderEvent struct {
	Provider       string
	ConversationID string
	// AltConversationIDs are other ids the delivery gives for the same
	// conversation (SalesIQ: the visitor conversation id beside the
	// numeric id); the session is found by any of them.
	AltConversationIDs []string `json:",omitempty"`
	// MaybeOpening marks a delivery that can concern a conversation whose
	// open call has not answered yet (SalesIQ assigns an operator while the
	// open call runs): when no session is found it is held for a while and
	// replayed once the conversation is recorded, instead of being dropped.
	MaybeOpening bool `json:",omitempty"`
	// Key identifies the happening at the provider (a message id, or the
	// action and its ids) and is the same on every retried delivery.
	Key        string
	Type       EventType
	OccurredAt time.Time
	Agent      *Agent
	Message    *Message
	Reason     string
	Queued     bool
	Queue      *Queue    `json:",omitempty"`
	SeenUpTo   time.Time `json:",omitzero"`
	Rating     *Rating   `json:",omitempty"`
}
