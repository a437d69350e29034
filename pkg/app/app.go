// Package app wires hitl-bridge together. It is the one place where
// configuration becomes clients, stores and handlers, for the Lambda
// functions and the local server alike.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/media"
	"github.com/hitl-bridge/hitl-bridge/pkg/metrics"
	"github.com/hitl-bridge/hitl-bridge/pkg/secrets"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/dynamo"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
)

// App is a wired bridge.
type App struct {
	Bridge     *hitl.Bridge
	Dispatcher *delivery.Dispatcher
	Actions    http.Handler // native API, operator routes, Zoho OAuth, /healthz
	Webhooks   http.Handler // provider webhooks
	ZohoTokens *zoho.Tokens // nil without Zoho
	Log        *slog.Logger
	// Admin serves the operator routes (status, setup, /admin); they are
	// also part of Actions.
	Admin *admin.Handler
	ops   *ops
}

// Options are what New needs besides the configuration.
type Options struct {
	Store hitl.Store
	Log   *slog.Logger
	// Client makes provider API calls and bot callbacks; nil for one with
	// sensible timeouts.
	Client *http.Client
	Now    func() time.Time
	// ZohoTokens keeps the Zoho token where every container reads it;
	// required with Zoho. One that is also a zoho.WebhookStore keeps the
	// SalesIQ webhook's keys beside it.
	ZohoTokens zoho.TokenStore
	// Metrics receives CloudWatch metrics (embedded metric format); nil
	// records none.
	Metrics *metrics.Recorder
}

// New wires an App from a validated configuration.
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
	// 50 MiB is Zoho's upload limit; LiveChat asks for its 10 MB per fetch.
	fetcher := media.NewFetcher(media.Config{AllowPrivate: c.AllowPrivateURLs, MaxBytes: 50 << 20})
	providers := map[string]hitl.Provider{}
	parsers := map[string]httpapi.WebhookParser{}
	if lc := c.LiveChat; lc != nil {
		client, err := livechat.NewClient(livechat.Config{
			APIURL: lc.APIURL, AccountsURL: lc.AccountsURL, OrganizationID: lc.OrganizationID,
			ClientID: lc.ClientID, RedirectURI: lc.RedirectURI, GroupID: lc.GroupID,
			AgentToken: c.Secret.LiveChat.AgentToken, HTTPClient: o.Client, Media: fetcher, Now: o.Now, Logger: o.Log,
		})
		if err != nil {
			return nil, fmt.Errorf("livechat: %w", err)
		}
		providers[hitl.LiveChat] = client
		webhooks := livechat.NewWebhooks(c.Secret.LiveChat.WebhookSecret, lc.OrganizationID)
		parsers[hitl.LiveChat] = httpapi.BodyParser(webhooks.Parse)
	}
	var tokens *zoho.Tokens
	var connect *httpapi.ZohoConnect
	if z := c.Zoho; z != nil {
		var err error
		tokens, connect, err = wireZoho(c, o, fetcher, providers, parsers)
		if err != nil {
			return nil, fmt.Errorf("zoho: %w", err)
		}
	}
	d := &delivery.Dispatcher{
		Store: o.Store, Log: o.Log, Now: o.Now,
		Senders: map[string]delivery.Sender{
			hitl.ChannelNative: &delivery.Callback{URL: c.BotCallbackURL, Secret: []byte(c.Secret.CallbackSigningSecret), Client: o.Client, Now: o.Now},
		},
	}
	if c.BotpressWebhookURL != "" {
		d.Senders[hitl.ChannelBotpress] = &botpress.Sender{WebhookURL: c.BotpressWebhookURL, Client: o.Client}
	}
	b := &hitl.Bridge{
		Store: o.Store, Providers: providers, DefaultProvider: c.Default(), Outbox: d, Log: o.Log, Now: o.Now,
		IdleTimeout: c.BotpressIdleTimeout,
	}
	a := &App{
		Bridge: b, Dispatcher: d, ZohoTokens: tokens, Log: o.Log,
		Actions: httpapi.Actions(httpapi.ActionsConfig{
			Bridge: b, DeadLetters: d, BotAPIKeys: c.Secret.BotAPIKeys, AdminAPIKey: c.Secret.AdminAPIKey,
			BotpressPathToken: c.Secret.BotpressPathToken, ZohoConnect: connect, Log: o.Log,
		}),
		Webhooks: httpapi.Webhooks(b, parsers, o.Log),
	}
	a.wireOps(c, o, d, providers, connect)
	return a, nil
}

