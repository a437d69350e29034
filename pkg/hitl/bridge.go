package hitl

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Outbox delivers a session's pending events to the bot. The caller holds
// the session's delivery lease as owner; Flush releases it.
type Outbox interface {
	Flush(ctx context.Context, sessionID, owner string, pending []Event)
}

// DeliveryLease is how long a delivery lease is held before another
// deliverer may take over (a crashed holder is retried by the sweeper).
const DeliveryLease = time.Minute

// Bridge carries a conversation between the bot and a provider's agents.
type Bridge struct {
	Store           SessionStore
	Providers       map[string]Provider // configured providers by name
	DefaultProvider string
	Outbox          Outbox
	Log             *slog.Logger
	Now             func() time.Time
	// IdleTimeout ends sessions that have an idle deadline (deferred
	// sessions) after this long without activity; zero means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration

	refs     boundedCache[Session]  // provider + "\x00" + conversation id → Session (immutable fields only)
	replayed boundedCache[struct{}] // ids of sessions whose held events this process replayed: see replayHeld
}

// NewID returns a random id with the given prefix, e.g. "ses_…".
func NewID(prefix string) string {
	return prefix + "_" + strings.ToLower(rand.Text())
}

func (b *Bridge) now() time.Time {
	if b.Now != nil {
		return b.Now().UTC()
	}
	return time.Now().UTC()
}

// UserDetails is the bot's description of an end user.
type UserDetails struct {
	Name       string `json:"name"`
	Email      string `json:"email"`
	Phone      string `json:"phone"`
	PictureURL string `json:"pictureUrl"`
	ExternalID string `json:"externalId"`
}

// CreateUser validates and stores an end user. No provider is called.
func (b *Bridge) CreateUser(ctx context.Context, in UserDetails) (User, error) {
	u := User{
		ID: NewID("usr"), Name: strings.TrimSpace(in.Name), Email: strings.TrimSpace(in.Email),
		Phone: strings.TrimSpace(in.Phone), PictureURL: in.PictureURL, ExternalID: in.ExternalID,
		CreatedAt: b.now(),
	}
	if err := validateUser(u); err != nil {
		return User{}, err
	}
	if err := b.Store.CreateUser(ctx, u); err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

func validateUser(u User) error {
	fields := []struct{ name, value string }{
		{"name", u.Name}, {"email", u.Email}, {"phone", u.Phone}, {"pictureUrl", u.PictureURL}, {"externalId", u.ExternalID},
	}
	for _, f := range fields {
		if len(f.value) > 512 || !utf8.ValidString(f.value) {
			return Errorf(CodeInvalid, "%s must be valid UTF-8 of at most 512 bytes", f.name)
		}
	}
	if u.Name == "" {
		return Errorf(CodeInvalid, "name is required")
	}
	if u.Email != "" {
		if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
			return Errorf(CodeInvalid, "email is not a valid address")
		}
	}
	if u.PictureURL != "" {
		if err := checkURL(u.PictureURL); err != nil {
			return Errorf(CodeInvalid, "pictureUrl: %v", err)
		}
	}
	return nil
}

// StartRequest asks for an agent for a user.
type StartRequest struct {
	UserID            string
	Provider          string
	Channel           string
	Title             string
	Description       string
	BotConversationID string
	History           []TranscriptEntry
	IdempotencyKey    string
	// IfNoAgent is what to do when no agent accepts chats now: IfNoAgentQueue
	// (the default) opens the conversation anyway, IfNoAgentRefuse answers
	// CodeNoAgent and opens nothing.
	IfNoAgent string
	// Context is structured data shown to the agent: at most MaxContext
	// pairs.
	Context map[string]string
}

// IfNoAgent values.
const (
	IfNoAgentQueue  = "queue"
	IfNoAgentRefuse = "refuse"
)

// Limits on what startHitl accepts.
const (
	MaxHistory     = 200
	MaxContext     = 20
	maxContextKey  = 64
	maxContextVal  = 1024
	maxTitle       = 512
	maxDescription = 4096
	maxIdemKey     = 255
)

