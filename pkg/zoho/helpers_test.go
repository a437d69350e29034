package zoho_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/media"
	"github.com/hitl-bridge/hitl-bridge/pkg/media/mediatest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

const redirectURL = "https://bridge.example.com/oauth/zoho/callback"

// newClock is a settable clock shared by the simulator and the code under
// test.
func newClock() *simcore.Clock {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return simcore.NewClock(func() time.Time { return start })
}

// memStore is a TokenStore in memory, shared by "containers" in tests.
type memStore struct {
	mu      sync.Mutex
	tok     zoho.Token
	loads   int
	saves   int
	saveErr error
}

func (s *memStore) Load(context.Context) (zoho.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	return s.tok, nil
}

func (s *memStore) Save(_ context.Context, t zoho.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves++
	if s.saveErr != nil {
		return s.saveErr
	}
	s.tok = t
	return nil
}

func (s *memStore) token() zoho.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok
}

func (s *memStore) counts() (loads, saves int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads, s.saves
}

// leases behaves as hitl.Store.AcquireLease: a conditional write on one
// item per name.
type leases struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (l *leases) Acquire(_ context.Context, name, _ string, now, until time.Time) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.until == nil {
		l.until = map[string]time.Time{}
	}
	if now.Before(l.until[name]) {
		return false, nil
	}
	l.until[name] = until
	return true, nil
}

// fixture is a simulator with the package's parts wired to it, as the
// bridge wires them.
type fixture struct {
	sim    *zohotest.Server
	clock  *simcore.Clock
	store  *memStore
	lease  *leases
	oauth  *zoho.OAuth
	tokens *zoho.Tokens
	client *zoho.Client
	media  *httptest.Server // mediatest's
	logs   *simcore.Logs
}

type option func(*fixtureConfig)

type fixtureConfig struct {
	sim     zohotest.Options
	fetcher *media.Fetcher
}

func withSim(o zohotest.Options) option { return func(c *fixtureConfig) { c.sim = o } }

func withFetcher(f *media.Fetcher) option { return func(c *fixtureConfig) { c.fetcher = f } }

func newFixture(t *testing.T, opts ...option) *fixture {
	t.Helper()
	cfg := fixtureConfig{fetcher: media.NewFetcher(media.Config{AllowPrivate: true, MaxBytes: 64 << 20})}
	for _, o := range opts {
		o(&cfg)
	}
	f := &fixture{clock: newClock(), store: &memStore{}, lease: &leases{}, logs: &simcore.Logs{}}
	cfg.sim.Now = f.clock.Now
	if cfg.sim.RetrySpacing == 0 {
		cfg.sim.RetrySpacing = time.Millisecond
	}
	f.sim = zohotest.New(cfg.sim)
	t.Cleanup(f.sim.Close)
	f.media = mediatest.NewServer()
	t.Cleanup(f.media.Close)
	f.oauth = f.newOAuth(t)
	f.tokens = f.newTokens(t, f.store)
	o := f.sim.Options()
	c, err := zoho.NewClient(zoho.Config{
		Region:       "us",
		SalesIQURL:   f.sim.SalesIQURL(),
		ScreenName:   o.ScreenName,
		AppID:        o.AppID,
		DepartmentID: o.DepartmentID,
		Tokens:       f.tokens,
		Media:        cfg.fetcher,
		Logger:       f.logs.Logger(),
		RetryDelay:   time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	return f
}

func (f *fixture) newOAuth(t *testing.T) *zoho.OAuth {
	t.Helper()
	o := f.sim.Options()
	oauth, err := zoho.NewOAuth(zoho.OAuthConfig{
		Region:       "us",
		AccountsURL:  f.sim.AccountsURL(),
		ClientID:     o.ClientID,
		ClientSecret: o.ClientSecret,
		RedirectURL:  redirectURL,
		Now:          f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return oauth
}

// newTokens is one container's token manager over store.
func (f *fixture) newTokens(t *testing.T, store zoho.TokenStore) *zoho.Tokens {
	t.Helper()
	tokens, err := zoho.NewTokens(zoho.TokensConfig{
		OAuth:        f.oauth,
		Store:        store,
		Lease:        f.lease.Acquire,
		RefreshToken: f.sim.Options().RefreshToken,
		Now:          f.clock.Now,
		Logger:       f.logs.Logger(),
		LeaseWait:    100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// assertNoSecrets checks that text carries no credential: the client
// secret, the refresh tokens, and any access token the store held.
func (f *fixture) assertNoSecrets(t *testing.T, text string, more ...string) {
	t.Helper()
	o := f.sim.Options()
	secrets := append([]string{o.ClientSecret, o.RefreshToken, f.store.token().AccessToken, f.store.token().RefreshToken}, more...)
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("a secret leaked: %q in %s", s, text)
		}
	}
}

// accessToken is the access token f's Tokens hands out now.
func (f *fixture) accessToken(t *testing.T) string {
	t.Helper()
	tok, err := f.tokens.AccessToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
