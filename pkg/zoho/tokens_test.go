package zoho_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

func TestAccessTokenFromMemoryThenStore(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	stored := zoho.Token{AccessToken: "stored-token", ExpiresAt: f.clock.Now().Add(30 * time.Minute)}
	f.store.Save(ctx, stored)

	for range 3 {
		tok, err := f.tokens.AccessToken(ctx)
		if err != nil || tok != "stored-token" {
			t.Fatalf("token %q, %v", tok, err)
		}
	}
	if loads, _ := f.store.counts(); loads != 1 || f.sim.TokenCalls() != 0 {
		t.Errorf("%d store loads, %d token calls; want 1 and 0", loads, f.sim.TokenCalls())
	}

	// Close to expiry, the store is read again, and Zoho asked for a new
	// token when the stored one is no better.
	f.clock.Advance(29*time.Minute + 30*time.Second)
	tok, err := f.tokens.AccessToken(ctx)
	if err != nil || tok == "stored-token" || tok != f.store.token().AccessToken {
		t.Fatalf("token %q (stored %q), %v", tok, f.store.token().AccessToken, err)
	}
	if f.sim.TokenCalls() != 1 {
		t.Errorf("%d token calls", f.sim.TokenCalls())
	}
	f.assertNoSecrets(t, f.logs.String())
}

// gatedStore holds every Load until open is closed.
type gatedStore struct {
	*memStore
	open chan struct{}
}

func (s gatedStore) Load(ctx context.Context) (zoho.Token, error) {
	<-s.open
	return s.memStore.Load(ctx)
}

// Preload's read is the one the first callers use: they wait for it rather
// than read again; a stored token too old for use is then renewed as
// without Preload, and Preload itself never mints one.
func TestPreload(t *testing.T) {
	for _, c := range []struct {
		name          string
		left          time.Duration // the stored token's validity
		loads, minted int
	}{
		{"valid", 30 * time.Minute, 1, 0},
		{"expiring", 30 * time.Second, 2, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			mem := &memStore{}
			mem.Save(ctx, zoho.Token{AccessToken: "stored-token", ExpiresAt: f.clock.Now().Add(c.left)})
			store := gatedStore{mem, make(chan struct{})}
			tokens := f.newTokens(t, store)
			tokens.Preload()
			var wg sync.WaitGroup
			got := make([]string, 3)
			for i := range got {
				wg.Go(func() {
					tok, err := tokens.AccessToken(ctx)
					if err != nil {
						t.Error(err)
					}
					got[i] = tok
				})
			}
			time.Sleep(20 * time.Millisecond) // the callers are waiting
			close(store.open)
			wg.Wait()
			for _, tok := range got {
				if (tok == "stored-token") != (c.minted == 0) || tok != got[0] {
					t.Errorf("tokens %q", got)
				}
			}
			if loads, _ := mem.counts(); loads != c.loads || f.sim.TokenCalls() != c.minted {
				t.Errorf("%d store loads, %d token calls; want %d and %d", loads, f.sim.TokenCalls(), c.loads, c.minted)
			}
		})
	}
}

func TestRefreshScheduled(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	if err := f.tokens.Refresh(ctx, false); err != nil { // nothing stored
		t.Fatal(err)
	}
	first := f.store.token()
	if first.AccessToken == "" || first.RefreshToken != f.sim.Options().RefreshToken || f.sim.TokenCalls() != 1 {
		t.Fatalf("stored %s after the first refresh, %d calls", first, f.sim.TokenCalls())
	}

	f.clock.Advance(40 * time.Minute) // 20 minutes left: fine
	if err := f.tokens.Refresh(ctx, false); err != nil || f.sim.TokenCalls() != 1 {
		t.Fatalf("err %v, %d calls", err, f.sim.TokenCalls())
	}
	f.clock.Advance(10 * time.Minute) // 10 minutes left: renewed
	if err := f.tokens.Refresh(ctx, false); err != nil || f.sim.TokenCalls() != 2 || f.store.token().AccessToken == first.AccessToken {
		t.Fatalf("err %v, %d calls", err, f.sim.TokenCalls())
	}
	f.clock.Advance(2 * time.Minute)
	if err := f.tokens.Refresh(ctx, true); err != nil || f.sim.TokenCalls() != 3 {
		t.Fatalf("forced: err %v, %d calls", err, f.sim.TokenCalls())
	}
	f.assertNoSecrets(t, f.logs.String(), first.AccessToken)
}

