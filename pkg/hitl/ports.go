package hitl

import (
	"context"
	"time"
)

// Provider is a live-agent platform. Implementations translate to the
// provider's API; they keep no per-session state of their own.
type Provider interface {
	// Open starts a conversation as the end user with the handoff details and
	// returns the provider's conversation id and the visitor identity used.
	Open(ctx context.Context, req OpenRequest) (Opened, error)
	// Send posts an end-user message to the conversation. If the provider
	// refreshed the visitor's credentials on the way, the new visitor is
	// returned so the caller can keep it.
	Send(ctx context.Context, s Session, m Message) (Sent, error)
	// Close ends the provider conversation. Closing an ended one is not an error.
	Close(ctx context.Context, s Session) error
}

// AvailabilityChecker is implemented by providers that can tell whether
// their agents for the bridge accept chats now.
type AvailabilityChecker interface {
	Availability(ctx context.Context) (Availability, error)
}

// TypingNotifier is implemented by providers that can show the agent that
// the end user is typing; text is a preview of what they type, possibly "".
type TypingNotifier interface {
	Typing(ctx context.Context, s Session, text string) error
}

// SeenMarker is implemented by providers that can tell the agent that the
// end user has seen the conversation's messages up to upTo.
type SeenMarker interface {
	MarkSeen(ctx context.Context, s Session, upTo time.Time) error
}

// BotSender is implemented by providers that can show a bot-authored
// message as the bot's own (a bot agent), not as the end user's.
type BotSender interface {
	SendAsBot(ctx context.Context, s Session, m Message) (Sent, error)
}

// VisitorRefresher is implemented by providers whose visitor credentials
// expire (LiveChat customer tokens). RefreshVisitor renews v's credentials
// and returns the visitor to keep, with their next expiry.
type VisitorRefresher interface {
	RefreshVisitor(ctx context.Context, v Visitor) (Visitor, error)
}

// OpenRequest is what a provider needs to open a conversation.
type OpenRequest struct {
	SessionID   string
	User        User
	Title       string
	Description string
	Transcript  []TranscriptEntry
	// Context is structured data for the agent (at most MaxContext pairs);
	// providers show it as fields where they can, as text otherwise.
	Context map[string]string
	// Visitor is set when a previous attempt for the same session already
	// created the provider identity; providers reuse it and, where they
	// can, the conversation that attempt opened.
	Visitor Visitor
	// KeepVisitor is called as soon as a new provider identity exists,
	// before the conversation is opened, so that an attempt taking over
	// after a crash finds it in Visitor.
	KeepVisitor func(ctx context.Context, v Visitor) error
	// KeepConversation, when set, is called as soon as the provider
	// conversation exists and before any call that makes the platform route
	// it (LiveChat: before transfer_chat), so that webhooks the routing
	// causes find the session even before Open returns. The first id is the
	// conversation's; the others are aliases webhooks may use.
	KeepConversation func(ctx context.Context, conversationIDs ...string) error
}

// TranscriptEntry is one message of the conversation before the handoff.
type TranscriptEntry struct {
	From    string  `json:"from"` // "user" or "bot"
	Message Message `json:"message"`
}

// Opened is the result of Provider.Open.
type Opened struct {
	ConversationID string
	// AltConversationIDs are other ids of the same conversation that
	// webhooks may carry; the session is findable by each.
	AltConversationIDs []string
	Visitor            Visitor
}

// Sent is the result of Provider.Send.
type Sent struct {
	MessageID string
	Visitor   *Visitor // non-nil when the provider refreshed the credentials
}

// ExpiringVisitor is a session's visitor whose credentials are due for
// renewal, with what renewing them needs to know of the session.
type ExpiringVisitor struct {
	SessionID string
	Provider  string
	Visitor   Visitor
}

// Change is a state change of a session and the event it causes, applied
// atomically by Store.Record.
type Change struct {
	SessionID string
	// Status, when set, is the session's new status. A closed session
	// accepts no change.
	Status      Status
	Agent       *Agent
	CloseReason string
	CloseNote   string
	// Unassign, when set, applies the change only if this agent is the
	// session's agent, and removes the agent.
	Unassign string
	// Queue, when set, is the session's new queue position. A change to
	// StatusAssigned clears it and, the first time, sets AssignedAt.
	Queue *Queue
	// AgentReplied sets the session's FirstReplyAt, the first time.
	AgentReplied bool
	// AfterClose lets the change be recorded on a closed session too (a
	// rating the end user gives after the end); it must change no status.
	AfterClose bool
	Event      Event
	At         time.Time
}