// route fills in the default provider and channel of a new session.
func (b *Bridge) route(provider, channel string) (string, string) {
	return cmp.Or(provider, b.DefaultProvider), cmp.Or(channel, ChannelNative)
}

// checkOpening checks what every new session starts with: a configured
// provider, and the title and description its conversation opens with.
func (b *Bridge) checkOpening(provider, title, description string) error {
	switch {
	case !b.HasProvider(provider):
		return Errorf(CodeInvalid, "provider %q is not configured", provider)
	case len(title) > maxTitle || !utf8.ValidString(title):
		return Errorf(CodeInvalid, "title must be valid UTF-8 of at most %d bytes", maxTitle)
	case len(description) > maxDescription || !utf8.ValidString(description):
		return Errorf(CodeInvalid, "description must be valid UTF-8 of at most %d bytes", maxDescription)
	}
	return nil
}

// StartSession opens a provider conversation for the user, posts the
// transcript and records the session. With an idempotency key, one provider
// conversation is opened per key: a repeat returns the first session.
func (b *Bridge) StartSession(ctx context.Context, in StartRequest) (Session, error) {
	in.Provider, in.Channel = b.route(in.Provider, in.Channel)
	if in.UserID == "" {
		return Session{}, Errorf(CodeInvalid, "userId is required")
	}
	if err := b.checkOpening(in.Provider, in.Title, in.Description); err != nil {
		return Session{}, err
	}
	switch {
	case len(in.History) > MaxHistory:
		return Session{}, Errorf(CodeInvalid, "messageHistory has more than %d messages", MaxHistory)
	case len(in.IdempotencyKey) > maxIdemKey:
		return Session{}, Errorf(CodeInvalid, "Idempotency-Key is longer than %d bytes", maxIdemKey)
	case len(in.BotConversationID) > maxTitle:
		return Session{}, Errorf(CodeInvalid, "botConversationId is longer than %d bytes", maxTitle)
	case in.IfNoAgent != "" && in.IfNoAgent != IfNoAgentQueue && in.IfNoAgent != IfNoAgentRefuse:
		return Session{}, Errorf(CodeInvalid, `ifNoAgent must be "queue" or "refuse"`)
	}
	if err := validateContext(in.Context); err != nil {
		return Session{}, err
	}
	user, err := b.Store.GetUser(ctx, in.UserID)
	if errors.Is(err, ErrNotFound) {
		return Session{}, Errorf(CodeNotFound, "user %s not found", in.UserID)
	} else if err != nil {
		return Session{}, fmt.Errorf("start session: %w", err)
	}

	if in.IfNoAgent == IfNoAgentRefuse {
		a, err := b.Availability(ctx, in.Provider)
		if err != nil {
			return Session{}, err
		}
		if !a.Accepting {
			return Session{}, Errorf(CodeNoAgent, "no %s agent accepts chats now", in.Provider)
		}
	}

	now := b.now()
	s := Session{
		ID: NewID("ses"), UserID: user.ID, Provider: in.Provider, Channel: in.Channel,
		BotConversationID: in.BotConversationID, Status: StatusOpening, CreatedAt: now, UpdatedAt: now,
		// Kept until the conversation opens, so an attempt taking over after
		// a crash opens it with the same content.
		Title: in.Title, Description: in.Description, Transcript: fitTranscript(in.History), Context: in.Context,
	}
	first, err := b.Store.CreateSession(ctx, s, in.IdempotencyKey)
	if errors.Is(err, ErrExists) {
		return b.repeatedStart(ctx, first, user, in)
	} else if err != nil {
		return Session{}, fmt.Errorf("start session: %w", err)
	}
	opened, err := b.openAs(ctx, s, user)
	if err != nil {
		b.abandon(s, in.IdempotencyKey)
		return Session{}, err
	}
	return opened, nil
}