// A warm scheduled function reads the token's secret only when the token
// it last saw there nears expiry, and renews only if no other container did.
func TestScheduledRefreshReadsTheStoreNearExpiryOnly(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.store.Save(ctx, zoho.Token{AccessToken: "stored-token", ExpiresAt: f.clock.Now().Add(time.Hour)})
	loads := func() int { n, _ := f.store.counts(); return n }

	for range 20 { // every 2 minutes for 40 minutes: 20 minutes left
		if err := f.tokens.Refresh(ctx, false); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(2 * time.Minute)
	}
	if n := loads(); n != 1 || f.sim.TokenCalls() != 0 {
		t.Fatalf("20 scheduled runs: %d store loads, %d token calls; want 1 and 0", n, f.sim.TokenCalls())
	}

	// Another container renewed meanwhile: read, and nothing minted.
	other := f.newTokens(t, f.store)
	f.clock.Advance(4 * time.Minute) // 16 minutes left
	if err := other.Refresh(ctx, true); err != nil || f.sim.TokenCalls() != 1 {
		t.Fatalf("the other container's renewal: %v, %d token calls", err, f.sim.TokenCalls())
	}
	renewed := f.store.token()
	f.clock.Advance(2 * time.Minute) // 14 minutes left of the token this one saw
	if err := f.tokens.Refresh(ctx, false); err != nil || f.sim.TokenCalls() != 1 {
		t.Fatalf("near expiry: %v, %d token calls; want the other container's token taken", err, f.sim.TokenCalls())
	}
	if n := loads(); n != 3 || f.store.token() != renewed {
		t.Fatalf("near expiry: %d store loads (want 3: one per container), stored token changed", n)
	}
	if err := f.tokens.Refresh(ctx, false); err != nil || loads() != 3 {
		t.Fatalf("after taking the renewed token: %v, %d store loads", err, loads())
	}

	// Near the renewed token's expiry, this one renews it.
	f.clock.Advance(renewed.ExpiresAt.Sub(f.clock.Now()) - 10*time.Minute)
	if err := f.tokens.Refresh(ctx, false); err != nil || f.sim.TokenCalls() != 2 || f.store.token().AccessToken == renewed.AccessToken {
		t.Fatalf("renewal: %v, %d token calls", err, f.sim.TokenCalls())
	}
}

func TestRefreshReportsUnsavedToken(t *testing.T) {
	f := newFixture(t)
	f.store.saveErr = errors.New("secrets manager down")
	if err := f.tokens.Refresh(context.Background(), false); err == nil {
		t.Fatal("a token that could not be saved was reported as saved")
	}
	// The token is still used here.
	if tok, err := f.tokens.AccessToken(context.Background()); err != nil || tok == "" || f.sim.TokenCalls() != 1 {
		t.Errorf("token %q, %v, %d calls", tok, err, f.sim.TokenCalls())
	}
	// The next scheduled run tries again: what is stored is no better.
	f.store.mu.Lock()
	f.store.saveErr = nil
	f.store.mu.Unlock()
	f.clock.Advance(time.Minute) // the refresh lease has passed
	if err := f.tokens.Refresh(context.Background(), false); err != nil || f.store.token().AccessToken == "" {
		t.Errorf("the next run: %v, stored %s", err, f.store.token())
	}
}

func TestInvalidateIsSingleFlight(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bad := f.accessToken(t)
	f.clock.Advance(2 * time.Minute) // past the first refresh's interval
	calls := f.sim.TokenCalls()

	got := invalidateAll(t, bad, 50, f.tokens)
	if n := f.sim.TokenCalls() - calls; n != 1 {
		t.Errorf("%d refreshes for 50 concurrent invalidations", n)
	}
	for _, tok := range got {
		if tok == bad || tok != got[0] {
			t.Fatalf("tokens handed out: %q", got)
		}
	}
	// A late caller with the old token gets the new one without a refresh.
	if tok, err := f.tokens.Invalidate(ctx, bad); err != nil || tok != got[0] || f.sim.TokenCalls()-calls != 1 {
		t.Errorf("late invalidation: %q, %v", tok, err)
	}
}

