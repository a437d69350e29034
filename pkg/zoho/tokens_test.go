package zoho_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
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
}

func TestInvalidateIsSingleFlight(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bad, err := f.tokens.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute) // past the first refresh's interval
	calls := f.sim.TokenCalls()

	got := make([]string, 50)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			tok, err := f.tokens.Invalidate(ctx, bad)
			if err != nil {
				t.Error(err)
			}
			got[i] = tok
		})
	}
	wg.Wait()
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
	bad, err := f.tokens.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Another container sharing the store and the lease; it has the same
	// token in memory.
	other := f.newTokens(t, f.store)
	if tok, _ := other.AccessToken(ctx); tok != bad {
		t.Fatal("the second container did not load the stored token")
	}
	f.clock.Advance(2 * time.Minute) // past the first refresh's interval
	calls := f.sim.TokenCalls()

	var wg sync.WaitGroup
	results := make([]string, 20)
	for i := range results {
		tokens := f.tokens
		if i%2 == 1 {
			tokens = other
		}
		wg.Go(func() {
			tok, err := tokens.Invalidate(ctx, bad)
			if err != nil {
				t.Error(err)
			}
			results[i] = tok
		})
	}
	wg.Wait()
	if n := f.sim.TokenCalls() - calls; n != 1 {
		t.Errorf("%d refreshes across two containers", n)
	}
	for _, tok := range results {
		if tok == bad || tok != f.store.token().AccessToken {
			t.Fatalf("tokens handed out: %q, stored %q", results, f.store.token().AccessToken)
		}
	}
}

func TestRefreshSoonAfterRefreshWaitsForInterval(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bad, err := f.tokens.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Refused within a minute of its minting: not replaced before the
	// interval has passed.
	if _, err := f.tokens.Invalidate(ctx, bad); !errors.Is(err, hitl.ErrRateLimited) || f.sim.TokenCalls() != 1 {
		t.Fatalf("err = %v, %d token calls", err, f.sim.TokenCalls())
	}
	f.clock.Advance(time.Minute)
	if tok, err := f.tokens.Invalidate(ctx, bad); err != nil || tok == bad || f.sim.TokenCalls() != 2 {
		t.Fatalf("after the interval: %q, %v, %d token calls", tok, err, f.sim.TokenCalls())
	}
}

func TestRefreshesAreSpacedOut(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok, err := f.tokens.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Zoho keeps refusing whatever it issues (a revoked grant, a bug): the
	// bridge still asks at most once a minute.
	for i := range 30 {
		f.clock.Advance(20 * time.Second)
		next, err := f.tokens.Invalidate(ctx, tok)
		if err == nil {
			tok = next
			continue
		}
		if !errors.Is(err, hitl.ErrRateLimited) {
			t.Fatalf("invalidation %d: %v", i, err)
		}
	}
	// 10 minutes: the first token and at most one per minute since.
	if n := f.sim.TokenCalls(); n > 11 {
		t.Errorf("%d token calls in 10 minutes", n)
	}
	for _, op := range f.sim.CallLog() {
		if op != "token" {
			t.Fatalf("unexpected call %s", op)
		}
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
	if !errors.Is(err, hitl.ErrRateLimited) {
		t.Fatalf("err = %v, want rate limited", err)
	}

	f2 := newFixture(t)
	tokens, err := zoho.NewTokens(zoho.TokensConfig{OAuth: f2.oauth, Store: &memStore{}, RefreshToken: "1000.revoked", Now: f2.clock.Now, Logger: f2.logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tokens.AccessToken(ctx)
	if hitl.ErrorCode(err) != hitl.CodeProvider || hitl.ErrorMessage(err) != "Zoho did not issue an access token" {
		t.Fatalf("err = %v", err)
	}
	f2.assertNoSecrets(t, err.Error()+f2.logs.String(), "1000.revoked")
}

func TestNewTokensValidates(t *testing.T) {
	if _, err := zoho.NewTokens(zoho.TokensConfig{}); err == nil {
		t.Error("empty config accepted")
	}
}
