// Package app wires hitl-bridge together. It is the one place where
// configuration becomes clients, stores and handlers, for the Lambda
// functions and the local server alike.
package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin"
	"github.com/hitl-bridge/hitl-bridge/pkg/botpress"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/httpapi"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
	"github.com/hitl-bridge/hitl-bridge/pkg/media"
	"github.com/hitl-bridge/hitl-bridge/pkg/metrics"
	"github.com/hitl-bridge/hitl-bridge/pkg/secrets"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/dynamo"
)

// App is a wired bridge.
type App struct {
	Bridge     *hitl.Bridge
	Dispatcher *delivery.Dispatcher
	Actions    http.Handler // native API, operator routes, platforms' routes, /healthz
	Webhooks   http.Handler // platform webhooks
	Log        *slog.Logger
	// Admin serves the operator routes (status, setup, /admin); they are
	// also part of Actions.
	Admin     *admin.Handler
	ops       *ops
	platforms []platform // the configured platforms, wired

	ingress *ingressSync // the token refresh function's only
}

// platform is a configured platform, wired.
type platform struct {
	name string
	integration.Parts
}

// Options are what New needs besides the configuration.
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
}

// New wires an App from a validated configuration: each configured
// platform through its integration. With c.Ingress (the webhooks function)
// platforms wire no provider clients: the App verifies webhooks and
// forwards their events.
func New(c config.Config, o Options) (*App, error) {
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
	providers := map[string]hitl.Provider{}
	parsers := map[string]integration.WebhookParser{}
	var platforms []platform
	var routes []func(*http.ServeMux, func(integration.HandlerFunc) http.Handler)
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
		parsers[name] = parts.Webhooks
		if parts.Routes != nil {
			routes = append(routes, parts.Routes)
		}
		platforms = append(platforms, platform{name: name, Parts: parts})
	}
	d := &delivery.Dispatcher{
		Store: o.Store, Log: o.Log, Now: o.Now,
		Senders: map[string]delivery.Sender{
			hitl.ChannelNative: &delivery.Callback{URL: c.BotCallbackURL, Secret: []byte(c.Secret.CallbackSigningSecret), Client: o.Client, Now: o.Now},
		},
	}
	for _, w := range c.Warnings() {
		o.Log.Warn(w)
	}
	if u := c.BotpressWebhookURL(); u != "" {
		d.Senders[botpress.Channel] = &botpress.Sender{WebhookURL: u, Client: o.Client}
	}
	b := &hitl.Bridge{
		Store: o.Store, Providers: providers, DefaultProvider: c.Default(), Outbox: d, Log: o.Log, Now: o.Now,
		IdleTimeout: c.BotpressIdleTimeout,
	}
	a := &App{
		Bridge: b, Dispatcher: d, Log: o.Log, platforms: platforms,
		Actions: httpapi.Actions(httpapi.ActionsConfig{
			Bridge: b, DeadLetters: d, BotAPIKeys: c.Secret.BotAPIKeys, AdminAPIKey: c.Secret.AdminAPIKey,
			BotRoutes:      []func(*http.ServeMux){botpress.Routes{Bridge: b, PathToken: c.Secret.BotpressPathToken, Log: o.Log}.Mount},
			PlatformRoutes: routes, Log: o.Log,
		}),
		Webhooks: httpapi.Webhooks(b, parsers, o.Log),
	}
	a.wireOps(c, o, d)
	return a, nil
}

