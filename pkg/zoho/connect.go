package zoho

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
)

// Connect connects a Zoho SalesIQ account: an operator asks for the
// authorization URL, approves in the browser, and the callback exchanges
// the code and keeps the refresh token. It replaces the curl steps of
// Zoho's setup guide.
type Connect struct {
	// OAuth returns the OAuth client for the given redirect URL (the
	// callback route as the caller reached it).
	OAuth func(redirectURL string) (*OAuth, error)
	// Save keeps the token where the functions read it.
	Save func(ctx context.Context, t Token) error
	// StateKey returns the key that signs the state parameter: a random
	// key of its own, which nobody outside the bridge holds. A key derived
	// from a secret the bot side knows (the callback signing secret, an API
	// key) would let the bot side forge a state and connect another Zoho
	// account.
	StateKey func(ctx context.Context) ([]byte, error)
	// AcquireLease makes each state usable once (hitl.Store.AcquireLease).
	AcquireLease func(ctx context.Context, name, owner string, now, until time.Time) (bool, error)
	Now          func() time.Time
	Log          *slog.Logger
	// Verify, when set, checks a new token before it is kept: a failed
	// check refuses the connection, keeps nothing and says what is wrong.
	Verify func(ctx context.Context, t Token) []health.Check
	// Setup, when set, runs once the token is kept: the bridge's SalesIQ
	// webhook and its key; base is the bridge's URL as the request reached it.
	Setup func(ctx context.Context, t Token, base string) (SetupResult, error)
}

const stateTTL = 10 * time.Minute

// callbackURL is the callback route on the host the request came to.
func callbackURL(r *http.Request) string {
	scheme := "https"
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		scheme = p
	} else if r.TLS == nil && (strings.HasPrefix(r.Host, "127.0.0.1") || strings.HasPrefix(r.Host, "localhost")) {
		scheme = "http"
	}
	return scheme + "://" + r.Host + "/oauth/zoho/callback"
}

// start answers {"authorizationUrl": …}: open it in a browser signed in to
// Zoho as an admin of the SalesIQ portal.
func (z *Connect) start(w http.ResponseWriter, r *http.Request) error {
	o, err := z.OAuth(callbackURL(r))
	if err != nil {
		return fmt.Errorf("zoho oauth: %w", err)
	}
	state, err := z.newState(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(map[string]string{"authorizationUrl": o.AuthCodeURL(state), "redirectUri": callbackURL(r)})
}

// callback takes Zoho's redirect. It answers a short page for the person
// in the browser, with fixed texts only: nothing of the request (Zoho's
// error, a code) is shown back. Nothing is stored unless everything checks
// out.
func (z *Connect) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(status int, reason, text string, err error) {
		z.Log.Warn("zoho connection refused", "reason", reason, "err", err)
		page(w, status, "Zoho SalesIQ was not connected", text)
	}
	if q.Get("error") != "" {
		fail(http.StatusBadRequest, "zoho_error", "Zoho did not grant access. Start again from /oauth/zoho/start.", nil)
		return
	}
	if err := z.useState(r.Context(), q.Get("state")); err != nil {
		fail(http.StatusBadRequest, "bad_state", "The link is invalid, expired or already used. Start again from /oauth/zoho/start.", err)
		return
	}
	o, err := z.OAuth(callbackURL(r))
	if err != nil {
		fail(http.StatusInternalServerError, "settings", "The bridge's Zoho settings are incomplete; see the function's log.", err)
		return
	}
	tok, err := o.Exchange(r.Context(), q.Get("code"), q.Get("location"), q.Get("accounts-server"))
	if err != nil {
		fail(http.StatusBadRequest, "exchange", "Zoho did not accept the authorization, or the redirect did not come from your Zoho data centre; see the function's log.", err)
		return
	}
	if problems := z.verify(r.Context(), tok); problems != "" {
		fail(http.StatusBadRequest, "verify", "Nothing was changed: "+problems, nil)
		return
	}
	if err := z.Save(r.Context(), tok); err != nil {
		fail(http.StatusInternalServerError, "save", "The token could not be stored; see the function's log.", err)
		return
	}
	z.Log.Info("zoho connected", "expires_at", tok.ExpiresAt)
	page(w, http.StatusOK, "Zoho SalesIQ is connected", "hitl-bridge can now open conversations in your SalesIQ portal. "+z.setup(r, tok)+" You can close this page.")
}