func validateContext(c map[string]string) error {
	if len(c) > MaxContext {
		return Errorf(CodeInvalid, "context has more than %d pairs", MaxContext)
	}
	for k, v := range c {
		switch {
		case k == "" || len(k) > maxContextKey || !utf8.ValidString(k):
			return Errorf(CodeInvalid, "context keys must be valid UTF-8 of 1 to %d bytes", maxContextKey)
		case len(v) > maxContextVal || !utf8.ValidString(v):
			return Errorf(CodeInvalid, "context[%q] must be valid UTF-8 of at most %d bytes", k, maxContextVal)
		}
	}
	return nil
}

// fitTranscript keeps the newest entries that fit MaxTranscriptBytes;
// providers show the last few dozen at most.
func fitTranscript(history []TranscriptEntry) []TranscriptEntry {
	n := 0
	for i := len(history) - 1; i >= 0; i-- {
		raw, _ := json.Marshal(history[i]) // a decoded message always encodes
		if n += len(raw); n > MaxTranscriptBytes {
			return history[i+1:]
		}
	}
	return history
}

// openAs opens s's provider conversation as user and records it. If
// another caller recorded the session open first, the session is returned
// as it now stands; a conversation only this call opened is then closed.
func (b *Bridge) openAs(ctx context.Context, s Session, user User) (Session, error) {
	provider, ok := b.Providers[s.Provider]
	if !ok {
		return Session{}, Errorf(CodeConflict, "provider %q of session %s is no longer configured", s.Provider, s.ID)
	}
	opened, err := provider.Open(ctx, OpenRequest{
		SessionID: s.ID, User: user, Title: s.Title, Description: s.Description, Transcript: s.Transcript,
		Context: s.Context, Visitor: s.Visitor,
		KeepVisitor: func(ctx context.Context, v Visitor) error { return b.Store.SaveVisitor(ctx, s.ID, v) },
		KeepConversation: func(ctx context.Context, ids ...string) error {
			return b.Store.KeepConversation(ctx, s.ID, ids, b.now())
		},
	})
	if err != nil {
		return Session{}, providerError(fmt.Sprintf("open %s conversation", s.Provider), err)
	}
	err = b.Store.Opened(ctx, s.ID, opened, b.now())
	if err == nil {
		b.Log.Info("session opened", "session_id", s.ID, "provider", s.Provider, "conversation", opened.ConversationID)
		// Deliveries that arrived while the open call ran were held: they
		// reach the bot now, before the bot hears the session opened.
		s.ProviderConversationID, s.AltConversationIDs, s.Visitor = opened.ConversationID, opened.AltConversationIDs, opened.Visitor
		if err := b.replayHeld(ctx, s); err != nil {
			b.Log.Error("replay held provider events", "session_id", s.ID, "err", err)
		}
		return b.GetSession(ctx, s.ID)
	}
	current, getErr := b.Store.GetSession(ctx, s.ID)
	if getErr == nil && current.ProviderConversationID == opened.ConversationID {
		return current, nil // a concurrent opener resumed the same conversation and recorded it
	}
	orphan := s
	orphan.ProviderConversationID, orphan.AltConversationIDs, orphan.Visitor = opened.ConversationID, opened.AltConversationIDs, opened.Visitor
	if cerr := provider.Close(context.WithoutCancel(ctx), orphan); cerr != nil {
		b.Log.Error("close orphaned provider conversation", "session_id", s.ID, "provider", s.Provider, "err", cerr)
	}
	if ErrorCode(err) == CodeConflict && getErr == nil {
		return current, nil // taken over, or ended, meanwhile
	}
	return Session{}, fmt.Errorf("record opened session %s: %w", s.ID, err)
}

