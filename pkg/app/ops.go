package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/httpapi"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/metrics"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
)

// ops is the operator side of an App: the providers' webhook setup, the
// self-check, the /admin page, metrics and webhook arrivals.
type ops struct {
	publicURL string
	metrics   *metrics.Recorder
	arrivals  *admin.Arrivals
	checker   *admin.Checker
	lease     func(ctx context.Context, name, owner string, now, until time.Time) (bool, error)
	now       func() time.Time

	livechat       *livechat.Client
	livechatSecret string

	zoho         *zoho.Client
	zohoTokens   zoho.TokenStore
	zohoWebhook  zoho.WebhookStore
	zohoRefresh  string // configured refresh token
	zohoClientAt func(tokens zoho.TokenSource) (*zoho.Client, error)
}

// wireOps adds the operator side to a: the admin routes in front of the
// actions handler, metrics and arrivals around the webhooks handler, the
// Zoho connect's checks and setup, and counting around the dispatcher.
func (a *App) wireOps(c config.Config, o Options, d *delivery.Dispatcher, providers map[string]hitl.Provider, connect *httpapi.ZohoConnect) {
	p := &ops{publicURL: strings.TrimRight(c.PublicURL, "/"), metrics: o.Metrics, lease: o.Store.AcquireLease, now: o.Now}
	p.arrivals = &admin.Arrivals{Clock: settings{o.Store}}
	var inspectors []admin.Provider
	if lc, ok := providers[hitl.LiveChat].(*livechat.Client); ok {
		p.livechat, p.livechatSecret = lc, c.Secret.LiveChat.WebhookSecret
		inspectors = append(inspectors, admin.Provider{Name: hitl.LiveChat, Inspect: p.inspectLiveChat})
	}
	if zc, ok := providers[hitl.Zoho].(*zoho.Client); ok {
		z := c.Zoho
		p.zoho, p.zohoTokens, p.zohoRefresh = zc, o.ZohoTokens, c.Secret.Zoho.RefreshToken
		p.zohoWebhook = settings{o.Store}
		p.zohoClientAt = func(tokens zoho.TokenSource) (*zoho.Client, error) {
			return zoho.NewClient(zoho.Config{Region: z.Region, SalesIQURL: z.SalesIQURL, ScreenName: z.ScreenName, AppID: z.AppID,
				DepartmentID: z.DepartmentID, Tokens: tokens, HTTPClient: o.Client, Logger: o.Log})
		}
		inspectors = append(inspectors, admin.Provider{Name: hitl.Zoho, Inspect: p.inspectZoho})
		if connect != nil {
			connect.Verify, connect.Setup = p.verifyZohoToken, p.setupZohoWith
		}
	}
	p.checker = &admin.Checker{Providers: inspectors, Store: o.Store, Clock: settings{o.Store}, Now: o.Now}
	a.ops = p
	cfg := admin.Config{
		Key: c.Secret.AdminAPIKey, Checker: p.checker, Replay: d.Replay, Setup: a.Setup,
		PublicURL: p.publicURL, Now: o.Now, Log: o.Log,
	}
	if p.zoho != nil {
		cfg.RotateZohoKey = func(ctx context.Context) (string, error) {
			k, err := p.zoho.RotateKey(ctx, p.zohoWebhook)
			return k.ID, err
		}
	}
	if connect != nil {
		cfg.ZohoAuthorizationURL = connect.AuthorizationURL
	}
	a.Admin = admin.NewHandler(cfg)
	a.Actions = a.Admin.Mount(timeHandoffs(a.Actions, p.metrics, o.Now))
	a.Webhooks = p.observeWebhooks(a.Webhooks)
	if p.metrics != nil {
		d.Store = buryCounter{Store: d.Store, metrics: p.metrics}
		for channel, s := range d.Senders {
			d.Senders[channel] = deliveryCounter{Sender: s, metrics: p.metrics}
		}
	}
}

func (p *ops) inspectLiveChat(ctx context.Context, base string) []health.Check {
	return p.livechat.Inspect(ctx, livechat.SetupConfig{URL: webhookURL(base, hitl.LiveChat), Secret: p.livechatSecret})
}

