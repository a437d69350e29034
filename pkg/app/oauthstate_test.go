package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/app/local"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

// zohoCallback calls the OAuth callback with Zoho's redirect parameters and
// returns the status and the page.
func zohoCallback(t *testing.T, e *apptest.Env, v url.Values) (int, string) {
	t.Helper()
	resp, err := http.Get(e.Server.URL + "/oauth/zoho/callback?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(page)
}

// forgedState signs a state in the bridge's format (nonce‖expiry, then an
// HMAC-SHA256 of it) with key.
func forgedState(key []byte, expiry time.Time) string {
	payload := make([]byte, 24)
	copy(payload, "forged-nonce-123")
	binary.BigEndian.PutUint64(payload[16:], uint64(expiry.Unix()))
	m := hmac.New(sha256.New, key)
	m.Write([]byte("zoho-oauth-state\x00"))
	m.Write(payload)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(m.Sum(nil))
}

// The bot side holds the callback signing secret, its API keys, the
// Botpress path token and webhook URL. None of them, nor any key derived
// from them as the state key once was, signs a state the callback accepts.
func TestZohoOAuthStateCannotBeForgedWithTheBotSideSecrets(t *testing.T) {
	const pathToken, webhookURL = "bp-path-token-0123456789", "https://webhook.botpress.example/hook-0123456789"
	e := apptest.New(t, apptest.Bolt(t), func(c *config.Config) {
		c.Secret.BotpressPathToken, c.Secret.BotpressWebhookURL = pathToken, webhookURL
	})
	botSide := []string{apptest.SigningKey, apptest.BotKey, pathToken, webhookURL}
	var keys [][]byte
	for _, s := range botSide {
		derived := hmac.New(sha256.New, []byte(s))
		derived.Write([]byte("zoho oauth state"))
		keys = append(keys, []byte(s), derived.Sum(nil))
	}
	keys = append(keys, nil, []byte{})
	code := e.Zoho.AuthorizationCode(e.Server.URL + "/oauth/zoho/callback")
	before := e.Zoho.TokenCalls()
	for i, key := range keys {
		v := url.Values{"code": {code}, "state": {forgedState(key, e.Clock.Now().Add(5*time.Minute))},
			"location": {"us"}, "accounts-server": {e.Zoho.AccountsURL()}}
		if status, page := zohoCallback(t, e, v); status != http.StatusBadRequest || !strings.Contains(page, "invalid, expired") {
			t.Errorf("state signed with bot-side key %d: %d %s", i, status, page)
		}
	}
	if tok, _ := e.ZohoTokens.Load(t.Context()); tok.RefreshToken != "" || tok.AccessToken != "" {
		t.Fatal("a forged state stored a token")
	}
	if n := e.Zoho.TokenCalls() - before; n != 0 {
		t.Fatalf("a forged state reached Zoho's token endpoint %d times", n)
	}
}

// Without an admin key the connect flow is off: neither its start nor its
// callback route exists, so no state, genuine or not, is ever taken.
func TestZohoOAuthRoutesExistOnlyWithAnAdminKey(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t), func(c *config.Config) { c.Secret.AdminAPIKey = "" })
	v := url.Values{"code": {"1000.x"}, "state": {forgedState([]byte(apptest.SigningKey), e.Clock.Now().Add(time.Minute))}}
	if status, page := zohoCallback(t, e, v); status != http.StatusNotFound || !strings.Contains(page, "not_found") {
		t.Fatalf("callback without an admin key: %d %s", status, page)
	}
	if status, out := e.Do(t, "GET", "/oauth/zoho/start", nil, "Authorization", "Bearer "); status != http.StatusNotFound {
		t.Fatalf("start without an admin key: %d %v", status, out)
	}
}

// Zoho's error text is never shown back on the page.
func TestZohoOAuthCallbackPageShowsFixedTextOnly(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t))
	status, page := zohoCallback(t, e, url.Values{"error": {"<b>access_denied</b> call +1-555"}})
	if status != http.StatusBadRequest || strings.Contains(page, "access_denied") || strings.Contains(page, "555") {
		t.Fatalf("error page: %d %s", status, page)
	}
}

// Locally the state key is generated once, kept in a file only its owner
// can read, and read back by the next process: a state outlives a restart.
func TestLocalOAuthStateKeyIsKeptInAnOwnerOnlyFile(t *testing.T) {
	dir := t.TempDir()
	zs := zohotest.New(zohotest.Options{})
	defer zs.Close()
	z := zs.Options()
	secret, _ := json.Marshal(map[string]any{
		"botApiKeys": []string{apptest.BotKey}, "callbackSigningSecret": apptest.SigningKey, "adminApiKey": apptest.AdminKey,
		"zoho": map[string]any{"clientId": z.ClientID, "clientSecret": z.ClientSecret},
	})
	env := map[string]string{
		"BOT_CALLBACK_URL": "http://127.0.0.1:9/hitl", "HITL_ALLOW_PRIVATE_URLS": "true", "HITL_STORE_PATH": filepath.Join(dir, "bridge.db"),
		"ZOHO_SCREEN_NAME": z.ScreenName, "ZOHO_REGION": "us", "ZOHO_APP_ID": z.AppID, "ZOHO_DEPARTMENT_ID": z.DepartmentID,
		"ZOHO_ORG_ID": z.OrgID, "ZOHO_ACCOUNTS_URL": zs.AccountsURL(), "ZOHO_SALESIQ_URL": zs.SalesIQURL(),
		"HITL_SECRET_JSON": string(secret),
	}
	serve := func() (*httptest.Server, func()) {
		a, _, closeStore, err := local.Load(func(k string) string { return env[k] }, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(a.Handler())
		return srv, func() { srv.Close(); closeStore() }
	}
	srv, stop := serve()
	req, _ := http.NewRequest("GET", srv.URL+"/oauth/zoho/start", nil)
	req.Header.Set("Authorization", "Bearer "+apptest.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ AuthorizationURL, RedirectURI string }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	stop()
	authURL, _ := url.Parse(out.AuthorizationURL)
	info, err := os.Stat(filepath.Join(dir, "zoho-oauth-state.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("state key file: %v, %v", info, err)
	}

	srv, stop = serve()
	defer stop()
	v := url.Values{"code": {zs.AuthorizationCode(srv.URL + "/oauth/zoho/callback")}, "state": {authURL.Query().Get("state")},
		"location": {"us"}, "accounts-server": {zs.AccountsURL()}}
	resp, err = http.Get(srv.URL + "/oauth/zoho/callback?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "is connected") {
		t.Fatalf("callback after a restart: %d %s", resp.StatusCode, page)
	}
}