// repeatedStart answers a start whose idempotency key was seen before: the
// first session, or, if its opener died (opening for longer than any open
// takes), the same session opened by this call.
func (b *Bridge) repeatedStart(ctx context.Context, first Session, user User, in StartRequest) (Session, error) {
	switch {
	case first.UserID != in.UserID || first.Provider != in.Provider:
		return Session{}, Errorf(CodeConflict, "Idempotency-Key was used for a different request")
	case first.Status != StatusOpening:
		return first, nil
	case !b.staleOpening(first):
		return Session{}, Errorf(CodeConflict, "a session with this Idempotency-Key is still opening; retry shortly")
	}
	now := b.now()
	bound, err := b.Store.BindUser(ctx, first.ID, user.ID, now, now.Add(-staleOpen))
	if ErrorCode(err) == CodeConflict {
		return Session{}, Errorf(CodeConflict, "a session with this Idempotency-Key is still opening; retry shortly")
	} else if err != nil {
		return Session{}, fmt.Errorf("take over session %s: %w", first.ID, err)
	}
	b.Log.Warn("taking over a session whose opener died", "session_id", first.ID, "provider", first.Provider)
	opened, err := b.openAs(ctx, bound, user)
	if err != nil {
		b.abandon(bound, in.IdempotencyKey)
		return Session{}, err
	}
	return opened, nil
}

// abandon forgets a session that never opened so the bot can retry.
func (b *Bridge) abandon(s Session, idempotencyKey string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Store.DeleteSession(ctx, s.ID, idempotencyKey); err != nil {
		b.Log.Error("delete unopened session", "session_id", s.ID, "err", err)
	}
}

// GetSession returns a session with its hand-off metrics so far.
func (b *Bridge) GetSession(ctx context.Context, id string) (Session, error) {
	s, err := b.Store.GetSession(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Session{}, Errorf(CodeNotFound, "session %s not found", id)
	} else if err != nil {
		return Session{}, err
	}
	m := s.HandoffMetrics(b.now())
	s.Metrics = &m
	return s, nil
}

// SendMessage posts an end-user message to the session's provider
// conversation and returns the provider's message id. A non-empty userID
// must be the session's user.
func (b *Bridge) SendMessage(ctx context.Context, sessionID, userID string, m Message) (string, error) {
	s, err := b.GetSession(ctx, sessionID)
	if err != nil {
		return "", err
	}
	if userID != "" && userID != s.UserID {
		return "", Errorf(CodeInvalid, "userId %s is not the user of session %s", userID, s.ID)
	}
	return b.send(ctx, s, m, false)
}

// send posts m to the provider conversation of s as its end user, or as
// the bot: as the platform's bot where the provider can, else as the end
// user marked with BotPrefix.
func (b *Bridge) send(ctx context.Context, s Session, m Message, asBot bool) (string, error) {
	switch s.Status {
	case StatusClosed:
		return "", Errorf(CodeConflict, "session %s is closed", s.ID)
	case StatusOpening, StatusPending:
		return "", Errorf(CodeConflict, "session %s is still opening", s.ID)
	}
	provider, ok := b.Providers[s.Provider]
	if !ok {
		return "", Errorf(CodeConflict, "provider %q of session %s is no longer configured", s.Provider, s.ID)
	}
	var sent Sent
	var err error
	if bs, ok := provider.(BotSender); ok && asBot {
		sent, err = bs.SendAsBot(ctx, s, m)
	} else {
		if asBot {
			m = Message{Type: TypeText, Text: Clip(BotPrefix+m.Readable(), MaxTextBytes, "")}
		}
		sent, err = provider.Send(ctx, s, m)
	}
	if errors.Is(err, ErrConversationEnded) {
		b.Log.Info("provider conversation ended under a message", "session_id", s.ID, "provider", s.Provider)
		if err := b.close(ctx, s, ReasonAgentClosed); err != nil {
			return "", err
		}
		return "", Errorf(CodeConflict, "session %s has ended at the provider", s.ID)
	} else if err != nil {
		return "", providerError(fmt.Sprintf("send message to %s", s.Provider), err)
	}
	if sent.Visitor != nil {
		if err := b.Store.SaveVisitor(ctx, s.ID, *sent.Visitor); err != nil {
			b.Log.Error("save refreshed visitor", "session_id", s.ID, "err", err)
		}
	}
	b.keepAlive(ctx, s.ID, s.IdleUntil)
	return sent.MessageID, nil
}

