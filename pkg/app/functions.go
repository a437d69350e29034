package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin"
	"github.com/hitl-bridge/hitl-bridge/pkg/botpress"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/httpapi"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
	"github.com/hitl-bridge/hitl-bridge/pkg/metrics"
)

// Each Lambda function has its constructor here, which wires only what
// the function serves; New (app.go) builds all of them in one process.

// Webhooks is the webhooks function: POST /webhooks/{provider}.
type Webhooks struct {
	http.Handler
	// Bridge records the webhooks' events and calls the bot back; it has
	// no provider: the function never calls a platform.
	Bridge *hitl.Bridge
}

// NewWebhooks wires the webhooks function from the ingress part of
// c.Secret (config.Secret.Ingress: the config secret's part the function
// needs, or the whole ingress secret): webhook verification and parsing,
// recording, and the dispatcher to the bot.
func NewWebhooks(c config.Config, o Options) (*Webhooks, error) {
	c.Ingress = true
	c.Secret = c.Secret.Ingress(c.Secret.Blocks)
	w, err := wire(c, o)
	if err != nil {
		return nil, err
	}
	w.preload()
	return &Webhooks{Handler: w.webhooks(), Bridge: w.bridge}, nil
}

// NewActions wires the actions function: the native bot API, the other
// bots' contracts (Botpress), the platforms' routes (Zoho's OAuth), the
// JSON operator routes and /healthz. The operator page is the admin
// function's.
func NewActions(c config.Config, o Options) (http.Handler, error) {
	w, err := wire(c, o)
	if err != nil {
		return nil, err
	}
	w.preload()
	return w.actions(w.operator()), nil
}

// NewAdmin wires the admin function: the operator page, /admin and
// /admin/…, rendered by render (package admin/page, which only this
// function and the local process link: the template engine keeps every
// method of every type in a binary).
func NewAdmin(c config.Config, o Options, render admin.Page) (http.Handler, error) {
	w, err := wire(c, o)
	if err != nil {
		return nil, err
	}
	h := w.operator()
	h.ServePage(render)
	return httpapi.Canonical(h.Mount(httpapi.NotFound(w.o.Log)), w.o.Log), nil
}

// NewRedelivery wires the redelivery function's every-minute work:
// outboxes due for a retry, and Botpress sessions idle past their timeout
// (closed at their platform).
func NewRedelivery(c config.Config, o Options) (func(context.Context) error, error) {
	w, err := wire(c, o)
	if err != nil {
		return nil, err
	}
	return w.redeliver, nil
}

// NewTokenRefresh wires the token refresh function's work, every 5
// minutes: visitor credentials that expire within the hour (LiveChat
// customer tokens), then each platform's own (the Zoho access token); then
// the webhook setup, so a webhook deleted in a platform's console comes
// back by itself; and with o.ConfigSecret and o.IngressSecret, the ingress
// secret derived from the config secret.
func NewTokenRefresh(c config.Config, o Options) (func(context.Context) error, error) {
	w, err := wire(c, o)
	if err != nil {
		return nil, err
	}
	return w.refreshCredentials, nil
}

// preload starts the platforms' Preload reads: the webhooks and actions
// functions' events need them (the scheduled ones often do not).
func (w *wiring) preload() {
	for _, p := range w.platforms {
		if p.Preload != nil {
			p.Preload()
		}
	}
}

// webhooks is the handler of POST /webhooks/{provider}, counting refused
// deliveries and recording arrivals.
func (w *wiring) webhooks() http.Handler {
	parsers := map[string]integration.WebhookParser{}
	for _, p := range w.platforms {
		parsers[p.name] = p.Webhooks
	}
	return w.observeWebhooks(httpapi.Webhooks(w.bridge, parsers, w.o.Log))
}

// actions is the actions function's handler, with op's routes in front.
func (w *wiring) actions(op *admin.Handler) http.Handler {
	var routes []func(*http.ServeMux, func(integration.HandlerFunc) http.Handler)
	for _, p := range w.platforms {
		if p.Routes != nil {
			routes = append(routes, p.Routes)
		}
	}
	h := httpapi.Actions(httpapi.ActionsConfig{
		Bridge: w.bridge, DeadLetters: w.dispatcher, BotAPIKeys: w.c.Secret.BotAPIKeys, AdminAPIKey: w.c.Secret.AdminAPIKey,
		BotRoutes:      []func(*http.ServeMux){botpress.Routes{Bridge: w.bridge, PathToken: w.c.Secret.BotpressPathToken, Log: w.o.Log}.Mount},
		PlatformRoutes: routes, Log: w.o.Log,
	})
	return op.Mount(timeHandoffs(h, w.o.Metrics, w.o.Now))
}

// redeliver runs the sweep and the idle sessions' ending side by side. Both
// may deliver to the same session (ending one records hitl.stopped in its
// outbox); its delivery lease keeps that in order.
func (w *wiring) redeliver(ctx context.Context) error {
	var (
		ended   int
		idleErr error
		idle    sync.WaitGroup
	)
	idle.Go(func() { ended, idleErr = w.bridge.ExpireIdle(ctx) })
	n, err := w.dispatcher.Sweep(ctx)
	w.o.Log.Info("outbox sweep", "sessions", n)
	idle.Wait()
	w.o.Log.Info("idle sessions ended", "count", ended)
	return errors.Join(err, idleErr)
}

func (w *wiring) refreshCredentials(ctx context.Context) error {
	n, err := w.bridge.RefreshVisitors(ctx, time.Hour)
	w.o.Log.Info("visitor credentials refreshed", "count", n)
	visitorErr := err // the platforms' own refreshes add to err below
	for _, p := range w.platforms {
		if _, ok := p.Provider.(hitl.VisitorRefresher); ok && visitorErr != nil {
			w.o.Metrics.Count(metrics.TokenRefreshFailures, p.name, 1)
		}
		if p.Refresh == nil {
			continue
		}
		if perr := p.Refresh(ctx); perr != nil {
			w.o.Metrics.Count(metrics.TokenRefreshFailures, p.name, 1)
			err = errors.Join(err, fmt.Errorf("%s: %w", p.name, perr))
		}
	}
	err = errors.Join(err, w.scheduledSetup(ctx))
	if w.o.ConfigSecret != nil && w.o.IngressSecret != nil {
		err = errors.Join(err, w.syncIngress(ctx))
	}
	return err
}
