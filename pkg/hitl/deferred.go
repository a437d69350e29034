package hitl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Deferred sessions: sessions that open at the end user's first message.
//
// A bot contract that names no end user and carries no history when it
// asks for a handoff (Botpress's, in pkg/botpress) records a deferred
// session with its title and description; its status is StatusPending
// until it opens. Bot messages sent meanwhile are kept as its transcript.
// The end user's first message binds the user to the session with one
// conditional write, so concurrent first messages open one provider
// conversation: the winner opens it as that user, with the title,
// description and transcript, and the others wait for it. Bot messages
// sent once it is open reach the agent as the visitor's, marked BotPrefix.
//
// Deferred sessions also end after IdleTimeout without activity from
// either side: the deadline is kept on the session and moved forward only
// when more than half of it is used, so a busy conversation costs one
// write per half timeout, not one per message.

// DefaultIdleTimeout is how long a deferred session may stay inactive.
const DefaultIdleTimeout = 30 * time.Minute

// BotPrefix marks bot-authored messages the agent receives through the
// visitor once the conversation is open.
const BotPrefix = "Bot: "

// How long a message waits for another caller's open, and after how long an
// open is presumed dead and taken over.
const (
	openWait  = 10 * time.Second
	openPoll  = 100 * time.Millisecond
	staleOpen = 2 * time.Minute
	// maxSteps bounds the state changes a message follows before it is
	// sent (pending → opening → open, with a failed open in between).
	maxSteps = 5
)

func (b *Bridge) idleTimeout() time.Duration {
	if b.IdleTimeout > 0 {
		return b.IdleTimeout
	}
	return DefaultIdleTimeout
}

// DeferredRequest asks for a deferred session: one that opens at the end
// user's first message.
type DeferredRequest struct {
	Provider    string
	Channel     string
	Title       string
	Description string
	// Transcript is shown to the agent first, before the bot messages that
	// arrive before it opens.
	Transcript []TranscriptEntry
}

// HasProvider reports whether a provider of that name is configured.
func (b *Bridge) HasProvider(name string) bool {
	_, ok := b.Providers[name]
	return ok
}

// CreateDeferred records a deferred session: without an end user and
// without calling the provider. Its idle deadline starts now.
func (b *Bridge) CreateDeferred(ctx context.Context, in DeferredRequest) (Session, error) {
	in.Provider, in.Channel = b.route(in.Provider, in.Channel)
	if err := b.checkOpening(in.Provider, in.Title, in.Description); err != nil {
		return Session{}, err
	}
	switch {
	case len(in.Transcript) > MaxHistory:
		return Session{}, Errorf(CodeInvalid, "messages has more than %d entries", MaxHistory)
	case transcriptBytes(in.Transcript) > MaxTranscriptBytes:
		return Session{}, Errorf(CodeInvalid, "messages are larger than %d bytes", MaxTranscriptBytes)
	}
	now := b.now()
	s := Session{
		ID: NewID("ses"), Provider: in.Provider, Channel: in.Channel, Status: StatusPending,
		Title: in.Title, Description: in.Description, Transcript: in.Transcript,
		CreatedAt: now, UpdatedAt: now, IdleUntil: now.Add(b.idleTimeout()),
	}
	if _, err := b.Store.CreateSession(ctx, s, ""); err != nil {
		return Session{}, fmt.Errorf("create deferred session: %w", err)
	}
	b.Log.Info("session deferred", "session_id", s.ID, "provider", s.Provider, "channel", s.Channel)
	return s, nil
}

func transcriptBytes(entries []TranscriptEntry) int {
	n := 0
	for _, e := range entries {
		raw, _ := json.Marshal(e) // a decoded message always encodes
		n += len(raw)
	}
	return n
}

// SendUserMessage is SendMessage for a deferred session of channel: the
// first message opens the provider conversation as userID.
func (b *Bridge) SendUserMessage(ctx context.Context, channel, sessionID, userID string, m Message) (string, error) {
	s, err := b.sessionOf(ctx, channel, sessionID)
	if err != nil {
		return "", err
	}
	for range maxSteps {
		switch {
		case s.Status == StatusPending || b.staleOpening(s):
			s, err = b.bindAndOpen(ctx, s, userID)
		case s.Status == StatusOpening:
			s, err = b.awaitOpen(ctx, s)
		default:
			if s.UserID != userID {
				return "", Errorf(CodeInvalid, "user %s is not the user of session %s", userID, s.ID)
			}
			return b.send(ctx, s, m, false)
		}
		if err != nil {
			return "", err
		}
	}
	return "", Errorf(CodeConflict, "session %s is still opening; retry shortly", s.ID)
}

// SendBotMessage delivers a bot-authored message to the agent: kept in the
// transcript until the deferred session opens, sent as the bot once it is open
// (see send).
func (b *Bridge) SendBotMessage(ctx context.Context, channel, sessionID string, m Message) (string, error) {
	s, err := b.sessionOf(ctx, channel, sessionID)
	if err != nil {
		return "", err
	}
	for range maxSteps {
		switch s.Status {
		case StatusPending:
			err = b.Store.AppendTranscript(ctx, s.ID, TranscriptEntry{From: "bot", Message: m}, b.now())
			if err == nil {
				b.keepAlive(ctx, s.ID, s.IdleUntil)
				return "", nil
			}
			if ErrorCode(err) != CodeConflict {
				return "", fmt.Errorf("keep bot message of session %s: %w", s.ID, err)
			}
			s, err = b.GetSession(ctx, s.ID) // bound meanwhile
		case StatusOpening:
			s, err = b.awaitOpen(ctx, s)
		default:
			return b.send(ctx, s, m, true)
		}
		if err != nil {
			return "", err
		}
	}
	return "", Errorf(CodeConflict, "session %s is still opening; retry shortly", s.ID)
}