// zohoConnected reports whether a refresh token is stored or configured.
func (p *ops) zohoConnected(ctx context.Context) (zoho.Token, bool, error) {
	t, err := p.zohoTokens.Load(ctx)
	if err != nil {
		return t, false, fmt.Errorf("load zoho token: %w", err)
	}
	return t, t.RefreshToken != "" || p.zohoRefresh != "", nil
}

var zohoNotConnected = health.Failed("connected", "Zoho SalesIQ is not connected: no refresh token is stored or configured",
	"connect it: the Connect Zoho SalesIQ button of /admin (or GET /oauth/zoho/start with the admin key), approved by an admin of the SalesIQ portal")

func (p *ops) inspectZoho(ctx context.Context, base string) []health.Check {
	t, connected, err := p.zohoConnected(ctx)
	switch {
	case err != nil:
		return []health.Check{health.Failed("connected", "the Zoho token secret could not be read", "see the function's log")}
	case !connected:
		return []health.Check{zohoNotConnected}
	}
	checks := []health.Check{health.Passed("connected", "a refresh token is stored")}
	checks = append(checks, p.zoho.Inspect(ctx, zoho.SetupConfig{URL: webhookURL(base, hitl.Zoho), Store: p.zohoWebhook})...)
	// The checks above renewed the token if it was due: read it again.
	if fresh, err := p.zohoTokens.Load(ctx); err == nil {
		t = fresh
	}
	now := p.now()
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

// verifyZohoToken checks a token the OAuth connect obtained, before it is
// kept: the portal, department and app exist and the token has the scopes.
func (p *ops) verifyZohoToken(ctx context.Context, t zoho.Token) []health.Check {
	c, err := p.zohoClientAt(zoho.StaticToken(t.AccessToken))
	if err != nil {
		return []health.Check{health.Failed("settings", "the bridge's Zoho settings are incomplete", "see the function's log")}
	}
	return c.Verify(ctx)
}

// setupZohoWith creates the bridge's SalesIQ webhook with the token the
// connect just stored. The token secret is read again by the next
// container; this one keeps using its Tokens.
func (p *ops) setupZohoWith(ctx context.Context, t zoho.Token, base string) (zoho.SetupResult, error) {
	c, err := p.zohoClientAt(zoho.StaticToken(t.AccessToken))
	if err != nil {
		return zoho.SetupResult{}, err
	}
	return c.SetupWebhook(ctx, zoho.SetupConfig{URL: webhookURL(cmpOr(p.publicURL, base), hitl.Zoho), Store: p.zohoWebhook})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return strings.TrimRight(b, "/")
}

func webhookURL(base, provider string) string {
	return strings.TrimRight(base, "/") + "/webhooks/" + provider
}

// Setup registers the providers' webhooks to base (the bridge's public
// URL): LiveChat's through the Configuration API, SalesIQ's webhook and
// its key when Zoho is connected. Problems come back as checks; the error
// is only for a run that could not start.
func (a *App) Setup(ctx context.Context, base string) (admin.SetupReport, error) {
	p := a.ops
	rep := admin.SetupReport{Providers: map[string]any{}, Checks: []health.Check{}}
	if base == "" {
		return rep, hitl.Errorf(hitl.CodeInvalid, "the bridge's public URL is not set: set PUBLIC_URL")
	}
	add := func(provider string, checks []health.Check, err error) {
		if err != nil {
			a.Log.Error("webhook setup", "provider", provider, "err", err)
			if len(checks) == 0 {
				checks = []health.Check{health.Failed("setup", "the setup did not complete", "see the function's log; the next scheduled run tries again")}
			}
		}
		for _, c := range checks {
			c.Name = provider + ": " + c.Name
			rep.Checks = append(rep.Checks, c)
		}
	}
	if p.livechat != nil {
		res, err := p.livechat.SetupWebhooks(ctx, livechat.SetupConfig{URL: webhookURL(base, hitl.LiveChat), Secret: p.livechatSecret, Lease: p.lease})
		rep.Providers[hitl.LiveChat] = res
		add(hitl.LiveChat, res.Checks, err)
	}
	if p.zoho != nil {
		_, connected, err := p.zohoConnected(ctx)
		switch {
		case err != nil:
			add(hitl.Zoho, nil, err)
		case !connected:
			add(hitl.Zoho, []health.Check{zohoNotConnected}, nil)
		default:
			res, err := p.zoho.SetupWebhook(ctx, zoho.SetupConfig{URL: webhookURL(base, hitl.Zoho), Store: p.zohoWebhook})
			rep.Providers[hitl.Zoho] = res
			add(hitl.Zoho, res.Checks, err)
		}
	}
	return rep, nil
}

// Status runs the self-check against base (the bridge's public URL; the
// configured one when empty).
func (a *App) Status(ctx context.Context, base string) admin.Status {
	return a.ops.checker.Check(ctx, cmpOr(base, a.ops.publicURL))
}

// scheduledSetup runs Setup on the scheduled credential refresh, so a
// webhook deleted in a provider's console comes back by itself.
func (a *App) scheduledSetup(ctx context.Context) error {
	if a.ops.publicURL == "" {
		a.Log.Warn("webhook setup skipped: PUBLIC_URL is not set")
		return nil
	}
	rep, err := a.Setup(ctx, a.ops.publicURL)
	if err != nil {
		return err
	}
	if len(rep.Checks) > 0 {
		names := make([]string, len(rep.Checks))
		for i, c := range rep.Checks {
			names[i] = c.Name
		}
		a.Log.Warn("webhook setup found problems", "checks", names)
	}
	return nil
}

// observeWebhooks counts refused deliveries and records arrivals.
func (p *ops) observeWebhooks(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		provider, ok := strings.CutPrefix(r.URL.Path, "/webhooks/")
		if !ok || (provider != hitl.LiveChat && provider != hitl.Zoho) || r.Method != http.MethodPost {
			return
		}
		switch {
		case sw.status == http.StatusUnauthorized:
			p.metrics.Count(metrics.WebhooksRefused, provider, 1)
		case sw.status >= 200 && sw.status <= 299:
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Second)
			defer cancel()
			_ = p.arrivals.Seen(ctx, provider, p.now())
		}
	})
}

