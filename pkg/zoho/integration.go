package zoho

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin"
	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
)

// Integration is Zoho SalesIQ as the bridge composes it: turned on by
// ZOHO_SCREEN_NAME, with its "zoho" block of the config secret, the token
// document (ZOHO_TOKEN_SECRET_ARN), the OAuth connect routes and the
// webhook key rotation.
func Integration() integration.Integration {
	return integration.Integration{Name: hitl.Zoho, EnabledBy: "ZOHO_SCREEN_NAME", Configure: configure}
}

// Settings are Zoho SalesIQ's environment settings.
type Settings struct {
	Region       string // ZOHO_REGION: us, eu, in, au, cn, jp, ca, sa, uk
	ScreenName   string // ZOHO_SCREEN_NAME
	AppID        string // ZOHO_APP_ID
	DepartmentID string // ZOHO_DEPARTMENT_ID
	OrgID        string // ZOHO_ORG_ID
	// AccountsURL and SalesIQURL (ZOHO_ACCOUNTS_URL, ZOHO_SALESIQ_URL)
	// override the region's hosts (simulators).
	AccountsURL string
	SalesIQURL  string
	// TokenSecretARN (ZOHO_TOKEN_SECRET_ARN) is where the current token
	// lives in AWS.
	TokenSecretARN string
	// OAuthStateSecretARN (ZOHO_OAUTH_STATE_SECRET_ARN) is where the key
	// that signs OAuth states lives in AWS; set for the function that
	// serves the connect flow only.
	OAuthStateSecretARN string
}

// ConfigSecret is the config secret's "zoho" block. Its values are
// credentials: never log them.
type ConfigSecret struct {
	ClientID          string   `json:"clientId"`
	ClientSecret      string   `json:"clientSecret"`
	RefreshToken      string   `json:"refreshToken"`
	WebhookPublicKeys []string `json:"webhookPublicKeys"`
}

// Document names of the token and of the OAuth state key (locally
// zoho-token.json and zoho-oauth-state.json beside the store).
const (
	tokenDocument      = "zoho-token"
	oauthStateDocument = "zoho-oauth-state"
)

func configure(env integration.Env) (integration.Platform, error) {
	getenv := env.Getenv
	s := &Settings{
		Region: getenv("ZOHO_REGION"), ScreenName: getenv("ZOHO_SCREEN_NAME"), AppID: getenv("ZOHO_APP_ID"),
		DepartmentID: getenv("ZOHO_DEPARTMENT_ID"), OrgID: getenv("ZOHO_ORG_ID"),
		AccountsURL: getenv("ZOHO_ACCOUNTS_URL"), SalesIQURL: getenv("ZOHO_SALESIQ_URL"),
		TokenSecretARN: getenv("ZOHO_TOKEN_SECRET_ARN"), OAuthStateSecretARN: getenv("ZOHO_OAUTH_STATE_SECRET_ARN"),
	}
	var errs []error
	if _, err := LookupRegion(s.Region); err != nil {
		errs = append(errs, fmt.Errorf("ZOHO_REGION: %w", err))
	}
	for _, f := range []struct{ name, value string }{{"ZOHO_APP_ID", s.AppID}, {"ZOHO_DEPARTMENT_ID", s.DepartmentID}, {"ZOHO_ORG_ID", s.OrgID}} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("%s is required with ZOHO_SCREEN_NAME", f.name))
		}
	}
	for _, f := range []struct{ name, value string }{{"ZOHO_ACCOUNTS_URL", s.AccountsURL}, {"ZOHO_SALESIQ_URL", s.SalesIQURL}} {
		if f.value != "" {
			errs = append(errs, integration.CheckURL(f.name, f.value, env.AllowPrivateURLs))
		}
	}
	return s, errors.Join(errs...)
}

// CheckSecret checks the zoho block.
func (s *Settings) CheckSecret(block json.RawMessage, ingress bool) error {
	sec, err := integration.DecodeBlock[ConfigSecret](hitl.Zoho, block)
	if err != nil {
		return err
	}
	var errs []error
	if !ingress && (sec.ClientID == "" || sec.ClientSecret == "") {
		errs = append(errs, errors.New("config secret: zoho.clientId and zoho.clientSecret are required"))
	}
	if len(sec.WebhookPublicKeys) > 2 {
		errs = append(errs, errors.New("config secret: zoho.webhookPublicKeys takes at most two keys"))
	}
	return errors.Join(errs...)
}