// StopChannelSession is StopSession for a session of channel; found is
// false, with no error, when there is no such session.
func (b *Bridge) StopChannelSession(ctx context.Context, channel, sessionID string) (found bool, err error) {
	s, err := b.sessionOf(ctx, channel, sessionID)
	if ErrorCode(err) == CodeNotFound {
		return false, nil
	} else if err != nil {
		return false, err
	}
	_, err = b.StopSession(ctx, s.ID, "")
	return true, err
}

// sessionOf returns a session of channel; sessions of other channels are
// not found, so one contract cannot act on another's sessions.
func (b *Bridge) sessionOf(ctx context.Context, channel, id string) (Session, error) {
	s, err := b.GetSession(ctx, id)
	if err == nil && s.Channel != channel {
		err = Errorf(CodeNotFound, "session %s not found", id)
	}
	return s, err
}

func (b *Bridge) staleOpening(s Session) bool {
	return s.Status == StatusOpening && s.UpdatedAt.Before(b.now().Add(-staleOpen))
}

// bindAndOpen binds userID to the unopened (or abandoned opening) session s
// and opens its provider conversation. If another caller bound it first,
// it returns the session as it now is.
func (b *Bridge) bindAndOpen(ctx context.Context, s Session, userID string) (Session, error) {
	user, err := b.Store.GetUser(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return Session{}, Errorf(CodeNotFound, "user %s not found", userID)
	} else if err != nil {
		return Session{}, fmt.Errorf("open session %s: %w", s.ID, err)
	}
	// The idle deadline must outlast the open, or a sweep could end the
	// session under it.
	b.keepAlive(ctx, s.ID, s.IdleUntil)
	now := b.now()
	bound, err := b.Store.BindUser(ctx, s.ID, user.ID, now, now.Add(-staleOpen))
	if ErrorCode(err) == CodeConflict {
		return b.GetSession(ctx, s.ID)
	} else if err != nil {
		return Session{}, fmt.Errorf("bind user to session %s: %w", s.ID, err)
	}
	opened, err := b.openAs(ctx, bound, user)
	if err != nil {
		b.unbind(s.ID, now)
		return Session{}, err
	}
	return opened, nil
}

// unbind returns a session whose open failed to StatusPending.
func (b *Bridge) unbind(id string, boundAt time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Store.UnbindUser(ctx, id, boundAt); err != nil {
		b.Log.Error("return session to pending", "session_id", id, "err", err)
	}
}

// awaitOpen waits while another caller opens s, and returns it once it is
// no longer opening (or the opener is presumed dead).
func (b *Bridge) awaitOpen(ctx context.Context, s Session) (Session, error) {
	wait := time.NewTimer(openWait)
	defer wait.Stop()
	for s.Status == StatusOpening && !b.staleOpening(s) {
		select {
		case <-ctx.Done():
			return Session{}, ctx.Err()
		case <-wait.C:
			return Session{}, Errorf(CodeConflict, "session %s is still opening; retry shortly", s.ID)
		case <-time.After(openPoll):
		}
		var err error
		if s, err = b.GetSession(ctx, s.ID); err != nil {
			return Session{}, err
		}
	}
	return s, nil
}

// keepAlive moves the idle deadline of a session forward once more than
// half of it is used; sessions without one are left alone.
func (b *Bridge) keepAlive(ctx context.Context, id string, idleUntil time.Time) {
	if idleUntil.IsZero() {
		return
	}
	now, timeout := b.now(), b.idleTimeout()
	if idleUntil.Sub(now) > timeout/2 {
		return
	}
	if err := b.Store.ExtendIdle(ctx, id, now.Add(timeout)); err != nil {
		b.Log.Error("extend idle deadline", "session_id", id, "err", err)
	}
}

// ExpireIdle ends the sessions whose idle deadline has passed: their
// provider conversation is closed and hitl.stopped (timeout) is emitted.
// The scheduled function calls it; it returns how many sessions ended.
func (b *Bridge) ExpireIdle(ctx context.Context) (int, error) {
	due, err := b.Store.IdleSessions(ctx, b.now(), 100)
	if err != nil {
		return 0, fmt.Errorf("list idle sessions: %w", err)
	}
	var errs []error
	n := 0
	for _, s := range due {
		if s.Status == StatusOpening && !b.staleOpening(s) {
			continue // its first message is being handled now
		}
		err := b.closeAtProvider(ctx, s)
		if err == nil {
			err = b.close(ctx, s, ReasonTimeout)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("end idle session %s: %w", s.ID, err))
			continue
		}
		b.Log.Info("session ended for inactivity", "session_id", s.ID, "provider", s.Provider)
		n++
	}
	return n, errors.Join(errs...)
}
