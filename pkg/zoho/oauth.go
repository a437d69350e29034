package zoho

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// Scopes is what the org client asks for: conversations (open as a
// visitor, send, read, close — close needs SalesIQ.conversations.UPDATE),
// apps (read the app the visitor chats through), webhooks (the bridge
// creates its webhook and its keys: READ, CREATE, DELETE), departments (the
// self-check reads the configured one) and operators (the operator list
// tells who is available: SalesIQ.operators.READ). Zoho separates scopes
// with commas.
const Scopes = "SalesIQ.Conversations.ALL,SalesIQ.apps.read,SalesIQ.webhooks.ALL,SalesIQ.departments.READ,SalesIQ.operators.READ"

// Token is the integration's Zoho access token and what renews it. All of
// it is a credential: it logs and prints without its secrets.
type Token struct {
	AccessToken string    `json:"accessToken"`
	ExpiresAt   time.Time `json:"expiresAt"`
	// RefreshToken is set by Exchange; refreshes keep the one they used.
	RefreshToken string `json:"refreshToken,omitempty"`
	// APIDomain is the token's API server for Zoho's unified APIs; SalesIQ
	// has its own host per region.
	APIDomain string `json:"apiDomain,omitempty"`
}

// valid reports whether the token is usable for at least margin from now.
func (t Token) valid(now time.Time, margin time.Duration) bool {
	return t.AccessToken != "" && t.ExpiresAt.After(now.Add(margin))
}

// String hides the secrets from fmt.
func (t Token) String() string {
	return fmt.Sprintf("zoho.Token{expiresAt: %s}", t.ExpiresAt.UTC().Format(time.RFC3339))
}

// LogValue hides the secrets from slog.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("expires_at", t.ExpiresAt))
}

// OAuthError is a refusal from the accounts server. Zoho often answers it
// with HTTP 200, e.g. {"error":"invalid_code"} for a bad code or refresh
// token, or {"error":"Access Denied","error_description":"You have made too
// many requests continuously..."} past its limit of 10 tokens per refresh
// token per 10 minutes.
type OAuthError struct {
	Grant       string // authorization_code or refresh_token
	Status      int
	Code        string
	Description string
}

func (e *OAuthError) Error() string {
	s := fmt.Sprintf("zoho %s grant: HTTP %d: %s", e.Grant, e.Status, e.Code)
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// TooManyRequests reports whether Zoho refused because of its token limit.
func (e *OAuthError) TooManyRequests() bool {
	return strings.Contains(strings.ToLower(e.Description), "too many requests")
}

// OAuthConfig configures an OAuth.
type OAuthConfig struct {
	Region string // us, eu, in, au, cn, jp, ca, sa, uk
	// AccountsURL overrides the region's accounts server (simulators).
	AccountsURL  string
	ClientID     string
	ClientSecret string
	// RedirectURL is the bridge's callback, as registered with the client.
	RedirectURL string
	HTTPClient  *http.Client
	Now         func() time.Time
	// Timeout bounds each token request; default 10 s.
	Timeout time.Duration
}

// OAuth runs the org client's authorization-code flow and refreshes
// access tokens, through golang.org/x/oauth2 with the client credentials
// in the form body, as Zoho's accounts server wants them.
type OAuth struct {
	cfg         *oauth2.Config
	accountsURL string
	overridden  bool
	http        *http.Client
	now         func() time.Time
	timeout     time.Duration
}

// NewOAuth validates cfg and returns an OAuth.
func NewOAuth(cfg OAuthConfig) (*OAuth, error) {
	accounts, problems := serverURL(cfg.Region, cfg.AccountsURL, "accounts URL", func(r Region) string { return r.AccountsURL })
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		problems = append(problems, "client id and client secret are required")
	}
	if cfg.RedirectURL != "" && !hitl.HTTPURL(cfg.RedirectURL) {
		problems = append(problems, "redirect URL must be an absolute http(s) URL")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("zoho oauth config: %s", strings.Join(problems, "; "))
	}
	o := &OAuth{
		cfg: &oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       []string{Scopes},
			Endpoint: oauth2.Endpoint{
				AuthURL:   accounts + "/oauth/v2/org/auth",
				TokenURL:  accounts + "/oauth/v2/token",
				AuthStyle: oauth2.AuthStyleInParams,
			},
		},
		accountsURL: accounts,
		overridden:  cfg.AccountsURL != "",
		http:        cfg.HTTPClient,
		now:         cfg.Now,
		timeout:     cfg.Timeout,
	}
	if o.http == nil {
		o.http = &http.Client{}
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.timeout <= 0 {
		o.timeout = 10 * time.Second
	}
	return o, nil
}