// StopSession ends the handoff from the bot's side: the provider
// conversation is closed and hitl.stopped (bot_stopped) is emitted, with
// the bot's note, if any, kept on the session and the event. Stopping a
// closed session changes nothing.
func (b *Bridge) StopSession(ctx context.Context, sessionID, note string) (Session, error) {
	s, err := b.GetSession(ctx, sessionID)
	if err != nil || s.Closed() {
		return s, err
	}
	if s.Status == StatusOpening {
		return Session{}, Errorf(CodeConflict, "session %s is still opening", s.ID)
	}
	if err := b.closeAtProvider(ctx, s); err != nil {
		return Session{}, err
	}
	if err := b.record(ctx, s, closing(s, ReasonBotStopped, note, b.now(), b.now())); err != nil {
		return Session{}, err
	}
	return b.GetSession(ctx, sessionID)
}

// closeAtProvider ends the provider conversation of s, if it has one (a
// deferred session not yet open has none).
func (b *Bridge) closeAtProvider(ctx context.Context, s Session) error {
	provider, ok := b.Providers[s.Provider]
	if !ok || s.ProviderConversationID == "" {
		return nil
	}
	if err := provider.Close(ctx, s); err != nil && !errors.Is(err, ErrConversationEnded) {
		return providerError(fmt.Sprintf("close %s conversation", s.Provider), err)
	}
	return nil
}

// close records the session's end with its hitl.stopped event, which
// carries the hand-off metrics, and delivers it. s must be read in full.
func (b *Bridge) close(ctx context.Context, s Session, reason string) error {
	now := b.now()
	return b.record(ctx, s, closing(s, reason, "", now, now))
}

// closing is the change that ends s for reason at at, with the bot's
// note when it stopped the session.
func closing(s Session, reason, note string, at, occurred time.Time) Change {
	s.ClosedAt, s.Status = at, StatusClosed
	m := s.HandoffMetrics(at)
	return Change{
		Status: StatusClosed, CloseReason: reason, CloseNote: note, At: at,
		Event: Event{ID: EventID(s.ID, "stopped"), Type: EventStopped, OccurredAt: occurred, Reason: reason, Note: note, Metrics: &m},
	}
}

// HoldFor is how long a delivery about a conversation not yet recorded is
// held for the open call that may be creating it.
const HoldFor = 10 * time.Minute

// replayWindow is how long after a conversation is recorded a delivery that
// may have been preceded by held ones replays them first, so they stay in
// order; past it the opener has replayed them or died.
const replayWindow = time.Minute

// HandleProviderEvent applies a verified provider webhook event: the session
// is found by its provider conversation, the change recorded once, and the
// event delivered to the bot. A delivery that may precede the answer of the
// open call (pe.MaybeOpening) is held and replayed once the conversation is
// recorded; other events of conversations the bridge did not start are
// ignored.
func (b *Bridge) HandleProviderEvent(ctx context.Context, pe ProviderEvent) error {
	s, err := b.sessionByConversation(ctx, pe, true)
	switch {
	case errors.Is(err, ErrNotFound) && pe.MaybeOpening:
		return b.hold(ctx, pe)
	case errors.Is(err, ErrNotFound):
		b.Log.Info("ignored event of a conversation we did not start", "provider", pe.Provider, "conversation", pe.ConversationID, "type", pe.Type)
		return nil
	case err != nil:
		return err
	}
	if pe.MaybeOpening && b.now().Sub(s.OpenedAt) < replayWindow && !b.replayed.has(s.ID) {
		if err := b.replayHeld(ctx, s); err != nil {
			return err
		}
	}
	return b.apply(ctx, s, pe)
}

