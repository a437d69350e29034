// Package app wires hitl-bridge together. It is the one place where
// configuration becomes clients, stores and handlers. Each Lambda function
// has a constructor that builds only what the function serves
// (NewWebhooks, NewActions, NewAdmin, NewRedelivery, NewTokenRefresh) and
// an AWS loader (LoadWebhooks, …); New builds the whole bridge in one
// process, for the local server, the demo and the tests.
package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin"
	"github.com/hitl-bridge/hitl-bridge/pkg/botpress"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/httpapi"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
	"github.com/hitl-bridge/hitl-bridge/pkg/media"
	"github.com/hitl-bridge/hitl-bridge/pkg/metrics"
)

// Options are what the constructors need besides the configuration.
type Options struct {
	Store hitl.Store
	Log   *slog.Logger
	// Client makes provider API calls and bot callbacks; nil for one with
	// sensible timeouts.
	Client *http.Client
	Now    func() time.Time
	// Documents opens the documents platforms keep for themselves
	// (integration.Runtime.Documents); nil opens none.
	Documents func(name, secretARN string) integration.Document
	// Metrics receives CloudWatch metrics (embedded metric format); nil
	// records none.
	Metrics *metrics.Recorder
	// ConfigSecret and IngressSecret, when both are set (the token refresh
	// function in AWS), make the credential refresh keep the ingress
	// secret equal to the ingress part of the config secret.
	ConfigSecret, IngressSecret integration.Document
}

// wiring is what every function shares: the configured platforms, the
// dispatcher that calls the bot back, and the bridge. Each function adds
// only the handlers or the scheduled work it serves.
type wiring struct {
	c          config.Config
	o          Options
	platforms  []platform
	dispatcher *delivery.Dispatcher
	bridge     *hitl.Bridge
	publicURL  string
}

// platform is a configured platform, wired.
type platform struct {
	name string
	integration.Parts
}

// wire validates c and wires each configured platform through its
// integration, the dispatcher and the bridge. With c.Ingress (the webhooks
// function) platforms wire no provider clients: the bridge verifies
// webhooks and forwards their events.
func wire(c config.Config, o Options) (*wiring, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if o.Client == nil {
		o.Client = defaultClient()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Documents == nil {
		o.Documents = func(string, string) integration.Document { return nil }
	}
	rt := integration.Runtime{
		Ingress: c.Ingress, Client: o.Client, Store: o.Store, Documents: o.Documents, PublicURL: c.PublicURL, Log: o.Log, Now: o.Now,
		// The largest file any platform takes (SalesIQ: 50 MiB); each asks
		// for its own limit per fetch.
		Media: media.NewFetcher(media.Config{AllowPrivate: c.AllowPrivateURLs, MaxBytes: 50 << 20}),
	}
	w := &wiring{c: c, o: o, publicURL: strings.TrimRight(c.PublicURL, "/")}
	providers := map[string]hitl.Provider{}
	for _, name := range c.Providers() {
		parts, err := c.Platforms[name].Wire(c.Secret.Blocks[name], rt)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if parts.Webhooks == nil {
			return nil, fmt.Errorf("%s: the integration wired no webhook parser", name)
		}
		if parts.Provider != nil {
			providers[name] = parts.Provider
		}
		w.platforms = append(w.platforms, platform{name: name, Parts: parts})
	}
	w.dispatcher = &delivery.Dispatcher{
		Store: o.Store, Log: o.Log, Now: o.Now,
		Senders: map[string]delivery.Sender{
			hitl.ChannelNative: &delivery.Callback{URL: c.BotCallbackURL, Secret: []byte(c.Secret.CallbackSigningSecret), Client: o.Client, Now: o.Now},
		},
	}
	for _, warning := range c.Warnings() {
		o.Log.Warn(warning)
	}
	if u := c.BotpressWebhookURL(); u != "" {
		w.dispatcher.Senders[botpress.Channel] = &botpress.Sender{WebhookURL: u, Client: o.Client}
	}
	if o.Metrics != nil {
		w.dispatcher.Store = &buryCounter{Store: w.dispatcher.Store, metrics: o.Metrics}
		for channel, s := range w.dispatcher.Senders {
			w.dispatcher.Senders[channel] = &deliveryCounter{Sender: s, metrics: o.Metrics}
		}
	}
	w.bridge = &hitl.Bridge{
		Store: o.Store, Providers: providers, DefaultProvider: c.Default(), Outbox: w.dispatcher, Log: o.Log, Now: o.Now,
		IdleTimeout: c.BotpressIdleTimeout,
	}
	return w, nil
}

// App is the whole bridge in one process (the local server, the demo and
// the tests): every function's handlers and scheduled work on one store.
type App struct {
	Bridge     *hitl.Bridge
	Dispatcher *delivery.Dispatcher
	Actions    http.Handler // native API, operator routes, platforms' routes, /healthz
	Webhooks   http.Handler // platform webhooks
	Log        *slog.Logger
	// Admin serves the operator routes (status, setup, /admin); they are
	// also part of Actions. The operator page is served once ServePage
	// gives it its renderer (package admin/page).
	Admin *admin.Handler
	w     *wiring
}

// New wires the whole bridge from a validated configuration.
func New(c config.Config, o Options) (*App, error) {
	w, err := wire(c, o)
	if err != nil {
		return nil, err
	}
	a := &App{Bridge: w.bridge, Dispatcher: w.dispatcher, Log: w.o.Log, w: w, Admin: w.operator()}
	a.Actions = w.actions(a.Admin)
	a.Webhooks = w.webhooks()
	return a, nil
}

// RefreshCredentials is the token refresh function's work (see
// NewTokenRefresh).
func (a *App) RefreshCredentials(ctx context.Context) error { return a.w.refreshCredentials(ctx) }

// Redeliver is the redelivery function's work (see NewRedelivery).
func (a *App) Redeliver(ctx context.Context) error { return a.w.redeliver(ctx) }

// Status runs the self-check against base (the bridge's public URL; the
// configured one when empty).
func (a *App) Status(ctx context.Context, base string) admin.Status {
	return a.w.checker().Check(ctx, cmp.Or(base, a.w.publicURL))
}

func defaultClient() *http.Client {
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
	}
}

// Handler serves every route of the HTTP functions, as the local process
// does, and answers non-canonical paths as the functions do (JSON 404, no
// redirect).
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", a.Webhooks)
	mux.Handle("/", a.Actions)
	return httpapi.Canonical(mux, a.Log)
}

// RunScheduled does the scheduled work in-process until ctx ends:
// Redeliver every interval, credential refresh every 5 minutes.
func (a *App) RunScheduled(ctx context.Context, interval time.Duration) {
	sweep := time.NewTicker(interval)
	refresh := time.NewTicker(5 * time.Minute)
	defer sweep.Stop()
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			if err := a.Redeliver(ctx); err != nil {
				a.Log.Error("redelivery", "err", err)
			}
		case <-refresh.C:
			if err := a.RefreshCredentials(ctx); err != nil {
				a.Log.Error("refresh provider credentials", "err", err)
			}
		}
	}
}
