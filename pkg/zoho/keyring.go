package zoho

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// ConfiguredKeys are the config secret's zoho.webhookPublicKeys, if any.
	ConfiguredKeys []string
	// Store holds the keys the bridge created (WebhookState); nil for none.
	Store  WebhookStore
	AppID  string
	OrgID  string
	Now    func() time.Time
	Logger *slog.Logger
	// Reload is how long stored keys are cached; default 5 minutes. A
	// delivery no key verifies reloads them at most every ReloadRefused
	// (default 30 s), so a key created by another container is found
	// without letting forged deliveries hammer the store.
	Reload, ReloadRefused time.Duration
}

// Verifier verifies and parses SalesIQ webhook deliveries with the keys of
// the config secret and those the bridge created, and completes key
// rotations: once a delivery verifies with the newest stored key, the older
// ones are dropped from the store. It is safe for concurrent use.
type Verifier struct {
	cfg VerifierConfig

	mu       sync.Mutex
	loadedAt time.Time
	state    WebhookState
	parsers  []keyParser // newest stored key first, then the configured ones
}

// keyParser verifies with one key.
type keyParser struct {
	webhooks *Webhooks
	stored   int // index in state.Keys, or -1 for a configured key
}

// NewVerifier returns a Verifier. Keys that do not parse are logged by
// position and skipped.
func NewVerifier(cfg VerifierConfig) *Verifier {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Reload <= 0 {
		cfg.Reload = 5 * time.Minute
	}
	if cfg.ReloadRefused <= 0 {
		cfg.ReloadRefused = 30 * time.Second
	}
	return &Verifier{cfg: cfg}
}

// Parse verifies body's signature with each known key and parses it. Errors
// are those of Webhooks.Parse; a delivery is refused (CodeUnauthenticated)
// until the bridge has a key.
func (v *Verifier) Parse(h http.Header, body []byte) ([]hitl.ProviderEvent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	parsers := v.keys(ctx, v.cfg.Reload)
	evs, idx, err := try(parsers, h, body)
	if hitl.ErrorCode(err) == hitl.CodeUnauthenticated {
		if fresh := v.keys(ctx, v.cfg.ReloadRefused); !sameParsers(fresh, parsers) {
			parsers = fresh
			evs, idx, err = try(parsers, h, body)
		}
	}
	if err == nil && idx > 0 {
		v.promote(ctx, idx)
	}
	return evs, err
}

// Preload reads the stored keys in the background, so that the webhooks
// function reads them at cold start, beside its other start-up work,
// rather than before verifying its first delivery (which waits for this
// read instead of making its own).
func (v *Verifier) Preload() {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		v.keys(ctx, v.cfg.Reload)
	}()
}

// try parses with each parser in turn; it returns the stored key index that
// verified (-1 for a configured key) or the last error.
func try(parsers []keyParser, h http.Header, body []byte) ([]hitl.ProviderEvent, int, error) {
	err := error(hitl.Errorf(hitl.CodeUnauthenticated, "zoho webhook: the bridge has no webhook key yet (connect Zoho SalesIQ)"))
	for _, p := range parsers {
		var evs []hitl.ProviderEvent
		evs, err = p.webhooks.Parse(h, body)
		if hitl.ErrorCode(err) != hitl.CodeUnauthenticated {
			return evs, p.stored, err
		}
	}
	return nil, -1, err
}

func sameParsers(a, b []keyParser) bool {
	return slices.EqualFunc(a, b, func(x, y keyParser) bool { return x.webhooks == y.webhooks })
}

// keys returns the parsers, reloading the stored keys when they are older
// than maxAge.
func (v *Verifier) keys(ctx context.Context, maxAge time.Duration) []keyParser {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.cfg.Now()
	if v.parsers != nil && now.Sub(v.loadedAt) < maxAge {
		return v.parsers
	}
	v.loadedAt = now
	state := v.state
	if v.cfg.Store != nil {
		s, err := v.cfg.Store.LoadWebhook(ctx)
		if err != nil {
			v.cfg.Logger.LogAttrs(ctx, slog.LevelError, "zoho webhook keys not loaded", slog.String("error", err.Error()))
			// Not a fresh load: the next delivery reads the store again
			// (a failed Preload must not hide a stored key for maxAge).
			v.loadedAt = time.Time{}
		} else {
			state = s
		}
	}
	if v.parsers != nil && slices.EqualFunc(state.Keys, v.state.Keys, func(a, b WebhookKey) bool { return a.ID == b.ID }) {
		return v.parsers
	}
	v.state = state
	v.parsers = []keyParser{}
	for i := len(state.Keys) - 1; i >= 0; i-- {
		v.add(ctx, state.Keys[i].PublicKey, i, "stored key "+state.Keys[i].ID)
	}
	for i, k := range v.cfg.ConfiguredKeys {
		v.add(ctx, k, -1, "zoho.webhookPublicKeys["+strconv.Itoa(i)+"]")
	}
	return v.parsers
}

func (v *Verifier) add(ctx context.Context, key string, stored int, name string) {
	w, err := NewWebhooks(WebhookConfig{PublicKeys: []string{key}, AppID: v.cfg.AppID, OrgID: v.cfg.OrgID})
	if err != nil {
		v.cfg.Logger.LogAttrs(ctx, slog.LevelError, "zoho webhook key skipped", slog.String("key", name), slog.String("error", err.Error()))
		return
	}
	v.parsers = append(v.parsers, keyParser{webhooks: w, stored: stored})
}

// promote drops the stored keys older than the one at idx, which just
// verified a delivery: SalesIQ signs with it now.
func (v *Verifier) promote(ctx context.Context, idx int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cfg.Store == nil || idx >= len(v.state.Keys) {
		return
	}
	next := WebhookState{WebhookID: v.state.WebhookID, Keys: slices.Clone(v.state.Keys[idx:])}
	if err := v.cfg.Store.SaveWebhook(ctx, next); err != nil {
		v.cfg.Logger.LogAttrs(ctx, slog.LevelError, "zoho old webhook key not dropped", slog.String("error", err.Error()))
		return
	}
	v.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "zoho webhook key rotation completed",
		slog.String("webhook_id", next.WebhookID), slog.String("key_id", next.Keys[0].ID), slog.Int("dropped", idx))
	v.state = next
	v.parsers = nil // rebuilt at the next delivery
}