// Wire builds SalesIQ's parts. The webhooks function gets the verifier
// only: the keys of the config secret and those the bridge created, which
// it reads from the store (deliveries are refused until there is one).
func (s *Settings) Wire(block json.RawMessage, rt integration.Runtime) (integration.Parts, error) {
	sec, err := integration.DecodeBlock[ConfigSecret](hitl.Zoho, block)
	if err != nil {
		return integration.Parts{}, err
	}
	hooks := &webhookSetting{rt.Store}
	verifier := NewVerifier(VerifierConfig{
		ConfiguredKeys: sec.WebhookPublicKeys, Store: hooks, AppID: s.AppID, OrgID: s.OrgID, Now: rt.Now, Logger: rt.Log,
	})
	parts := integration.Parts{Webhooks: verifier}
	if rt.Ingress {
		parts.Preload = verifier.Preload
		return parts, nil
	}
	doc := rt.Documents(tokenDocument, s.TokenSecretARN)
	if doc == nil {
		return parts, errors.New("ZOHO_TOKEN_SECRET_ARN is required with Zoho")
	}
	store := TokenDocument(doc)
	oauthFor := func(redirectURL string) (*OAuth, error) {
		return NewOAuth(OAuthConfig{
			Region: s.Region, AccountsURL: s.AccountsURL, ClientID: sec.ClientID, ClientSecret: sec.ClientSecret,
			RedirectURL: redirectURL, HTTPClient: rt.Client, Now: rt.Now,
		})
	}
	oauth, err := oauthFor("")
	if err != nil {
		return parts, err
	}
	tokens, err := NewTokens(TokensConfig{
		OAuth: oauth, Store: store, Lease: rt.Store.AcquireLease, RefreshToken: sec.RefreshToken, Now: rt.Now, Logger: rt.Log,
	})
	if err != nil {
		return parts, err
	}
	clientWith := func(tokens TokenSource) (*Client, error) {
		return NewClient(Config{
			Region: s.Region, SalesIQURL: s.SalesIQURL, ScreenName: s.ScreenName, AppID: s.AppID, DepartmentID: s.DepartmentID,
			Tokens: tokens, HTTPClient: rt.Client, Media: rt.Media, Logger: rt.Log,
		})
	}
	client, err := clientWith(tokens)
	if err != nil {
		return parts, err
	}
	ops := &operations{client: client, clientWith: clientWith, tokens: store, hooks: hooks, refresh: sec.RefreshToken, publicURL: rt.PublicURL, now: rt.Now}
	connect := &Connect{
		OAuth: oauthFor, Save: store.Save, StateKey: (&stateKey{doc: rt.Documents(oauthStateDocument, s.OAuthStateSecretARN)}).get,
		AcquireLease: rt.Store.AcquireLease, Now: rt.Now, Log: rt.Log, Verify: ops.verify, Setup: ops.setupWith,
	}
	parts.Provider = client
	parts.Refresh = func(ctx context.Context) error { return tokens.Refresh(ctx, false) }
	parts.Preload = tokens.Preload
	parts.Routes = connect.Routes
	parts.Inspect = ops.inspect
	parts.Setup = ops.setup
	parts.Actions = []admin.Action{
		{Name: "connect", Label: "Connect Zoho SalesIQ", Run: func(ctx context.Context, base string) (admin.ActionResult, error) {
			u, err := connect.AuthorizationURL(ctx, base)
			return admin.ActionResult{JSON: map[string]string{"authorizationUrl": u}, Redirect: u}, err
		}},
		{Name: "rotate-key", Label: "Rotate the SalesIQ webhook key", Run: func(ctx context.Context, _ string) (admin.ActionResult, error) {
			k, err := client.RotateKey(ctx, hooks)
			return admin.ActionResult{JSON: map[string]string{"keyId": k.ID},
				Message: "New SalesIQ webhook key " + k.ID + " in use; the old one is dropped at the next delivery."}, err
		}},
	}
	parts.Ingress = func(_ context.Context, block json.RawMessage) (json.RawMessage, error) {
		full, err := integration.DecodeBlock[ConfigSecret](hitl.Zoho, block)
		if err != nil {
			return nil, err
		}
		return json.Marshal(ConfigSecret{WebhookPublicKeys: full.WebhookPublicKeys})
	}
	return parts, nil
}

// operations are the self-check, the webhook setup and the connect's
// checks.
type operations struct {
	client     *Client
	clientWith func(tokens TokenSource) (*Client, error)
	tokens     TokenStore
	hooks      WebhookStore
	refresh    string // the configured refresh token
	publicURL  string
	now        func() time.Time
}

var notConnected = health.Failed("connected", "Zoho SalesIQ is not connected: no refresh token is stored or configured",
	"connect it: the Connect Zoho SalesIQ button of /admin (or GET /oauth/zoho/start with the admin key), approved by an admin of the SalesIQ portal")

// connected reports whether a refresh token is stored or configured.
func (o *operations) connected(ctx context.Context) (Token, bool, error) {
	t, err := o.tokens.Load(ctx)
	if err != nil {
		return t, false, fmt.Errorf("load zoho token: %w", err)
	}
	return t, t.RefreshToken != "" || o.refresh != "", nil
}