func TestInvalidateAcrossContainers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bad := f.accessToken(t)
	// Another container sharing the store and the lease; it has the same
	// token in memory.
	other := f.newTokens(t, f.store)
	if tok, _ := other.AccessToken(ctx); tok != bad {
		t.Fatal("the second container did not load the stored token")
	}
	f.clock.Advance(2 * time.Minute) // past the first refresh's interval
	calls := f.sim.TokenCalls()

	results := invalidateAll(t, bad, 20, f.tokens, other)
	if n := f.sim.TokenCalls() - calls; n != 1 {
		t.Errorf("%d refreshes across two containers", n)
	}
	for _, tok := range results {
		if tok == bad || tok != f.store.token().AccessToken {
			t.Fatalf("tokens handed out: %q, stored %q", results, f.store.token().AccessToken)
		}
	}
}

// TestRefusedRightAfterMinting: a token refused within LeaseWait of its
// minting (the refresh lease still held) is answered unavailable at once,
// with a Retry-After, and replaced once the lease has passed.
// invalidateAll makes n concurrent calls that report bad as refused,
// spread over the containers in turn, and returns the tokens they got.
func invalidateAll(t *testing.T, bad string, n int, containers ...*zoho.Tokens) []string {
	t.Helper()
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range got {
		tokens := containers[i%len(containers)]
		wg.Go(func() {
			tok, err := tokens.Invalidate(context.Background(), bad)
			if err != nil {
				t.Error(err)
			}
			got[i] = tok
		})
	}
	wg.Wait()
	return got
}

func TestRefusedRightAfterMinting(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bad := f.accessToken(t)
	_, err := f.tokens.Invalidate(ctx, bad)
	if hitl.ErrorCode(err) != hitl.CodeUnavailable || hitl.RetryAfter(err) <= 0 || f.sim.TokenCalls() != 1 {
		t.Fatalf("err = %v (retry after %s), %d token calls", err, hitl.RetryAfter(err), f.sim.TokenCalls())
	}
	f.clock.Advance(time.Second)
	if tok, err := f.tokens.Invalidate(ctx, bad); err != nil || tok == bad || f.sim.TokenCalls() != 2 {
		t.Fatalf("after the lease: %q, %v, %d token calls", tok, err, f.sim.TokenCalls())
	}
}

