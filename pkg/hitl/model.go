package hitl

import (
	"log/slog"
	"math"
	"time"
)

// Provider names.
const (
	LiveChat = "livechat"
	Zoho     = "zoho"
)

// ChannelNative is the channel of the native bot API. A session's channel
// names the callback contract its events are delivered with; other bot
// contracts declare their own (botpress.Channel).
const ChannelNative = "native"

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
	StatusPending  Status = "pending"  // a deferred session not yet open: no end user until the first message
	StatusOpening  Status = "opening"  // recorded, provider conversation not yet open
	StatusWaiting  Status = "waiting"  // open at the provider, no agent yet
	StatusAssigned Status = "assigned" // an agent has it
	StatusClosed   Status = "closed"   // ended by either side; accepts no more changes
)

// Agent is a human agent at a provider.
type Agent struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	AvatarURL string `json:"avatarUrl,omitempty"`
}

// Queue is where a queued conversation stands, as far as the platform says.
type Queue struct {
	Position             int `json:"position,omitempty"`
	EstimatedWaitSeconds int `json:"estimatedWaitSeconds,omitempty"`
}

// Rating is the end user's rating of a conversation on the platform's
// scale: Score from 0 (LiveChat "bad") or 1 up to OutOf.
type Rating struct {
	Score   int    `json:"score"`
	OutOf   int    `json:"outOf"`
	Comment string `json:"comment,omitempty"`
}

// Metrics measure a hand-off, in seconds; a step that has not happened is
// absent.
type Metrics struct {
	TimeToAssignmentSeconds *float64 `json:"timeToAssignmentSeconds,omitempty"`
	TimeToFirstReplySeconds *float64 `json:"timeToFirstReplySeconds,omitempty"`
	// Abandoned: the session ended before an agent took it.
	Abandoned       bool     `json:"abandoned"`
	DurationSeconds *float64 `json:"durationSeconds,omitempty"`
}

// Availability is whether a platform's agents for the bridge take chats now.
type Availability struct {
	Accepting bool `json:"accepting"`
	// Agents accepting chats now, when the platform tells.
	Agents int `json:"agents"`
}

// Visitor is the end user's identity at the provider, kept so messages are
// sent as the same person. ID is public; Credentials are the provider's
// own encoding of whatever lets it act as the visitor (LiveChat: a customer
// token and the cookies that renew it): the domain and the stores keep
// them without reading them, never log them and never return them.
type Visitor struct {
	ID          string      `json:"id,omitempty"`
	Credentials Credentials `json:"-"`
	// CredentialsExpireAt is when the provider wants the credentials
	// renewed (VisitorRefresher); zero when they never expire.
	CredentialsExpireAt time.Time `json:"-"`
}

// Credentials are a provider's opaque encoding of a visitor's secrets.
// They print and log as "[redacted]", so that a visitor in a log line or
// an error message shows its id only.
type Credentials []byte

func (Credentials) String() string { return "[redacted]" }

// GoString keeps %#v from printing the bytes too.
func (Credentials) GoString() string { return "[redacted]" }

// LogValue keeps slog from printing the bytes.
func (Credentials) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Session is one handoff of one end user to a provider's agents.
type Session struct {
	ID                     string `json:"id"`
	UserID                 string `json:"userId"`
	Provider               string `json:"provider"`
	Channel                string `json:"channel"`
	ProviderConversationID string `json:"providerConversationId,omitempty"`
	// AltConversationIDs are other ids of the same provider conversation
	// (SalesIQ's visitor conversation id); webhooks may use any.
	AltConversationIDs []string `json:"altConversationIds,omitempty"`
	BotConversationID  string   `json:"botConversationId,omitempty"`
	Status             Status   `json:"status"`
	Agent              *Agent   `json:"agent,omitempty"`
	// Queue is the latest queue position while the session waits.
	Queue       *Queue  `json:"queue,omitempty"`
	Visitor     Visitor `json:"-"`
	CloseReason string  `json:"closeReason,omitempty"`
	// CloseNote is the bot's note when it stopped the session.
	CloseNote string    `json:"closeNote,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// OpenedAt is when the provider conversation became known.
	OpenedAt  time.Time `json:"openedAt,omitzero"`
	UpdatedAt time.Time `json:"updatedAt"`
	ClosedAt  time.Time `json:"closedAt,omitzero"`
	// AssignedAt is when an agent first took the session; FirstReplyAt when
	// an agent first wrote.
	AssignedAt   time.Time `json:"assignedAt,omitzero"`
	FirstReplyAt time.Time `json:"firstReplyAt,omitzero"`
	// Metrics are derived from the times above when the session is read.
	Metrics *Metrics `json:"metrics,omitempty"`

	// Title and Description are kept for deferred sessions: the
	// provider conversation is opened with them at the user's first message.
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Context is structured data for the agent, kept until the session opens.
	Context map[string]string `json:"-"`
	// Transcript is what a deferred session will show the agent first (bot
	// messages sent before the user wrote); stores drop it once it opens.
	Transcript []TranscriptEntry `json:"-"`
	// IdleUntil, when set, is when the session ends for inactivity unless
	// either side acts before (deferred sessions).
	IdleUntil time.Time `json:"idleUntil,omitzero"`
}

// Closed reports whether the session has ended.
func (s Session) Closed() bool { return s.Status == StatusClosed }

// HandoffMetrics measures s as of now (its close time once closed).
func (s Session) HandoffMetrics(now time.Time) Metrics {
	end := now
	if !s.ClosedAt.IsZero() {
		end = s.ClosedAt
	}
	since := func(t time.Time) *float64 {
		if t.IsZero() {
			return nil
		}
		d := math.Round(t.Sub(s.CreatedAt).Seconds()*1000) / 1000
		return &d
	}
	return Metrics{
		TimeToAssignmentSeconds: since(s.AssignedAt),
		TimeToFirstReplySeconds: since(s.FirstReplyAt),
		Abandoned:               s.Closed() && s.AssignedAt.IsZero(),
		DurationSeconds:         since(end),
	}
}