// timeHandoffs records how long a startHitl took to open the provider
// conversation.
func timeHandoffs(next http.Handler, m *metrics.Recorder, now func() time.Time) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/sessions" {
			next.ServeHTTP(w, r)
			return
		}
		start := now()
		sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if sw.status == http.StatusCreated {
			m.Duration(metrics.HandoffLatency, "", now().Sub(start))
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	once   sync.Once
}

func (w *statusRecorder) WriteHeader(status int) {
	w.once.Do(func() { w.status = status })
	w.ResponseWriter.WriteHeader(status)
}

// buryCounter counts outboxes moved to the dead letters.
type buryCounter struct {
	delivery.Store
	metrics *metrics.Recorder
}

func (s buryCounter) Bury(ctx context.Context, sessionID, owner string, at time.Time) error {
	err := s.Store.Bury(ctx, sessionID, owner, at)
	if err == nil {
		s.metrics.Count(metrics.DeadLettered, "", 1)
	}
	return err
}

// deliveryCounter counts callbacks the bot accepted.
type deliveryCounter struct {
	delivery.Sender
	metrics *metrics.Recorder
}

func (s deliveryCounter) Send(ctx context.Context, e hitl.Event) error {
	err := s.Sender.Send(ctx, e)
	if err != nil {
		return err
	}
	s.metrics.Count(metrics.EventsDelivered, e.Provider, 1)
	if m := e.Metrics; e.Type == hitl.EventStopped && m != nil {
		s.metrics.Count(metrics.HandoffsEnded, e.Provider, 1)
		if m.Abandoned {
			s.metrics.Count(metrics.HandoffsAbandoned, e.Provider, 1)
		}
		for name, v := range map[string]*float64{
			metrics.TimeToAssignment: m.TimeToAssignmentSeconds, metrics.TimeToFirstReply: m.TimeToFirstReplySeconds,
			metrics.HandoffDuration: m.DurationSeconds,
		} {
			if v != nil {
				s.metrics.Seconds(name, e.Provider, *v)
			}
		}
	}
	return nil
}