// RefreshCredentials is the scheduled renewal of credentials: visitor
// credentials that expire within the hour (LiveChat customer tokens), then
// each platform's own (the Zoho access token); then the webhook setup, so
// a webhook deleted in a platform's console comes back by itself; in AWS
// it also keeps the ingress secret derived from the config secret.
func (a *App) RefreshCredentials(ctx context.Context) error {
	n, err := a.Bridge.RefreshVisitors(ctx, time.Hour)
	a.Log.Info("visitor tokens refreshed", "count", n)
	for _, p := range a.platforms {
		if _, ok := p.Provider.(hitl.VisitorRefresher); ok && err != nil {
			a.ops.metrics.Count(metrics.TokenRefreshFailures, p.name, 1)
		}
		if p.Refresh == nil {
			continue
		}
		if perr := p.Refresh(ctx); perr != nil {
			a.ops.metrics.Count(metrics.TokenRefreshFailures, p.name, 1)
			err = errors.Join(err, fmt.Errorf("%s: %w", p.name, perr))
		}
	}
	err = errors.Join(err, a.scheduledSetup(ctx))
	if a.ingress != nil {
		err = errors.Join(err, a.ingress.sync(ctx))
	}
	return err
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

// LoadAWS wires the App of a Lambda function that reads the config
// secret (actions, redelivery, token refresh): settings from the
// environment, the config secret from Secrets Manager, DynamoDB as store.
// With INGRESS_SECRET_ARN set (the token refresh function),
// RefreshCredentials also keeps the ingress secret derived from the config
// secret. Clients are built once, at cold start.
func LoadAWS(ctx context.Context, log *slog.Logger) (*App, error) { return loadAWS(ctx, log, false) }

// LoadAWSIngress wires the webhooks function's App: it reads the ingress
// secret (INGRESS_SECRET_ARN) instead of the config secret, so it holds
// only what verifying webhooks and calling the bot back needs, and no
// provider, bot API or operator credential.
func LoadAWSIngress(ctx context.Context, log *slog.Logger) (*App, error) {
	a, err := loadAWS(ctx, log, true)
	if err != nil {
		return nil, fmt.Errorf("%w\n(the ingress secret is derived from the config secret by the token refresh function, every 5 minutes: fill the config secret, then wait or invoke that function once)", err)
	}
	return a, nil
}

func loadAWS(ctx context.Context, log *slog.Logger, ingress bool) (*App, error) {
	c, err := config.Env(os.Getenv, Integrations())
	if err != nil {
		return nil, fmt.Errorf("invalid environment:\n%w", err)
	}
	c.Ingress = ingress
	secretARN := c.ConfigSecretARN
	fromConfig := !ingress || c.IngressSecretARN == ""
	if !fromConfig {
		secretARN = c.IngressSecretARN
	} else if ingress {
		// sam local and test harnesses set only CONFIG_SECRET_ARN; the
		// template gives the webhooks function the ingress secret alone.
		log.Warn("INGRESS_SECRET_ARN is not set: the webhooks function reads the config secret and keeps only its ingress part")
	}
	if c.TableName == "" || secretARN == "" {
		return nil, fmt.Errorf("TABLE_NAME and INGRESS_SECRET_ARN or CONFIG_SECRET_ARN are required")
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	sm := secretsmanager.NewFromConfig(awsCfg)
	// Read once, at cold start: a warm container never calls Secrets
	// Manager (a changed config secret takes effect at the next cold start).
	var raw json.RawMessage
	if err := (secrets.Document{API: sm, ID: secretARN}).Load(ctx, &raw); err != nil {
		return nil, err
	}
	if c.Secret, err = config.ParseSecret(raw); err != nil {
		return nil, err
	}
	if ingress {
		// The platforms' blocks stay whole (this is the config secret when
		// INGRESS_SECRET_ARN is not set); wired for ingress, a platform
		// keeps only their ingress part.
		c.Secret = c.Secret.Ingress(c.Secret.Blocks)
	}
	o := Options{
		Store: dynamo.New(dynamodb.NewFromConfig(awsCfg), c.TableName), Log: log, Metrics: metrics.New(os.Stdout, nil),
		Documents: func(_, secretARN string) integration.Document {
			if secretARN == "" {
				return nil
			}
			return secrets.Document{API: sm, ID: secretARN}
		},
	}
	a, err := New(c, o)
	if err != nil {
		return nil, err
	}
	if !ingress && c.IngressSecretARN != "" && c.IngressSecretARN != c.ConfigSecretARN {
		a.ingress = &ingressSync{
			config: secrets.Document{API: sm, ID: c.ConfigSecretARN}, ingress: secrets.Document{API: sm, ID: c.IngressSecretARN},
			platforms: a.platforms, log: log,
		}
	}
	return a, nil
}

// ingressSync keeps the ingress secret equal to the ingress part of the
// config secret (config.Secret.Ingress with each platform's ingress
// block), so operators fill one secret and the webhooks function still
// reads only what it needs.
type ingressSync struct {
	config, ingress integration.Document
	platforms       []platform
	log             *slog.Logger
}

// sync reads the config secret afresh (this container's copy may be old)
// and rewrites the ingress secret when its content differs.
func (s *ingressSync) sync(ctx context.Context) error {
	var raw json.RawMessage
	if err := s.config.Load(ctx, &raw); err != nil {
		return fmt.Errorf("derive the ingress secret: %w", err)
	}
	secret, err := config.ParseSecret(raw)
	if err != nil {
		return fmt.Errorf("derive the ingress secret: %w", err)
	}
	blocks := map[string]json.RawMessage{}
	for _, p := range s.platforms {
		block, ok := secret.Blocks[p.name]
		switch {
		case !ok:
		case p.Ingress == nil:
			blocks[p.name] = json.RawMessage("{}")
		default:
			if blocks[p.name], err = p.Ingress(ctx, block); err != nil {
				return fmt.Errorf("derive the ingress secret: %s: %w", p.name, err)
			}
		}
	}
	want, err := secret.Ingress(blocks).Document()
	if err != nil {
		return fmt.Errorf("derive the ingress secret: %w", err)
	}
	var current json.RawMessage
	if err := s.ingress.Load(ctx, &current); err != nil {
		return fmt.Errorf("read the ingress secret: %w", err)
	}
	if have, err := config.ParseSecret(current); err == nil {
		if doc, err := have.Document(); err == nil && bytes.Equal(doc, want) {
			return nil
		}
	}
	if err := s.ingress.Save(ctx, json.RawMessage(want)); err != nil {
		return fmt.Errorf("write the ingress secret: %w", err)
	}
	s.log.Info("ingress secret updated from the config secret")
	return nil
}

// Handler serves every route of both HTTP functions, as the local process
// does, and answers non-canonical paths as the functions do (JSON 404, no
// redirect).
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", a.Webhooks)
	mux.Handle("/", a.Actions)
	return httpapi.Canonical(mux, a.Log)
}

// Redeliver is the every-minute scheduled work: outboxes due for a retry,
// and Botpress sessions idle past their timeout.
func (a *App) Redeliver(ctx context.Context) error {
	n, err := a.Dispatcher.Sweep(ctx)
	a.Log.Info("outbox sweep", "sessions", n)
	ended, idleErr := a.Bridge.ExpireIdle(ctx)
	a.Log.Info("idle sessions ended", "count", ended)
	return errors.Join(err, idleErr)
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