// hold keeps pe for the open call that may be creating its conversation.
// The opener replays held events after recording the conversation; if it
// recorded it between our lookup and the hold, the opener's replay may have
// missed pe, so look again and replay here. Either way pe is applied once
// the conversation is known: Record drops the duplicate.
func (b *Bridge) hold(ctx context.Context, pe ProviderEvent) error {
	if err := b.Store.Hold(ctx, pe, b.now().Add(HoldFor)); err != nil {
		return fmt.Errorf("hold %s event: %w", pe.Type, err)
	}
	s, err := b.sessionByConversation(ctx, pe, false)
	if errors.Is(err, ErrNotFound) {
		b.Log.Info("held event of a conversation not yet recorded", "provider", pe.Provider, "conversation", pe.ConversationID, "type", pe.Type)
		return nil
	} else if err != nil {
		return err
	}
	return b.replayHeld(ctx, s)
}

// replayHeld applies the events held for any id of s's conversation, and
// remembers that it did so that later deliveries of s to this process need
// not read them again.
//
// Why once per process is enough: s is findable (the opener recorded it, or
// a strongly consistent lookup found it) before the Held reads start, at Tq.
// An event held before Tq is read and applied here, in hold order. An event
// held at Th after Tq belongs to a holder whose second look (after Th, so
// after the conversation became findable) finds s and replays it before
// that delivery is answered. So a later delivery that skips the read misses
// only events whose deliveries are still being handled (concurrent with it:
// no order is owed between unanswered deliveries) or whose holder died
// before its second look: that delivery was not answered 2xx, and SalesIQ
// retries it (a minute apart, three times), when it finds s and is applied;
// Record drops any duplicate. A process that has not replayed s itself (a
// fresh container, or one whose memory of it was reset) reads the held
// events once, which also covers an opener that died between recording the
// conversation and its replay.
func (b *Bridge) replayHeld(ctx context.Context, s Session) error {
	if s.ProviderConversationID == "" {
		return nil
	}
	for _, id := range append([]string{s.ProviderConversationID}, s.AltConversationIDs...) {
		held, err := b.Store.Held(ctx, s.Provider, id, b.now())
		if err != nil {
			return err
		}
		for _, pe := range held {
			if err := b.apply(ctx, s, pe); err != nil {
				return fmt.Errorf("replay held %s event: %w", pe.Type, err)
			}
		}
	}
	b.replayed.put(s.ID, struct{}{})
	return nil
}

// apply records the change pe makes to s and delivers it.
func (b *Bridge) apply(ctx context.Context, s Session, pe ProviderEvent) error {
	at := pe.OccurredAt
	if at.IsZero() {
		at = b.now()
	}
	c := Change{At: b.now(), Agent: pe.Agent, Event: Event{
		// The session's own conversation id, whichever alias the delivery
		// used, so a retried delivery maps to the same event id.
		ID: EventID(pe.Provider, s.ProviderConversationID, pe.Key), Type: pe.Type, OccurredAt: at.UTC(),
		Agent: pe.Agent, Message: pe.Message, Reason: pe.Reason, Queued: pe.Queued,
	}}
	switch pe.Type {
	case EventAssigned:
		c.Status = StatusAssigned
	case EventTransferred:
		if pe.Queued {
			c.Status = StatusWaiting
		} else if pe.Agent != nil {
			c.Status = StatusAssigned
		}
	case EventUnassigned:
		if pe.Agent == nil || pe.Agent.ID == "" {
			return fmt.Errorf("unassigned event without the agent who left")
		}
		c.Status, c.Unassign, c.Agent = StatusWaiting, pe.Agent.ID, nil
	case EventQueued:
		q := Queue{}
		if pe.Queue != nil {
			q = *pe.Queue
		}
		c.Status, c.Queue, c.Agent, c.Event.Queue, c.Event.Agent = StatusWaiting, &q, nil, &q, nil
	case EventSeen:
		c.Agent, c.Event.SeenUpTo = nil, pe.SeenUpTo.UTC()
	case EventRated:
		if pe.Rating == nil {
			return fmt.Errorf("rated event without a rating")
		}
		// Platforms ask for the rating as the chat ends: it often comes after.
		c.Agent, c.Event.Agent, c.Event.Rating, c.AfterClose = nil, nil, pe.Rating, true
	case EventStopped:
		full, err := b.Store.GetSession(ctx, s.ID)
		if err != nil {
			return fmt.Errorf("read session %s to close it: %w", s.ID, err)
		}
		c = closing(full, pe.Reason, "", c.At, c.Event.OccurredAt)
	case EventMessage:
		c.Agent, c.AgentReplied = nil, true
	default:
		return fmt.Errorf("unknown provider event type %q", pe.Type)
	}
	return b.record(ctx, s, c)
}

