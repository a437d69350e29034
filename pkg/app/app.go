// Package app wires hitl-bridge together. It is the one place where
// configuration becomes clients, stores and handlers, for the Lambda
// functions and the local server alike.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/httpapi"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/media"
	"github.com/hitl-bridge/hitl-bridge/pkg/secrets"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/dynamo"
)

// App is a wired bridge.
type App struct {
	Bridge     *hitl.Bridge
	Dispatcher *delivery.Dispatcher
	Actions    http.Handler // native API, operator routes, /healthz
	Webhooks   http.Handler // provider webhooks
	Log        *slog.Logger
}

// Options are what New needs besides the configuration.
type Options struct {
	Store hitl.Store
	Log   *slog.Logger
	// Client makes provider API calls and bot callbacks; nil for one with
	// sensible timeouts.
	Client *http.Client
	Now    func() time.Time
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
	fetcher := media.NewFetcher(media.Config{AllowPrivate: c.AllowPrivateURLs})
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
		webhooks := livechat.NewWebhooks(c.Secret.LiveChat.WebhookSecret)
		parsers[hitl.LiveChat] = httpapi.BodyParser(webhooks.Parse)
	}
	d := &delivery.Dispatcher{
		Store: o.Store, Log: o.Log, Now: o.Now,
		Senders: map[string]delivery.Sender{
			hitl.ChannelNative: &delivery.Callback{URL: c.BotCallbackURL, Secret: []byte(c.Secret.CallbackSigningSecret), Client: o.Client, Now: o.Now},
		},
	}
	b := &hitl.Bridge{Store: o.Store, Providers: providers, DefaultProvider: c.Default(), Outbox: d, Log: o.Log, Now: o.Now}
	return &App{
		Bridge: b, Dispatcher: d, Log: o.Log,
		Actions: httpapi.Actions(httpapi.ActionsConfig{
			Bridge: b, DeadLetters: d, BotAPIKeys: c.Secret.BotAPIKeys, AdminAPIKey: c.Secret.AdminAPIKey, Log: o.Log,
		}),
		Webhooks: httpapi.Webhooks(b, parsers, o.Log),
	}, nil
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
	if err := loadSecret(ctx, &c, secretsmanager.NewFromConfig(awsCfg)); err != nil {
		return nil, err
	}
	return New(c, Options{Store: dynamo.New(dynamodb.NewFromConfig(awsCfg), c.TableName), Log: log})
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
	a, err := New(c, Options{Store: st, Log: log})
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

// RunScheduled does the scheduled work in-process until ctx ends: outbox
// sweeps every interval, visitor token refresh every 5 minutes.
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
			if _, err := a.Dispatcher.Sweep(ctx); err != nil {
				a.Log.Error("outbox sweep", "err", err)
			}
		case <-refresh.C:
			if _, err := a.Bridge.RefreshVisitors(ctx, time.Hour); err != nil {
				a.Log.Error("refresh visitor tokens", "err", err)
			}
		}
	}
}
