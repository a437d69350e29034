package hitl

import (
	"context"
	"fmt"
	"time"
)

// Availability tells whether the agents of provider (the default when
// empty) accept chats now.
func (b *Bridge) Availability(ctx context.Context, provider string) (Availability, error) {
	if provider == "" {
		provider = b.DefaultProvider
	}
	p, ok := b.Providers[provider]
	if !ok {
		return Availability{}, Errorf(CodeInvalid, "provider %q is not configured", provider)
	}
	c, ok := p.(AvailabilityChecker)
	if !ok {
		return Availability{}, Errorf(CodeInvalid, "provider %q cannot tell whether agents are available", provider)
	}
	a, err := c.Availability(ctx)
	if err != nil {
		return Availability{}, providerError(fmt.Sprintf("read %s availability", provider), err)
	}
	return a, nil
}

// Typing tells the agent that the session's end user is typing, with a
// preview of the text when given. forwarded is false when the provider
// cannot show it.
func (b *Bridge) Typing(ctx context.Context, sessionID, text string) (forwarded bool, err error) {
	if len(text) > MaxTextBytes {
		return false, Errorf(CodeInvalid, "text is longer than %d bytes", MaxTextBytes)
	}
	return b.presence(ctx, sessionID, func(p Provider, s Session) (bool, error) {
		t, ok := p.(TypingNotifier)
		if !ok {
			return false, nil
		}
		return true, t.Typing(ctx, s, text)
	})
}

// MarkSeen tells the agent that the end user has seen the conversation up
// to upTo (now when zero). forwarded is false when the provider cannot
// show it.
func (b *Bridge) MarkSeen(ctx context.Context, sessionID string, upTo time.Time) (forwarded bool, err error) {
	if upTo.IsZero() || upTo.After(b.now()) {
		upTo = b.now()
	}
	return b.presence(ctx, sessionID, func(p Provider, s Session) (bool, error) {
		m, ok := p.(SeenMarker)
		if !ok {
			return false, nil
		}
		return true, m.MarkSeen(ctx, s, upTo)
	})
}

// presence runs a best-effort signal of the end user's for an open session.
func (b *Bridge) presence(ctx context.Context, sessionID string, signal func(Provider, Session) (bool, error)) (bool, error) {
	s, err := b.GetSession(ctx, sessionID)
	if err != nil {
		return false, err
	}
	switch s.Status {
	case StatusClosed:
		return false, Errorf(CodeConflict, "session %s is closed", s.ID)
	case StatusOpening, StatusPending:
		return false, Errorf(CodeConflict, "session %s is still opening", s.ID)
	}
	p, ok := b.Providers[s.Provider]
	if !ok {
		return false, Errorf(CodeConflict, "provider %q of session %s is no longer configured", s.Provider, s.ID)
	}
	forwarded, err := signal(p, s)
	if err != nil {
		return false, providerError(fmt.Sprintf("signal %s", s.Provider), err)
	}
	return forwarded, nil
}
