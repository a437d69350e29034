package zoho

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// TokenStore keeps the integration's current token where every container
// can read it (Secrets Manager in AWS, a file locally).
type TokenStore interface {
	// Load returns the saved token, or the zero Token when none is saved.
	Load(ctx context.Context) (Token, error)
	Save(ctx context.Context, t Token) error
}

// AcquireLease takes the named lease for owner until until if it is free or
// expired at now, with a conditional write; hitl.Store.AcquireLease fits.
type AcquireLease func(ctx context.Context, name, owner string, now, until time.Time) (bool, error)

// TokensConfig configures Tokens.
type TokensConfig struct {
	OAuth *OAuth
	Store TokenStore
	// Lease counts token requests and makes refreshes single across
	// containers; nil when this process is the only one (local runs).
	Lease AcquireLease
	// RefreshToken is the configured refresh token. One saved in the store
	// (by the OAuth callback) takes precedence.
	RefreshToken string
	Now          func() time.Time
	Logger       *slog.Logger
	// RefreshBefore makes Refresh renew a token that expires within it;
	// default 15 minutes.
	RefreshBefore time.Duration
	// LeaseWait is how long a refresh holds the cross-container refresh
	// lease, and how long a container that finds it held waits for the
	// holder's token to reach the store; default 2 s.
	LeaseWait time.Duration
	// RetryDelay is the pause after a failed token answer before the next
	// attempt, doubled after each further failure up to a minute; default
	// 1 s.
	RetryDelay time.Duration
}

// Tokens hands the current access token to hot paths from memory and
// renews it: on schedule (Refresh), when it expires, and when Zoho refuses
// it (Invalidate).
//
// Zoho issues at most 10 access tokens per refresh token per 10 minutes
// (https://www.zoho.com/crm/developer/docs/api/v7/token-validity.html, and
// https://help.zoho.com/portal/en/community/topic/kaizen-43-tokens-and-limitations
// for the HTTP-200 "Access Denied" answer past it). The
// budget is kept across all containers by ten leases,
// zoho-token-slot-0 … zoho-token-slot-9, each taken for 10 minutes by the
// token request it allows: a request needs a free slot. Within that budget a
// failed or refused token answer (HTTP-200 {"error":…} bodies included) is
// retried with backoff, starting at RetryDelay, so that trouble heals in
// seconds. A renewal runs once per container at a time (callers that need
// one meanwhile wait for its result) and once across containers (the
// zoho-token-refresh lease, held for LeaseWait: the holder calls Zoho and
// saves the token, the others wait for it in the store for as long).
// Whenever no token can be had — the budget is spent, the last answer
// failed and the backoff has not passed, or another container's renewal
// produced nothing — callers get hitl.CodeUnavailable with RetryAfter at
// once. It is safe for concurrent use.
type Tokens struct {
	oauth         *OAuth
	store         TokenStore
	lease         AcquireLease
	refreshToken  string
	now           func() time.Time
	log           *slog.Logger
	refreshBefore time.Duration
	leaseWait     time.Duration
	retryDelay    time.Duration
	owner         string

	mu      sync.Mutex
	current Token
	// storedUntil is the latest expiry of a token this process read from
	// or saved to the store. The stored token expires no earlier: every
	// save stores a token minted later. A scheduled Refresh that finds it
	// far enough away has nothing to do and reads nothing.
	storedUntil time.Time
	flight      *flight
	// preload closes when the read Preload started has ended; nil when
	// none is under way.
	preload chan struct{}
	// failures counts token answers that failed in a row; no token
	// request is made before retryAt.
	failures int
	retryAt  time.Time
}

// flight is one renewal in progress; done closes when it ends.
type flight struct {
	done    chan struct{}
	tok     Token
	err     error // no usable token
	saveErr error // a new token that could not be saved
}

// renewal says what a flight must achieve.
type renewal struct {
	reason string        // for the logs: expired, invalidated, scheduled, forced
	bad    string        // the token callers found wanting; "" for none
	margin time.Duration // a stored token valid this long is taken as is
	force  bool          // refresh even if the stored token is valid
}

