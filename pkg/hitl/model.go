package hitl

import "time"

// Provider names.
const (
	LiveChat = "livechat"
	Zoho     = "zoho"
)

// Channel names: which callback contract a session's events are delivered with.
const (
	ChannelNative   = "native"
	ChannelBotpress = "botpress"
)

// User is an end user the bot registered.
type User struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Email      string    `json:"email,omitempty"`
	Phone      string    `json:"phone,omitempty"`
	PictureURL string    `json:"pictureUrl,omitempty"`
	ExternalID string    `json:"externalId,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
}

// Status is where a session is in its life.
type Status string

const (
	StatusPending  Status = "pending"  // recorded without an end user; opens at the user's first message (Botpress)
	StatusOpening  Status = "opening"  // recorded, provider conversation not yet open
	StatusWaiting  Status = "waiting"  // open at the provider, no agent yet
	StatusAssigned Status = "assigned" // an agent has it
	StatusClosed   Status = "closed"   // ended by either side; accepts no more changes
)

// Agent is a human agent at a provider.
type Agent struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Visitor is the end user's identity at the provider, kept so messages are
// sent as the same person. Token and Cookies are credentials: never logged,
// never returned by the API.
type Visitor struct {
	ID             string    `json:"id,omitempty"`
	Token          string    `json:"-"`
	TokenExpiresAt time.Time `json:"-"`
	Cookies        []string  `json:"-"` // "name=value" pairs that let the provider refresh the token
}

// Session is one handoff of one end user to a provider's agents.
type Session struct {
	ID                     string `json:"id"`
	UserID                 string `json:"userId"`
	Provider               string `json:"provider"`
	Channel                string `json:"channel"`
	ProviderConversationID string `json:"providerConversationId,omitempty"`
	// AltConversationIDs are other ids of the same provider conversation
	// (SalesIQ's visitor conversation id); webhooks may use any.
	AltConversationIDs []string  `json:"altConversationIds,omitempty"`
	BotConversationID  string    `json:"botConversationId,omitempty"`
	Status             Status    `json:"status"`
	Agent              *Agent    `json:"agent,omitempty"`
	Visitor            Visitor   `json:"-"`
	CloseReason        string    `json:"closeReason,omitempty"`
	CreatedAt          time.Time `json:"createdAt"`
	// OpenedAt is when the provider conversation became known.
	OpenedAt  time.Time `json:"openedAt,omitzero"`
	UpdatedAt time.Time `json:"updatedAt"`
	ClosedAt  time.Time `json:"closedAt,omitzero"`

	// Title and Description are kept for sessions that open lazily: the
	// provider conversation is opened with them at the user's first message.
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Transcript is what a pending session will show the agent first (bot
	// messages sent before the user wrote); stores drop it once it opens.
	Transcript []TranscriptEntry `json:"-"`
	// IdleUntil, when set, is when the session ends for inactivity unless
	// either side acts before (Botpress sessions).
	IdleUntil time.Time `json:"idleUntil,omitzero"`
}

// Closed reports whether the session has ended.
func (s Session) Closed() bool { return s.Status == StatusClosed }
