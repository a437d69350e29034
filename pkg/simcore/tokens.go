package simcore

import (
	"sync"
	"time"
)

// Tokens are the bearer tokens a simulator issued, each for a subject (a
// customer, a bot; "" for none in particular) until it expires or is
// revoked. Its methods are safe for concurrent use.
type Tokens struct {
	now    func() time.Time
	mu     sync.Mutex
	issued map[string]token
}

type token struct {
	subject string
	expires time.Time
}

// NewTokens returns an empty set of tokens on the clock now.
func NewTokens(now func() time.Time) *Tokens {
	return &Tokens{now: now, issued: map[string]token{}}
}

// Issue records tok, for subject, good for ttl from now.
func (t *Tokens) Issue(tok, subject string, ttl time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.issued[tok] = token{subject: subject, expires: t.now().Add(ttl)}
}

// Subject returns whom tok was issued for; false when tok was never
// issued, is revoked or has expired.
func (t *Tokens) Subject(tok string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	it, ok := t.issued[tok]
	if !ok || !t.now().Before(it.expires) {
		return "", false
	}
	return it.subject, true
}

// Revoke makes tok good no more.
func (t *Tokens) Revoke(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.issued, tok)
}

// ExpireAll makes every token issued so far expire now.
func (t *Tokens) ExpireAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for k, it := range t.issued {
		it.expires = now
		t.issued[k] = it
	}
}