// wireZoho adds the Zoho provider and webhook parser, and returns the
// token manager and the OAuth connect routes.
func wireZoho(c config.Config, o Options, fetcher *media.Fetcher, providers map[string]hitl.Provider, parsers map[string]httpapi.WebhookParser) (*zoho.Tokens, *httpapi.ZohoConnect, error) {
	z, secret := c.Zoho, c.Secret.Zoho
	if o.ZohoTokens == nil {
		return nil, nil, fmt.Errorf("no token store")
	}
	oauthFor := func(redirectURL string) (*zoho.OAuth, error) {
		return zoho.NewOAuth(zoho.OAuthConfig{
			Region: z.Region, AccountsURL: z.AccountsURL, ClientID: secret.ClientID, ClientSecret: secret.ClientSecret,
			RedirectURL: redirectURL, HTTPClient: o.Client, Now: o.Now,
		})
	}
	oauth, err := oauthFor("")
	if err != nil {
		return nil, nil, err
	}
	tokens, err := zoho.NewTokens(zoho.TokensConfig{
		OAuth: oauth, Store: o.ZohoTokens, Lease: o.Store.AcquireLease, RefreshToken: secret.RefreshToken, Now: o.Now, Logger: o.Log,
	})
	if err != nil {
		return nil, nil, err
	}
	client, err := zoho.NewClient(zoho.Config{
		Region: z.Region, SalesIQURL: z.SalesIQURL, ScreenName: z.ScreenName, AppID: z.AppID, DepartmentID: z.DepartmentID,
		Tokens: tokens, HTTPClient: o.Client, Media: fetcher, Logger: o.Log,
	})
	if err != nil {
		return nil, nil, err
	}
	providers[hitl.Zoho] = client
	// Keys the bridge created (kept beside the token) and any of the config
	// secret; deliveries are refused until there is one.
	keys, _ := o.ZohoTokens.(zoho.WebhookStore)
	parsers[hitl.Zoho] = zoho.NewVerifier(zoho.VerifierConfig{
		ConfiguredKeys: secret.WebhookPublicKeys, Store: keys, AppID: z.AppID, OrgID: z.OrgID, Now: o.Now, Logger: o.Log,
	})
	stateKey := hmac.New(sha256.New, []byte(c.Secret.CallbackSigningSecret))
	stateKey.Write([]byte("zoho oauth state"))
	connect := &httpapi.ZohoConnect{
		OAuth: oauthFor, Save: o.ZohoTokens.Save, StateKey: stateKey.Sum(nil),
		AcquireLease: o.Store.AcquireLease, Now: o.Now, Log: o.Log,
	}
	return tokens, connect, nil
}

// RefreshCredentials is the scheduled renewal of provider credentials:
// LiveChat customer tokens that expire within the hour, and the Zoho access
// token before it expires. It then runs the webhook setup, so a webhook
// deleted in a provider's console comes back by itself.
func (a *App) RefreshCredentials(ctx context.Context) error {
	n, err := a.Bridge.RefreshVisitors(ctx, time.Hour)
	a.Log.Info("visitor tokens refreshed", "count", n)
	if err != nil {
		a.ops.metrics.Count(metrics.TokenRefreshFailures, hitl.LiveChat, 1)
	}
	if a.ZohoTokens != nil {
		if zerr := a.ZohoTokens.Refresh(ctx, false); zerr != nil {
			a.ops.metrics.Count(metrics.TokenRefreshFailures, hitl.Zoho, 1)
			err = errors.Join(err, zerr)
		}
	}
	return errors.Join(err, a.scheduledSetup(ctx))
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

// LoadAWS wires the App of a Lambda function: settings from the
// environment, the config secret from Secrets Manager, DynamoDB as store.
// Clients are built once, at cold start.
func LoadAWS(ctx context.Context, log *slog.Logger) (*App, error) {
	c, err := config.Env(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("invalid environment:\n%w", err)
	}
	if c.TableName == "" || c.ConfigSecretARN == "" {
		return nil, fmt.Errorf("TABLE_NAME and CONFIG_SECRET_ARN are required")
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	sm := secretsmanager.NewFromConfig(awsCfg)
	if err := loadSecret(ctx, &c, sm); err != nil {
		return nil, err
	}
	o := Options{Store: dynamo.New(dynamodb.NewFromConfig(awsCfg), c.TableName), Log: log, Metrics: metrics.New(os.Stdout, nil)}
	if c.Zoho != nil {
		if c.Zoho.TokenSecretARN == "" {
			return nil, fmt.Errorf("ZOHO_TOKEN_SECRET_ARN is required with Zoho")
		}
		o.ZohoTokens = &zohoDocument{doc: secrets.Document{API: sm, ID: c.Zoho.TokenSecretARN}}
	}
	return New(c, o)
}

func loadSecret(ctx context.Context, c *config.Config, api secrets.API) error {
	raw, err := secrets.NewCache(api, 5*time.Minute, nil).Get(ctx, c.ConfigSecretARN)
	if err != nil {
		return err
	}
	c.Secret, err = config.ParseSecret(raw)
	return err
}

// LoadLocal wires the App of the local process: settings from getenv, the
// config secret from HITL_SECRET_JSON, the embedded store at
// HITL_STORE_PATH. The returned function closes the store.
func LoadLocal(getenv func(string) string, log *slog.Logger) (*App, config.Config, func() error, error) {
	c, err := config.Env(getenv)
	if err != nil {
		return nil, c, nil, fmt.Errorf("invalid environment:\n%w", err)
	}
	if getenv("HITL_SECRET_JSON") == "" {
		return nil, c, nil, fmt.Errorf("HITL_SECRET_JSON is required: the config secret document (see README)")
	}
	if c.Secret, err = config.ParseSecret([]byte(getenv("HITL_SECRET_JSON"))); err != nil {
		return nil, c, nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, c, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	st, err := bolt.Open(c.StorePath)
	if err != nil {
		return nil, c, nil, err
	}
	tokens := &zohoDocument{doc: secrets.File{Path: filepath.Join(filepath.Dir(c.StorePath), "zoho-token.json")}}
	a, err := New(c, Options{Store: st, Log: log, ZohoTokens: tokens})
	if err != nil {
		st.Close()
		return nil, c, nil, err
	}
	return a, c, st.Close, nil
}

// Handler serves every route of both HTTP functions, as the local process does.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", a.Webhooks)
	mux.Handle("/", a.Actions)
	return mux
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
