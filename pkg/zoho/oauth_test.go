package zoho_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

func TestAuthCodeURL(t *testing.T) {
	oauth, err := zoho.NewOAuth(zoho.OAuthConfig{Region: "ca", ClientID: "1000.ABC", ClientSecret: "s3cret", RedirectURL: redirectURL})
	if err != nil {
		t.Fatal(err)
	}
	state := "st+ate/with=chars&x"
	u, err := url.Parse(oauth.AuthCodeURL(state))
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme+"://"+u.Host+u.Path != "https://accounts.zohocloud.ca/oauth/v2/org/auth" {
		t.Errorf("authorization endpoint = %s", u)
	}
	q := u.Query()
	want := map[string]string{
		"response_type": "code",
		"client_id":     "1000.ABC",
		"scope":         "SalesIQ.Conversations.ALL,SalesIQ.apps.read,SalesIQ.webhooks.ALL,SalesIQ.departments.READ,SalesIQ.operators.READ",
		"redirect_uri":  redirectURL,
		"access_type":   "offline",
		"prompt":        "consent",
		"state":         state,
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if strings.Contains(u.String(), "s3cret") {
		t.Error("the URL carries the client secret")
	}
}

func TestAuthorizationRoundTrip(t *testing.T) {
	f := newFixture(t)
	// The simulator's consent page redirects with code, state, location
	// and accounts-server, as Zoho's does.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(f.oauth.AuthCodeURL("state-1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := back.Query()
	if q.Get("state") != "state-1" || q.Get("location") != "us" || q.Get("accounts-server") != f.sim.AccountsURL() {
		t.Fatalf("redirect query = %v", q)
	}
	tok, err := f.oauth.Exchange(context.Background(), q.Get("code"), q.Get("location"), q.Get("accounts-server"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.APIDomain == "" || !tok.ExpiresAt.Equal(f.clock.Now().Add(time.Hour)) {
		t.Errorf("token = %+v (%s)", tok, tok)
	}
	// The new refresh token works; the code does not work twice.
	if _, err := f.oauth.Refresh(context.Background(), tok.RefreshToken); err != nil {
		t.Errorf("refresh with the new refresh token: %v", err)
	}
	_, err = f.oauth.Exchange(context.Background(), q.Get("code"), q.Get("location"), q.Get("accounts-server"))
	assertOAuthError(t, err, "invalid_code")
}

func TestExchangeFailures(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	accounts := f.sim.AccountsURL()

	_, err := f.oauth.Exchange(ctx, "1000.not-a-code", "us", accounts)
	assertOAuthError(t, err, "invalid_code")

	f.sim.FailNext("token", 1, zohotest.Fault{Message: "Access Denied"})
	_, err = f.oauth.Exchange(ctx, f.sim.AuthorizationCode(redirectURL), "us", accounts)
	assertOAuthError(t, err, "Access Denied")

	calls := f.sim.TokenCalls()
	for _, server := range []string{"https://accounts.evil.example", "https://accounts.zoho.com", ""} {
		if _, err := f.oauth.Exchange(ctx, f.sim.AuthorizationCode(redirectURL), "us", server); err == nil {
			t.Errorf("accounts-server %q accepted", server)
		}
	}
	if f.sim.TokenCalls() != calls {
		t.Error("a code was sent to an accounts server that is not allowed")
	}
}

func TestExchangeChecksRegion(t *testing.T) {
	// Without an override, only the configured region's accounts server is
	// accepted; nothing is sent anywhere else.
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits++ }))
	defer srv.Close()
	oauth, err := zoho.NewOAuth(zoho.OAuthConfig{Region: "eu", ClientID: "c", ClientSecret: "s", RedirectURL: redirectURL})
	if err != nil {
		t.Fatal(err)
	}
	for _, cb := range []struct{ location, server string }{
		{"us", "https://accounts.zoho.com"},
		{"eu", "https://accounts.zoho.com"},
		{"eu", srv.URL},
		{"xx", "https://accounts.zoho.eu"},
	} {
		if _, err := oauth.Exchange(context.Background(), "code", cb.location, cb.server); err == nil || !strings.Contains(err.Error(), "oauth redirect") {
			t.Errorf("%s %s: err = %v", cb.location, cb.server, err)
		}
	}
	if hits != 0 {
		t.Error("a request was sent")
	}
}

func TestRefresh(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rt := f.sim.Options().RefreshToken

	tok, err := f.oauth.Refresh(ctx, rt)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken != rt || !tok.ExpiresAt.Equal(f.clock.Now().Add(time.Hour)) {
		t.Errorf("token = %s, refresh token kept: %v", tok, tok.RefreshToken == rt)
	}

	_, err = f.oauth.Refresh(ctx, "1000.unknown")
	assertOAuthError(t, err, "invalid_code")

	// Zoho mints 10 tokens per refresh token per 10 minutes, then answers
	// HTTP 200 "Access Denied".
	for range 9 {
		if _, err := f.oauth.Refresh(ctx, rt); err != nil {
			t.Fatal(err)
		}
	}
	_, err = f.oauth.Refresh(ctx, rt)
	var oe *zoho.OAuthError
	if !errors.As(err, &oe) || oe.Code != "Access Denied" || !oe.TooManyRequests() || oe.Status != http.StatusOK {
		t.Fatalf("11th refresh: %v", err)
	}
	f.clock.Advance(10 * time.Minute)
	if _, err := f.oauth.Refresh(ctx, rt); err != nil {
		t.Errorf("after 10 minutes: %v", err)
	}
	f.assertNoSecrets(t, err.Error())
}

func TestRefreshAnswerWithoutToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"api_domain":"https://www.zohoapis.com","token_type":"Bearer"}`))
	}))
	defer srv.Close()
	oauth, err := zoho.NewOAuth(zoho.OAuthConfig{Region: "us", AccountsURL: srv.URL, ClientID: "c", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := oauth.Refresh(context.Background(), "rt"); err == nil {
		t.Fatalf("an answer without access_token succeeded: %s", tok)
	}
}

func TestNewOAuthValidates(t *testing.T) {
	const secret = "client-secret-xyz"
	for _, cfg := range []zoho.OAuthConfig{
		{Region: "xx", ClientID: "c", ClientSecret: secret},
		{Region: "", ClientID: "c", ClientSecret: secret},
		{Region: "us", ClientID: "c"},
		{Region: "us", ClientID: "c", ClientSecret: secret, AccountsURL: "ftp://x"},
	} {
		if _, err := zoho.NewOAuth(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("error quotes the secret: %v", err)
		}
	}
}

func TestTokenHidesSecrets(t *testing.T) {
	tok := zoho.Token{AccessToken: "1000.access", RefreshToken: "1000.refresh", ExpiresAt: time.Unix(0, 0)}
	var logs simcore.Logs
	logs.Logger().Info("token", "token", tok)
	for _, s := range []string{tok.String(), logs.String()} {
		if strings.Contains(s, "1000.") {
			t.Errorf("secret shown: %s", s)
		}
	}
}

func assertOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var oe *zoho.OAuthError
	if !errors.As(err, &oe) || oe.Code != code {
		t.Fatalf("err = %v, want OAuth error %q", err, code)
	}
}