// TestTokenBudget: Zoho keeps refusing whatever it issues (a revoked
// grant, a bug): the bridge asks at most 10 times per 10 minutes, across
// containers, and answers unavailable at once in between.
func TestTokenBudget(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	containers := []*zoho.Tokens{f.tokens, f.newTokens(t, f.store)}
	var toks [2]string
	for i, c := range containers {
		tok, err := c.AccessToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		toks[i] = tok
	}
	for i := range 60 {
		f.clock.Advance(10 * time.Second)
		c := i % 2
		start := time.Now()
		next, err := containers[c].Invalidate(ctx, toks[c])
		if err == nil {
			toks[c] = next
			continue
		}
		if hitl.ErrorCode(err) != hitl.CodeUnavailable || hitl.RetryAfter(err) <= 0 {
			t.Fatalf("invalidation %d: %v", i, err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("invalidation %d answered after %s", i, d)
		}
	}
	// 10 minutes: the first token and ten per ten minutes since.
	if n := f.sim.TokenCalls(); n != 10 && n != 11 {
		t.Errorf("%d token calls in 10 minutes", n)
	}
	for _, op := range f.sim.CallLog() {
		if op != "token" {
			t.Fatalf("unexpected call %s", op)
		}
	}
}

// TestFailedTokenAnswerHeals: after one failed token answer, callers are
// answered unavailable at once (no token call) until a short backoff has
// passed; a message a few seconds later goes through.
func TestFailedTokenAnswerHeals(t *testing.T) {
	for _, fault := range []zohotest.Fault{
		{Status: 200, Message: "invalid_code"},
		{Status: 500, Message: "internal"},
		{Status: 200, Message: "Access Denied"},
	} {
		t.Run(fmt.Sprintf("%d %s", fault.Status, fault.Message), func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			s := f.open(t) // mints the first token
			f.sim.ExpireTokens()
			f.clock.Advance(2 * time.Minute)
			f.sim.FailNext("token", 1, fault)
			calls := f.sim.TokenCalls()
			_, err := f.client.Send(ctx, s, hitl.Message{Type: hitl.TypeText, Text: "still there?"})
			if hitl.ErrorCode(err) != hitl.CodeUnavailable || hitl.RetryAfter(err) <= 0 || f.sim.TokenCalls() != calls+1 {
				t.Fatalf("err = %v (retry after %s), %d token calls", err, hitl.RetryAfter(err), f.sim.TokenCalls()-calls)
			}
			// Within the backoff: refused at once, Zoho not asked.
			start := time.Now()
			if _, err := f.client.Send(ctx, s, hitl.Message{Type: hitl.TypeText, Text: "hello?"}); hitl.ErrorCode(err) != hitl.CodeUnavailable ||
				f.sim.TokenCalls() != calls+1 || time.Since(start) > 500*time.Millisecond {
				t.Fatalf("within the backoff: %v, %d token calls", err, f.sim.TokenCalls()-calls)
			}
			f.clock.Advance(3 * time.Second)
			if fault.Message == "Access Denied" {
				f.clock.Advance(time.Minute) // Zoho asked for a pause
			}
			if _, err := f.client.Send(ctx, s, hitl.Message{Type: hitl.TypeText, Text: "are you there?"}); err != nil {
				t.Fatalf("a few seconds later: %v", err)
			}
			f.assertNoSecrets(t, f.logs.String())
		})
	}
}

func TestRefreshRefusedByZoho(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for range 10 { // Zoho's budget for this refresh token, spent elsewhere
		if _, err := f.oauth.Refresh(ctx, f.sim.Options().RefreshToken); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.tokens.AccessToken(ctx)
	if hitl.ErrorCode(err) != hitl.CodeUnavailable || hitl.RetryAfter(err) < time.Minute {
		t.Fatalf("err = %v (retry after %s), want unavailable for a minute", err, hitl.RetryAfter(err))
	}

	f2 := newFixture(t)
	tokens, err := zoho.NewTokens(zoho.TokensConfig{OAuth: f2.oauth, Store: &memStore{}, RefreshToken: "1000.revoked", Now: f2.clock.Now, Logger: f2.logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tokens.AccessToken(ctx)
	if hitl.ErrorCode(err) != hitl.CodeUnavailable || hitl.RetryAfter(err) <= 0 {
		t.Fatalf("err = %v", err)
	}
	f2.assertNoSecrets(t, err.Error()+f2.logs.String(), "1000.revoked")
}

// TestSimulatorRevokesOldestToken: the 16th live token of a refresh token
// revokes the first, which SalesIQ then refuses with 1008.
func TestSimulatorRevokesOldestToken(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var first zoho.Token
	for i := range 16 {
		f.clock.Advance(70 * time.Second) // within 10 per 10 minutes
		tok, err := f.oauth.Refresh(ctx, f.sim.Options().RefreshToken)
		if err != nil {
			t.Fatalf("token %d: %v", i+1, err)
		}
		if i == 0 {
			first = tok
		}
	}
	f.store.Save(ctx, first)
	// The client holds the revoked token: SalesIQ refuses it, a new one is
	// minted and the open goes through.
	calls := f.sim.TokenCalls()
	if _, err := f.client.Open(ctx, openRequest()); err != nil {
		t.Fatal(err)
	}
	log := f.sim.CallLog()
	if f.sim.TokenCalls() != calls+1 || log[len(log)-3] != "open" || log[len(log)-1] != "open" {
		t.Errorf("calls %v", log[len(log)-3:])
	}
}

func TestNewTokensValidates(t *testing.T) {
	if _, err := zoho.NewTokens(zoho.TokensConfig{}); err == nil {
		t.Error("empty config accepted")
	}
}