func (o *operations) inspect(ctx context.Context, webhookURL string) []health.Check {
	t, connected, err := o.connected(ctx)
	switch {
	case err != nil:
		return []health.Check{health.Failed("connected", "the Zoho token secret could not be read", "see the function's log")}
	case !connected:
		return []health.Check{notConnected}
	}
	checks := []health.Check{health.Passed("connected", "a refresh token is stored")}
	checks = append(checks, o.client.Inspect(ctx, SetupConfig{URL: webhookURL, Store: o.hooks})...)
	// The checks above renewed the token if it was due: read it again.
	if fresh, err := o.tokens.Load(ctx); err == nil {
		t = fresh
	}
	now := o.now()
	switch {
	case t.ExpiresAt.IsZero():
		checks = append(checks, health.Warning("token expiry", "no access token is stored yet", "none: the next scheduled run (every 5 minutes) mints one"))
	case !t.ExpiresAt.After(now):
		checks = append(checks, health.Failed("token expiry", "the stored access token expired at "+t.ExpiresAt.UTC().Format(time.RFC3339),
			"see the credentials checks above; the scheduled run renews it 15 minutes before it expires"))
	default:
		checks = append(checks, health.Passed("token expiry", "the access token is valid until "+t.ExpiresAt.UTC().Format(time.RFC3339)))
	}
	return checks
}

// setup creates or repairs the SalesIQ webhook and its key, once Zoho is
// connected.
func (o *operations) setup(ctx context.Context, webhookURL string) (any, []health.Check, error) {
	_, connected, err := o.connected(ctx)
	switch {
	case err != nil:
		return nil, nil, err
	case !connected:
		return nil, []health.Check{notConnected}, nil
	}
	res, err := o.client.SetupWebhook(ctx, SetupConfig{URL: webhookURL, Store: o.hooks})
	return res, res.Checks, err
}

// verify checks a token the OAuth connect obtained, before it is kept: the
// portal, department and app exist and the token has the scopes.
func (o *operations) verify(ctx context.Context, t Token) []health.Check {
	c, err := o.clientWith(StaticToken(t.AccessToken))
	if err != nil {
		return []health.Check{health.Failed("settings", "the bridge's Zoho settings are incomplete", "see the function's log")}
	}
	return c.Verify(ctx)
}

// setupWith creates the bridge's SalesIQ webhook with the token the
// connect just stored, under the public URL or else the connect request's
// base. The token document is read again by the next container; this one
// keeps using its Tokens.
func (o *operations) setupWith(ctx context.Context, t Token, base string) (SetupResult, error) {
	c, err := o.clientWith(StaticToken(t.AccessToken))
	if err != nil {
		return SetupResult{}, err
	}
	if o.publicURL != "" {
		base = o.publicURL
	}
	return c.SetupWebhook(ctx, SetupConfig{URL: integration.WebhookURL(base, hitl.Zoho), Store: o.hooks})
}

// TokenDocument keeps the token in a JSON document (a secret in AWS, a
// file locally).
func TokenDocument(doc integration.Document) TokenStore { return &tokenDoc{doc} }

type tokenDoc struct{ doc integration.Document }

func (d *tokenDoc) Load(ctx context.Context) (Token, error) {
	var t Token
	err := d.doc.Load(ctx, &t)
	return t, err
}

func (d *tokenDoc) Save(ctx context.Context, t Token) error { return d.doc.Save(ctx, t) }

// webhookSetting keeps the SalesIQ webhook and its public keys as a store
// setting (a public key is no secret), so the webhooks function verifies
// deliveries without access to the token.
type webhookSetting struct{ store integration.Store }

// webhookSettingName names the SalesIQ webhook's setting.
const webhookSettingName = "zoho.webhook"

func (s *webhookSetting) LoadWebhook(ctx context.Context) (WebhookState, error) {
	var w WebhookState
	raw, err := s.store.Setting(ctx, webhookSettingName)
	if err != nil || raw == nil {
		return w, err
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return w, fmt.Errorf("decode the zoho webhook setting: %w", err)
	}
	return w, nil
}

func (s *webhookSetting) SaveWebhook(ctx context.Context, w WebhookState) error {
	raw, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return s.store.SaveSetting(ctx, webhookSettingName, raw)
}

// stateKey is the key that signs OAuth states: random, of its own, read
// once from its document; generated and saved when the document has none
// (the local process's first connect; in AWS CloudFormation generates it).
// Without a document it lives in memory: states then work only within one
// process.
type stateKey struct {
	doc integration.Document
	mu  sync.Mutex
	key []byte
}

// minStateKey is the shortest key accepted from the document.
const minStateKey = 32

func (k *stateKey) get(ctx context.Context) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil {
		return k.key, nil
	}
	var d struct {
		StateKey string `json:"stateKey"`
	}
	if k.doc != nil {
		if err := k.doc.Load(ctx, &d); err != nil {
			return nil, fmt.Errorf("load oauth state key: %w", err)
		}
	}
	if len(d.StateKey) < minStateKey {
		d.StateKey = rand.Text() + rand.Text() // 256 bits
		if k.doc != nil {
			if err := k.doc.Save(ctx, d); err != nil {
				return nil, fmt.Errorf("save a new oauth state key: %w", err)
			}
		}
	}
	k.key = []byte(d.StateKey)
	return k.key, nil
}