// verify runs Verify and returns its failures, each with its fix; "" when
// the token may be kept.
func (z *Connect) verify(ctx context.Context, tok Token) string {
	if z.Verify == nil {
		return ""
	}
	var problems []string
	for _, c := range z.Verify(ctx, tok) {
		if c.Status == health.Fail {
			problems = append(problems, c.Detail+" (fix: "+c.Fix+")")
		}
	}
	return strings.Join(problems, "; ")
}

// setup runs Setup and says how it went.
func (z *Connect) setup(r *http.Request, tok Token) string {
	if z.Setup == nil {
		return ""
	}
	res, err := z.Setup(r.Context(), tok, strings.TrimSuffix(callbackURL(r), "/oauth/zoho/callback"))
	if err != nil {
		z.Log.Error("zoho webhook setup after connect", "err", err)
		why := "see the function's log"
		if len(res.Checks) > 0 {
			why = res.Checks[0].Detail
		}
		return "Its SalesIQ webhook could not be set up yet (" + why + "): the scheduled run retries every 5 minutes, and /admin shows the status."
	}
	return "Its SalesIQ webhook and signing key are in place."
}

// AuthorizationURL returns where an operator's browser goes to connect
// Zoho SalesIQ, with a fresh state; base is the bridge's URL as the
// browser reaches it (the callback is under it).
func (z *Connect) AuthorizationURL(ctx context.Context, base string) (string, error) {
	o, err := z.OAuth(strings.TrimRight(base, "/") + "/oauth/zoho/callback")
	if err != nil {
		return "", fmt.Errorf("zoho oauth: %w", err)
	}
	state, err := z.newState(ctx)
	if err != nil {
		return "", err
	}
	return o.AuthCodeURL(state), nil
}

// page answers a fixed title and text.
func page(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><meta charset=utf-8><title>%s</title><h1>%s</h1><p>%s</p>\n",
		html.EscapeString(title), html.EscapeString(title), html.EscapeString(text))
}

// newState returns nonce‖expiry, signed: base64url(payload).base64url(mac).
func (z *Connect) newState(ctx context.Context) (string, error) {
	payload := make([]byte, 24)
	if _, err := rand.Read(payload[:16]); err != nil {
		return "", err
	}
	binary.BigEndian.PutUint64(payload[16:], uint64(z.Now().Add(stateTTL).Unix()))
	mac, err := z.mac(ctx, payload)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(mac), nil
}

func (z *Connect) mac(ctx context.Context, payload []byte) ([]byte, error) {
	key, err := z.StateKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("zoho oauth state key: %w", err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("zoho-oauth-state\x00"))
	m.Write(payload)
	return m.Sum(nil), nil
}

// useState checks the signature and expiry of state, and that it was not
// used before.
func (z *Connect) useState(ctx context.Context, state string) error {
	enc := base64.RawURLEncoding
	p, s, ok := strings.Cut(state, ".")
	payload, err1 := enc.DecodeString(p)
	sig, err2 := enc.DecodeString(s)
	if !ok || err1 != nil || err2 != nil || len(payload) != 24 {
		return errors.New("malformed state")
	}
	want, err := z.mac(ctx, payload)
	if err != nil {
		return err
	}
	if !hmac.Equal(sig, want) {
		return errors.New("bad state signature")
	}
	expiry := time.Unix(int64(binary.BigEndian.Uint64(payload[16:])), 0)
	now := z.Now()
	if !now.Before(expiry) {
		return errors.New("state expired")
	}
	first, err := z.AcquireLease(ctx, "zoho-oauth-state:"+enc.EncodeToString(payload[:16]), "callback", now, expiry)
	if err != nil {
		return fmt.Errorf("record state use: %w", err)
	}
	if !first {
		return errors.New("state already used")
	}
	return nil
}

// Routes mounts the connect routes on mux; start needs the admin key.
func (z *Connect) Routes(mux *http.ServeMux, operator func(integration.HandlerFunc) http.Handler) {
	mux.Handle("GET /oauth/zoho/start", operator(z.start))
	mux.HandleFunc("GET /oauth/zoho/callback", z.callback)
}
