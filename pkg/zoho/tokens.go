package zoho

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
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
	// Lease makes refreshes single across containers; nil when this
	// process is the only one (local runs).
	Lease AcquireLease
	// RefreshToken is the configured refresh token. One saved in the store
	// (by the OAuth callback) takes precedence.
	RefreshToken string
	Now          func() time.Time
	Logger       *slog.Logger
	// RefreshBefore makes Refresh renew a token that expires within it;
	// default 15 minutes.
	RefreshBefore time.Duration
	// MinInterval is the least time between two refreshes, across all
	// containers; default 1 minute, which keeps below Zoho's 10 tokens per
	// refresh token per 10 minutes.
	MinInterval time.Duration
	// LeaseWait bounds how long a container that lost the lease waits for
	// the winner's token to appear in the store; default 5 s.
	LeaseWait time.Duration
}

// Tokens hands the current access token to hot paths from memory and
// renews it: on schedule (Refresh), when it expires, and when Zoho refuses
// it (Invalidate). A renewal runs once per container at a time — callers
// that need one meanwhile wait for its result — and once across containers
// per MinInterval: the container that takes the lease calls Zoho and saves
// the token, the others read it from the store. The lease is not released:
// it is what spaces refreshes out, so a token refused within MinInterval of
// the last refresh is replaced only once the interval has passed; callers
// meanwhile get hitl.ErrRateLimited. It is safe for concurrent use.
type Tokens struct {
	oauth         *OAuth
	store         TokenStore
	lease         AcquireLease
	refreshToken  string
	now           func() time.Time
	log           *slog.Logger
	refreshBefore time.Duration
	minInterval   time.Duration
	leaseWait     time.Duration
	owner         string

	mu      sync.Mutex
	current Token
	flight  *flight
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
	leaseName = "zoho-token-refresh"
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
		minInterval:   cfg.MinInterval,
		leaseWait:     cfg.LeaseWait,
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
	if t.minInterval <= 0 {
		t.minInterval = time.Minute
	}
	if t.leaseWait <= 0 {
		t.leaseWait = 5 * time.Second
	}
	if t.lease == nil {
		t.lease = memoryLease()
	}
	return t, nil
}

// memoryLease is the lease of a process that runs alone.
func memoryLease() AcquireLease {
	var mu sync.Mutex
	var held time.Time
	return func(_ context.Context, _, _ string, now, until time.Time) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if now.Before(held) {
			return false, nil
		}
		held = until
		return true, nil
	}
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
// expires within RefreshBefore, or always with force (still at most once
// per MinInterval across containers). It reports a token that could not be
// saved.
func (t *Tokens) Refresh(ctx context.Context, force bool) error {
	reason := "scheduled"
	if force {
		reason = "forced"
	}
	for {
		t.mu.Lock()
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
	stored, err := t.store.Load(ctx)
	if err != nil {
		return Token{}, fmt.Errorf("load zoho token: %w", err)
	}
	if r.force {
		r.bad = stored.AccessToken
	}
	if stored.AccessToken != r.bad && stored.valid(t.now(), r.margin) {
		return stored, nil
	}
	refreshToken := stored.RefreshToken
	if refreshToken == "" {
		refreshToken = t.refreshToken
	}
	now := t.now()
	won, err := t.lease(ctx, leaseName, t.owner, now, now.Add(t.minInterval))
	if err != nil {
		return Token{}, fmt.Errorf("take zoho token lease: %w", err)
	}
	if !won {
		return t.awaitOther(ctx, r)
	}
	tok, err := t.oauth.Refresh(ctx, refreshToken)
	if err != nil {
		t.log.LogAttrs(ctx, slog.LevelError, "zoho access token refresh failed",
			slog.String("reason", r.reason), slog.String("error", err.Error()))
		var oe *OAuthError
		if errors.As(err, &oe) && oe.TooManyRequests() {
			return Token{}, fmt.Errorf("refresh zoho access token: %w (%w)", hitl.ErrRateLimited, err)
		}
		return Token{}, hitl.Wrap(hitl.CodeProvider, fmt.Errorf("refresh zoho access token: %w", err), "Zoho did not issue an access token")
	}
	tok.APIDomain = firstNonEmpty(tok.APIDomain, stored.APIDomain)
	if err := t.store.Save(ctx, tok); err != nil {
		// The token works: use it here, and let the caller of Refresh know.
		f.saveErr = fmt.Errorf("save zoho token: %w", err)
		t.log.LogAttrs(ctx, slog.LevelError, "zoho access token not saved", slog.String("error", err.Error()))
	}
	t.log.LogAttrs(ctx, slog.LevelInfo, "zoho access token refreshed",
		slog.String("reason", r.reason), slog.Time("expires_at", tok.ExpiresAt))
	return tok, nil
}

// awaitOther waits, bounded, for the lease holder's token to reach the
// store.
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
			return Token{}, fmt.Errorf("zoho token was refreshed less than %s ago and no newer one is stored: %w", t.minInterval, hitl.ErrRateLimited)
		case <-ctx.Done():
			return Token{}, ctx.Err()
		case <-tick.C:
			stored, err := t.store.Load(ctx)
			if err != nil {
				return Token{}, fmt.Errorf("load zoho token: %w", err)
			}
			if stored.AccessToken != r.bad && stored.valid(t.now(), useMargin) {
				return stored, nil
			}
		}
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