// DedupeSpan is how long a session remembers an event id whatever the
// number of events in between: longer than any provider retries a delivery
// (SalesIQ refuses deliveries older than 10 minutes).
const DedupeSpan = 15 * time.Minute

// Recorded is the outcome of Store.Record.
type Recorded struct {
	// Applied is false when the change was a duplicate or the session was
	// already closed; nothing was written then.
	Applied bool
	// Leased is true when the caller now holds the session's delivery lease;
	// Pending then lists the undelivered events in order, oldest first.
	// Events read back from a store carry the session's Channel and UserID.
	Leased  bool
	Pending []Event
	// IdleUntil is the session's idle deadline after the change, when
	// Applied; zero if the session has none.
	IdleUntil time.Time
}

// Retry describes a failed delivery attempt.
type Retry struct {
	At       time.Time // next attempt
	Attempts int       // failed attempts so far, this one included
	Since    time.Time // first failure of the current run of failures
}

// DeadLetter is an event that could not be delivered within the retry window.
type DeadLetter struct {
	Event  Event     `json:"event"`
	DeadAt time.Time `json:"deadAt"`
}

// MaxTranscriptBytes bounds the JSON of a deferred session's transcript,
// which stores keep inside the session.
const MaxTranscriptBytes = 64 << 10

// Store keeps users, sessions and each session's outbox of undelivered
// events: every method a store has. Every implementation passes the
// contract suite in pkg/store/storetest; each consumer depends only on the
// part it calls (the Bridge on SessionStore, the delivery dispatcher and
// the operator status on interfaces of their own, scheduled work on
// AcquireLease).
type Store interface {
	SessionStore

	// Claim takes the delivery lease of a session whose lease is free or
	// expired (its end not after now) and returns its pending events; ok is
	// false if the lease is held by anyone, this owner included, if nothing
	// is pending, or if there is no such session.
	Claim(ctx context.Context, sessionID, owner string, now, leaseUntil time.Time) (pending []Event, ok bool, err error)
	// Ack removes the first delivered events of the outbox and releases the
	// lease. With retry set, the rest stays due at retry.At; without, the
	// run of failures ends. It reports whether events remain (appended
	// meanwhile, or not delivered). It fails with CodeConflict if owner does
	// not hold the lease, CodeInvalid if delivered exceeds what is pending.
	Ack(ctx context.Context, sessionID, owner string, delivered int, retry *Retry) (more bool, err error)
	// RetryState returns the outbox's current run of failures.
	RetryState(ctx context.Context, sessionID string) (Retry, error)
	// DueOutboxes lists sessions whose outbox is due for an attempt at now,
	// soonest first: not empty, and its lease ended or its retry time come.
	DueOutboxes(ctx context.Context, now time.Time, limit int) ([]string, error)
	// Bury moves the session's pending events to its dead letters and
	// releases the lease (owner must hold it, else CodeConflict). The run of
	// failures ends.
	Bury(ctx context.Context, sessionID, owner string, at time.Time) error
	// DeadLetters lists dead letters, oldest first.
	DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error)
	// Replay moves a session's dead letters back into its outbox, after any
	// pending events, due now, and returns how many.
	Replay(ctx context.Context, sessionID string, now time.Time) (int, error)

	// AcquireLease takes the named lease for owner until until, if it is free
	// or expired; it is how scheduled work runs once across containers.
	AcquireLease(ctx context.Context, name, owner string, now, until time.Time) (bool, error)

	// OpenSessions lists sessions not closed, newest first: the operator's
	// view; its cost grows with the open sessions.
	OpenSessions(ctx context.Context, limit int) ([]Session, error)

	// Setting returns the value saved under name, nil when there is none.
	// Settings are small documents the bridge keeps for itself and that are
	// no secrets: the SalesIQ webhook and its public keys, when each
	// provider's last webhook arrived.
	Setting(ctx context.Context, name string) ([]byte, error)
	// SaveSetting saves value under name, replacing what was there.
	SaveSetting(ctx context.Context, name string, value []byte) error
}