const (
	refreshLease = "zoho-token-refresh"
	slotLease    = "zoho-token-slot-"
	// tokenSlots tokens per slotSpan is Zoho's limit per refresh token.
	tokenSlots = 10
	slotSpan   = 10 * time.Minute
	// budgetRetryAfter is what callers are told when every slot is taken:
	// the oldest frees within slotSpan, usually much sooner.
	budgetRetryAfter = time.Minute
	maxRetryDelay    = time.Minute
	// useMargin keeps hot paths from starting a call with a token about to
	// expire.
	useMargin = time.Minute
)

// NewTokens validates cfg and returns Tokens. Nothing is loaded until the
// first use.
func NewTokens(cfg TokensConfig) (*Tokens, error) {
	if cfg.OAuth == nil || cfg.Store == nil {
		return nil, errors.New("zoho tokens config: OAuth and Store are required")
	}
	owner := make([]byte, 8)
	rand.Read(owner)
	t := &Tokens{
		oauth:         cfg.OAuth,
		store:         cfg.Store,
		lease:         cfg.Lease,
		refreshToken:  cfg.RefreshToken,
		now:           cfg.Now,
		log:           cfg.Logger,
		refreshBefore: cfg.RefreshBefore,
		leaseWait:     cfg.LeaseWait,
		retryDelay:    cfg.RetryDelay,
		owner:         "tokens-" + hex.EncodeToString(owner),
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	if t.refreshBefore <= 0 {
		t.refreshBefore = 15 * time.Minute
	}
	if t.leaseWait <= 0 {
		t.leaseWait = 2 * time.Second
	}
	if t.retryDelay <= 0 {
		t.retryDelay = time.Second
	}
	if t.lease == nil {
		t.lease = memoryLease()
	}
	return t, nil
}

// memoryLease is the leases of a process that runs alone.
func memoryLease() AcquireLease {
	var mu sync.Mutex
	held := map[string]time.Time{}
	return func(_ context.Context, name, _ string, now, until time.Time) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if now.Before(held[name]) {
			return false, nil
		}
		held[name] = until
		return true, nil
	}
}

// Preload reads the stored token in the background and keeps it if it is
// valid, so that a function whose events call Zoho reads it at cold start,
// beside its other start-up work, rather than before its first call. It
// never mints a token: AccessToken waits for the read, then renews as
// usual if it found nothing usable.
func (t *Tokens) Preload() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.preload != nil || t.flight != nil {
		return
	}
	done := make(chan struct{})
	t.preload = done
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stored, err := t.load(ctx)
		t.mu.Lock()
		if err == nil && stored.valid(t.now(), useMargin) && !t.current.valid(t.now(), useMargin) {
			t.current = stored
		}
		t.preload = nil
		t.mu.Unlock()
		close(done)
	}()
}