// AuthCodeURL is where an admin authorizes the org client. state must be
// unguessable and checked on the way back. prompt=consent makes Zoho issue
// a refresh token on every authorization, not only the first.
func (o *OAuth) AuthCodeURL(state string) string {
	return o.cfg.AuthCodeURL(state, oauth2.AccessTypeOffline, oauth2.SetAuthURLParam("prompt", "consent"))
}

// Exchange trades the code of an OAuth redirect for a token. location and
// accounts-server are the redirect's parameters: the code is only sent to
// the configured data centre's accounts server (or the configured
// override), never to a server the redirect names.
func (o *OAuth) Exchange(ctx context.Context, code, location, accountsServer string) (Token, error) {
	if err := o.checkCallback(location, accountsServer); err != nil {
		return Token{}, err
	}
	if code == "" {
		return Token{}, errors.New("zoho oauth redirect carries no code")
	}
	tok, err := o.retrieve(ctx, "authorization_code", func(ctx context.Context) (*oauth2.Token, error) {
		return o.cfg.Exchange(ctx, code)
	})
	if err == nil && tok.RefreshToken == "" {
		err = errors.New("zoho authorization_code grant: answer has no refresh_token; authorize again with access_type=offline")
	}
	return tok, err
}

func (o *OAuth) checkCallback(location, accountsServer string) error {
	if o.overridden {
		if strings.TrimRight(accountsServer, "/") != o.accountsURL {
			return errors.New("oauth redirect: accounts-server is not the configured accounts server")
		}
		return nil
	}
	accounts, err := CallbackAccountsURL(location, accountsServer)
	if err != nil {
		return err
	}
	if accounts != o.accountsURL {
		return fmt.Errorf("oauth redirect: authorized in data centre %s, but the bridge is configured for another", location)
	}
	return nil
}

// Refresh mints an access token from refreshToken. Zoho allows 10 per
// refresh token per 10 minutes: callers go through Tokens, which keeps
// far below that.
func (o *OAuth) Refresh(ctx context.Context, refreshToken string) (Token, error) {
	if refreshToken == "" {
		return Token{}, errors.New("zoho refresh_token grant: no refresh token configured")
	}
	return o.retrieve(ctx, "refresh_token", func(ctx context.Context) (*oauth2.Token, error) {
		return o.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	})
}

// retrieve runs one token request with a timeout. x/oauth2 already treats
// an HTTP-200 answer carrying "error", or lacking access_token, as a
// failure; its errors are rewritten so that no response body reaches logs.
func (o *OAuth) retrieve(ctx context.Context, grant string, get func(context.Context) (*oauth2.Token, error)) (Token, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, o.http)
	tok, err := get(ctx)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			oe := &OAuthError{Grant: grant, Code: hitl.Clip(re.ErrorCode, 60, ""), Description: hitl.Clip(re.ErrorDescription, 200, "")}
			if re.Response != nil {
				oe.Status = re.Response.StatusCode
			}
			if oe.Code == "" {
				oe.Code = "unknown"
			}
			return Token{}, oe
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Token{}, fmt.Errorf("zoho %s grant: %w", grant, err)
	}
	// Zoho documents one hour; expires_in is what it says this time.
	ttl := time.Hour
	if tok.ExpiresIn > 0 {
		ttl = time.Duration(tok.ExpiresIn) * time.Second
	}
	out := Token{AccessToken: tok.AccessToken, ExpiresAt: o.now().Add(ttl), RefreshToken: tok.RefreshToken}
	if d, ok := tok.Extra("api_domain").(string); ok {
		out.APIDomain = d
	}
	return out, nil
}