// SessionStore is what the Bridge calls: users, sessions, their
// conversations and recording events.
type SessionStore interface {
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)

	// CreateSession stores s, transcript and idle deadline included;
	// ErrExists if its id is taken. With an idempotency key, a second call
	// with the same key stores nothing and returns the first session with
	// ErrExists.
	CreateSession(ctx context.Context, s Session, idempotencyKey string) (Session, error)
	GetSession(ctx context.Context, id string) (Session, error)
	// SessionByConversation finds a session by any id of its provider
	// conversation. The session carries only the fields fixed once it opened
	// (ID, UserID, Provider, Channel, BotConversationID,
	// ProviderConversationID, AltConversationIDs, CreatedAt, OpenedAt,
	// Visitor.ID), so callers may cache it; GetSession has the rest.
	SessionByConversation(ctx context.Context, provider, conversationID string) (Session, error)
	// KeepConversation makes an opening session findable by its provider
	// conversation (ids[0]) and its aliases (ids[1:]) before the open call has
	// returned; the session stays opening and may record events. Repeating it
	// with the same conversation changes nothing; CodeConflict if the session
	// is no longer opening with another conversation, or an id belongs to
	// another session.
	KeepConversation(ctx context.Context, id string, ids []string, at time.Time) error
	// Opened records an opening session's provider conversation and visitor,
	// makes it findable by the conversation and each alias, drops its
	// transcript, and sets it waiting unless an early event has already moved
	// it on (assigned). Repeating it with the same conversation stores the
	// visitor again and changes nothing else; it fails with CodeConflict if
	// the session is closed or has another conversation, or if an id belongs
	// to another session.
	Opened(ctx context.Context, id string, o Opened, at time.Time) error
	// Hold keeps a provider event of a conversation no session is known for
	// yet, under pe.Provider and pe.ConversationID, until until. Holding an
	// event with the same key again changes nothing.
	Hold(ctx context.Context, pe ProviderEvent, until time.Time) error
	// Held returns the events held for a conversation that have not expired
	// at now, in the order they were first held. They stay held until they
	// expire: replaying them twice is harmless, Record drops duplicates.
	Held(ctx context.Context, provider, conversationID string, now time.Time) ([]ProviderEvent, error)
	// SaveVisitor replaces the session's visitor: its id, credentials and
	// their expiry. A closed session keeps its visitor: saving to it stores
	// nothing and is no error.
	SaveVisitor(ctx context.Context, id string, v Visitor) error
	// DeleteSession removes a session that never opened, with its
	// idempotency key if the key names it and any conversation it kept, so a
	// retry can try again. A missing session is no error; an opened one is
	// kept (CodeConflict).
	DeleteSession(ctx context.Context, id, idempotencyKey string) error
	// VisitorsExpiring lists the visitors of sessions not closed whose
	// credentials expire before t, soonest first; cost grows with the
	// result, not the table (the DynamoDB store reads only the session
	// items, not their delivery items).
	VisitorsExpiring(ctx context.Context, t time.Time, limit int) ([]ExpiringVisitor, error)

	// Record applies c and appends c.Event to the session's outbox in one
	// atomic step, unless the session is closed (and c not AfterClose),
	// already recorded an event with the same id (every id recorded within
	// DedupeSpan is remembered, whatever the number of events in between),
	// or c.Unassign names an agent other than
	// the session's. In the
	// same step it takes the session's delivery lease for owner until
	// leaseUntil if no one holds it; a held lease, even expired, is left to
	// Claim. Owners must be unique per delivery attempt. A missing session
	// is ErrNotFound; a store may refuse with CodeRateLimited when the
	// session's outbox is full.
	Record(ctx context.Context, c Change, owner string, leaseUntil time.Time) (Recorded, error)
	// BindUser gives a deferred session not yet open (StatusPending) its
	// end user and sets it opening, so that exactly one caller opens its provider conversation; a session
	// opening since before staleBefore (its opener died) is taken over the
	// same way. It returns the session as bound, transcript included;
	// CodeConflict if the session is in any other state.
	BindUser(ctx context.Context, id, userID string, at, staleBefore time.Time) (Session, error)
	// UnbindUser returns a session that BindUser bound at boundAt, and that
	// is still opening, to pending without a user, so a later message can
	// try again. In any other case it changes nothing and is no error.
	UnbindUser(ctx context.Context, id string, boundAt time.Time) error
	// AppendTranscript adds e to the transcript of a deferred session not
	// yet open.
	// CodeConflict once it is bound or open; CodeRateLimited if the
	// transcript's JSON would pass MaxTranscriptBytes.
	AppendTranscript(ctx context.Context, id string, e TranscriptEntry, at time.Time) error
	// ExtendIdle moves the idle deadline of a session to until. A closed
	// session keeps its own: nothing is stored and it is no error.
	ExtendIdle(ctx context.Context, id string, until time.Time) error
	// IdleSessions lists sessions not closed whose idle deadline is at or
	// before now, soonest first; cost grows with the result, not the table.
	IdleSessions(ctx context.Context, now time.Time, limit int) ([]Session, error)
}