// AccessToken returns a token valid for at least a minute: from memory, or
// else from the store, or else freshly minted.
func (t *Tokens) AccessToken(ctx context.Context) (string, error) {
	t.mu.Lock()
	if t.current.valid(t.now(), useMargin) {
		tok := t.current.AccessToken
		t.mu.Unlock()
		return tok, nil
	}
	if done := t.preload; done != nil {
		t.mu.Unlock()
		select {
		case <-done:
			return t.AccessToken(ctx)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	f := t.startLocked(renewal{reason: "expired", bad: t.current.AccessToken, margin: useMargin})
	t.mu.Unlock()
	tok, err := wait(ctx, f)
	return tok.AccessToken, err
}

// Invalidate reports that Zoho refused bad and returns its replacement.
// Callers holding the same bad token share one renewal. If the renewal
// hands back bad itself (a concurrent load of the store that had not seen
// it refused), one more renewal is tried; callers then retry their request
// once.
func (t *Tokens) Invalidate(ctx context.Context, bad string) (string, error) {
	for range 2 {
		t.mu.Lock()
		if t.current.AccessToken != bad && t.current.valid(t.now(), useMargin) {
			tok := t.current.AccessToken
			t.mu.Unlock()
			return tok, nil
		}
		f := t.startLocked(renewal{reason: "invalidated", bad: bad, margin: useMargin})
		t.mu.Unlock()
		tok, err := wait(ctx, f)
		if err != nil {
			return "", err
		}
		if tok.AccessToken != bad {
			return tok.AccessToken, nil
		}
	}
	return "", hitl.Errorf(hitl.CodeProvider, "Zoho keeps refusing the access token")
}

// Refresh is the scheduled renewal: it mints a token when the stored one
// expires within RefreshBefore, or always with force (still within Zoho's
// budget). The store is read only when the stored token, as this process
// last saw it, expires within RefreshBefore (and again before minting, so
// another container's renewal is found). It reports a token that could
// not be saved.
func (t *Tokens) Refresh(ctx context.Context, force bool) error {
	reason := "scheduled"
	if force {
		reason = "forced"
	}
	for {
		t.mu.Lock()
		if !force && t.storedUntil.After(t.now().Add(t.refreshBefore)) {
			t.mu.Unlock()
			return nil
		}
		if t.flight == nil {
			f := t.startLocked(renewal{reason: reason, margin: t.refreshBefore, force: force})
			t.mu.Unlock()
			if _, err := wait(ctx, f); err != nil {
				return err
			}
			return f.saveErr
		}
		f := t.flight
		t.mu.Unlock()
		// A renewal for a hot path is under way; run ours after it.
		if _, err := wait(ctx, f); ctx.Err() != nil {
			return err
		}
	}
}

// startLocked joins the renewal in progress or starts r. Callers hold t.mu.
func (t *Tokens) startLocked(r renewal) *flight {
	if t.flight != nil {
		return t.flight
	}
	f := &flight{done: make(chan struct{})}
	t.flight = f
	go t.run(f, r)
	return f
}

func wait(ctx context.Context, f *flight) (Token, error) {
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return Token{}, ctx.Err()
	}
}

// run performs a renewal. It is detached from the callers' contexts: one
// caller giving up must not fail the others waiting for it.
func (t *Tokens) run(f *flight, r renewal) {
	ctx, cancel := context.WithTimeout(context.Background(), t.leaseWait+t.oauth.timeout+5*time.Second)
	defer cancel()
	f.tok, f.err = t.renew(ctx, f, r)
	t.mu.Lock()
	t.flight = nil
	if f.err == nil {
		t.current = f.tok
	}
	t.mu.Unlock()
	close(f.done)
}

func (t *Tokens) renew(ctx context.Context, f *flight, r renewal) (Token, error) {
	stored, err := t.load(ctx)
	if err != nil {
		return Token{}, err
	}
	if r.force {
		r.bad = stored.AccessToken
	}
	if stored.AccessToken != r.bad && stored.valid(t.now(), r.margin) {
		return stored, nil
	}
	now := t.now()
	t.mu.Lock()
	retryAt := t.retryAt
	t.mu.Unlock()
	if now.Before(retryAt) {
		return Token{}, unavailable(retryAt.Sub(now), nil)
	}
	won, err := t.lease(ctx, refreshLease, t.owner, now, now.Add(t.leaseWait))
	if err != nil {
		return Token{}, fmt.Errorf("take zoho token lease: %w", err)
	}
	if !won {
		return t.awaitOther(ctx, r)
	}
	if ok, err := t.takeSlot(ctx, now); err != nil || !ok {
		if err == nil {
			t.log.LogAttrs(ctx, slog.LevelWarn, "zoho access token refresh deferred",
				slog.String("reason", r.reason), slog.String("outcome", "budget_spent"))
			t.backOff(now, budgetRetryAfter)
			err = unavailable(budgetRetryAfter, errors.New("zoho token budget spent: 10 tokens in the last 10 minutes"))
		}
		return Token{}, err
	}
	refreshToken := stored.RefreshToken
	if refreshToken == "" {
		refreshToken = t.refreshToken
	}
	tok, err := t.oauth.Refresh(ctx, refreshToken)
	if err != nil {
		delay := t.failed(now, err)
		t.log.LogAttrs(ctx, slog.LevelError, "zoho access token refresh failed",
			slog.String("reason", r.reason), slog.String("error", err.Error()), slog.Duration("retry_in", delay))
		return Token{}, unavailable(delay, fmt.Errorf("refresh zoho access token: %w", err))
	}
	t.mu.Lock()
	t.failures, t.retryAt = 0, time.Time{}
	t.mu.Unlock()
	tok.APIDomain = cmp.Or(tok.APIDomain, stored.APIDomain)
	if err := t.store.Save(ctx, tok); err != nil {
		// The token works: use it here, and let the caller of Refresh know.
		f.saveErr = fmt.Errorf("save zoho token: %w", err)
		t.log.LogAttrs(ctx, slog.LevelError, "zoho access token not saved", slog.String("error", err.Error()))
	} else {
		t.sawStored(tok)
	}
	t.log.LogAttrs(ctx, slog.LevelInfo, "zoho access token refreshed",
		slog.String("reason", r.reason), slog.Time("expires_at", tok.ExpiresAt))
	return tok, nil
}

// takeSlot takes one of the token budget's slots for slotSpan.
func (t *Tokens) takeSlot(ctx context.Context, now time.Time) (bool, error) {
	for i := range tokenSlots {
		ok, err := t.lease(ctx, slotLease+strconv.Itoa(i), t.owner, now, now.Add(slotSpan))
		if err != nil {
			return false, fmt.Errorf("take zoho token slot: %w", err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// failed records a failed token answer and returns the backoff before the
// next attempt: RetryDelay doubled per failure in a row, up to a minute;
// at least a minute when Zoho said too many requests, since its budget
// was spent by someone else too.
func (t *Tokens) failed(now time.Time, err error) time.Duration {
	t.mu.Lock()
	t.failures++
	n := t.failures
	t.mu.Unlock()
	delay := min(t.retryDelay<<min(n-1, 16), maxRetryDelay)
	var oe *OAuthError
	if errors.As(err, &oe) && oe.TooManyRequests() {
		delay = maxRetryDelay
	}
	t.backOff(now, delay)
	return delay
}

func (t *Tokens) backOff(now time.Time, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.retryAt = now.Add(d)
}

// unavailable is the error callers get while no token can be had.
func unavailable(after time.Duration, cause error) error {
	return &hitl.Error{Code: hitl.CodeUnavailable, Message: "no Zoho access token can be had right now; try again shortly",
		Err: cause, RetryAfter: max(after, time.Second)}
}

// awaitOther waits, at most LeaseWait, for the lease holder's token to
// reach the store.
func (t *Tokens) awaitOther(ctx context.Context, r renewal) (Token, error) {
	poll := min(250*time.Millisecond, t.leaseWait/10)
	deadline := time.NewTimer(t.leaseWait)
	defer deadline.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			t.log.LogAttrs(ctx, slog.LevelWarn, "zoho access token refresh deferred",
				slog.String("reason", r.reason), slog.String("outcome", "lease_held"))
			return Token{}, unavailable(t.leaseWait, errors.New("another container's zoho token refresh stored no token"))
		case <-ctx.Done():
			return Token{}, ctx.Err()
		case <-tick.C:
			stored, err := t.load(ctx)
			if err != nil {
				return Token{}, err
			}
			if stored.AccessToken != r.bad && stored.valid(t.now(), useMargin) {
				return stored, nil
			}
		}
	}
}

// load reads the stored token.
func (t *Tokens) load(ctx context.Context) (Token, error) {
	stored, err := t.store.Load(ctx)
	if err != nil {
		return Token{}, fmt.Errorf("load zoho token: %w", err)
	}
	t.sawStored(stored)
	return stored, nil
}

// sawStored notes that the store held tok.
func (t *Tokens) sawStored(tok Token) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tok.AccessToken != "" && tok.ExpiresAt.After(t.storedUntil) {
		t.storedUntil = tok.ExpiresAt
	}
}