// sessionByConversation finds the session of any conversation id pe names;
// cached answers only when cached is true.
func (b *Bridge) sessionByConversation(ctx context.Context, pe ProviderEvent, cached bool) (Session, error) {
	for _, id := range append([]string{pe.ConversationID}, pe.AltConversationIDs...) {
		key := pe.Provider + "\x00" + id
		if s, ok := b.refs.get(key); ok && cached {
			return s, nil
		}
		s, err := b.Store.SessionByConversation(ctx, pe.Provider, id)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return Session{}, err
		}
		b.refs.put(key, s)
		return s, nil
	}
	return Session{}, ErrNotFound
}

// record applies c to s, and delivers the outbox if this call got the lease.
func (b *Bridge) record(ctx context.Context, s Session, c Change) error {
	c.SessionID = s.ID
	c.Event.SessionID, c.Event.BotConversationID, c.Event.Provider = s.ID, s.BotConversationID, s.Provider
	c.Event.Channel, c.Event.UserID = s.Channel, s.UserID
	owner := NewID("own")
	rec, err := b.Store.Record(ctx, c, owner, b.now().Add(DeliveryLease))
	if err != nil {
		return fmt.Errorf("record %s on session %s: %w", c.Event.Type, s.ID, err)
	}
	if !rec.Applied {
		b.Log.Info("event not applied: a duplicate, a closed session or another agent's leaving", "session_id", s.ID, "event", c.Event.ID, "type", c.Event.Type)
		return nil
	}
	b.Log.Info("event recorded", "session_id", s.ID, "event", c.Event.ID, "type", c.Event.Type)
	if c.Status != StatusClosed {
		b.keepAlive(ctx, s.ID, rec.IdleUntil)
	}
	if rec.Leased {
		b.Outbox.Flush(ctx, s.ID, owner, rec.Pending)
	}
	return nil
}

// RefreshVisitors renews provider visitor credentials that expire before
// horizon, so no hot path ever finds expired ones. It returns how many
// were renewed.
func (b *Bridge) RefreshVisitors(ctx context.Context, horizon time.Duration) (int, error) {
	due, err := b.Store.VisitorsExpiring(ctx, b.now().Add(horizon), 100)
	if err != nil {
		return 0, fmt.Errorf("list expiring visitors: %w", err)
	}
	var errs []error
	n := 0
	for _, d := range due {
		r, ok := b.Providers[d.Provider].(VisitorRefresher)
		if !ok {
			continue
		}
		v, err := r.RefreshVisitor(ctx, d.Visitor)
		if err == nil {
			err = b.Store.SaveVisitor(ctx, d.SessionID, v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("refresh visitor of session %s: %w", d.SessionID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// providerError keeps coded provider errors and wraps the rest as
// provider_error, so a bot sees "the provider failed" and the log the cause.
func providerError(doing string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	return Wrap(CodeProvider, fmt.Errorf("%s: %w", doing, err), "the provider did not accept the request")
}

// maxRefs bounds the Bridge's caches: about 300 bytes an entry.
const maxRefs = 10000

// boundedCache keeps facts that never change once true (a conversation's
// session, a replay done). When full it starts again empty: a miss costs
// one read.
type boundedCache[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

func (c *boundedCache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

func (c *boundedCache[V]) has(key string) bool {
	_, ok := c.get(key)
	return ok
}

func (c *boundedCache[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxRefs {
		c.m = make(map[string]V)
	}
	c.m[key] = v
}
