// Package app wires hitl-bridge together. It is the one place where
// configuration becomes clients, stores and handlers, for the Lambda
// functions and the local server alike.
package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
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

	ingress *ingressSync // the token refresh function's only
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
	// required with Zoho.
	ZohoTokens zoho.TokenStore
	// ZohoOAuthState keeps the key that signs the Zoho OAuth state (a
	// secret of its own in AWS, a 0600 file locally). nil keeps a random
	// key in memory: states then work only within one process.
	ZohoOAuthState Document
	// Metrics receives CloudWatch metrics (embedded metric format); nil
	// records none.
	Metrics *metrics.Recorder
}

// Document is a JSON document the application reads and writes (a secret
// in AWS, a file locally).
type Document interface {
	Load(ctx context.Context, v any) error
	Save(ctx context.Context, v any) error
}

// New wires an App from a validated configuration. With c.Ingress (the
// webhooks function) it has no provider clients: it verifies webhooks and
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
	// 50 MiB is Zoho's upload limit; LiveChat asks for its 10 MB per fetch.
	fetcher := media.NewFetcher(media.Config{AllowPrivate: c.AllowPrivateURLs, MaxBytes: 50 << 20})
	providers := map[string]hitl.Provider{}
	parsers := map[string]httpapi.WebhookParser{}
	if lc := c.LiveChat; lc != nil {
		// The integration's own agent is never reported as the assignee.
		// The webhooks function cannot ask LiveChat who it is (it has no
		// PAT): the ingress secret carries it (see ingressSync).
		integrationAgent := func(context.Context) (string, error) {
			if id := c.Secret.LiveChat.IntegrationAgentID; id != "" {
				return id, nil
			}
			return "", errors.New("livechat.integrationAgentId is not in the ingress secret yet")
		}
		// Without the PAT (ingress) agents are known by name only from the
		// webhooks that introduce them.
		var agentLookup func(context.Context, string) (hitl.Agent, error)
		if !c.Ingress {
			client, err := livechat.NewClient(livechat.Config{
				APIURL: lc.APIURL, AccountsURL: lc.AccountsURL, OrganizationID: lc.OrganizationID,
				ClientID: lc.ClientID, RedirectURI: lc.RedirectURI, GroupID: lc.GroupID,
				AgentToken: c.Secret.LiveChat.AgentToken, BotID: lc.BotID, BotSecret: c.Secret.LiveChat.BotSecret,
				HTTPClient: o.Client, Media: fetcher, Now: o.Now, Logger: o.Log,
			})
			if err != nil {
				return nil, fmt.Errorf("livechat: %w", err)
			}
			providers[hitl.LiveChat] = client
			if c.Secret.LiveChat.IntegrationAgentID == "" {
				integrationAgent = client.IntegrationAgentID
			}
			agentLookup = client.Agent
		}
		webhooks := livechat.NewWebhooks(c.Secret.LiveChat.WebhookSecret, lc.OrganizationID).
			WithIntegrationAgent(integrationAgent).WithBot(lc.BotID).WithAgentLookup(agentLookup).WithLogger(o.Log)
		parsers[hitl.LiveChat] = httpapi.BodyParser(webhooks.Parse)
	}
	var tokens *zoho.Tokens
	var connect *httpapi.ZohoConnect
	if z := c.Zoho; z != nil {
		var err error
		if !c.Ingress {
			if tokens, connect, err = wireZoho(c, o, fetcher, providers); err != nil {
				return nil, fmt.Errorf("zoho: %w", err)
			}
		}
		// The keys of the config secret and those the bridge created (in the
		// store); deliveries are refused until there is one.
		parsers[hitl.Zoho] = zoho.NewVerifier(zoho.VerifierConfig{
			ConfiguredKeys: c.Secret.Zoho.WebhookPublicKeys, Store: settings{o.Store},
			AppID: z.AppID, OrgID: z.OrgID, Now: o.Now, Logger: o.Log,
		})
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
		d.Senders[hitl.ChannelBotpress] = &botpress.Sender{WebhookURL: u, Client: o.Client}
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

// wireZoho adds the Zoho provider, and returns the token manager and the
// OAuth connect routes.
func wireZoho(c config.Config, o Options, fetcher *media.Fetcher, providers map[string]hitl.Provider) (*zoho.Tokens, *httpapi.ZohoConnect, error) {
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
	connect := &httpapi.ZohoConnect{
		OAuth: oauthFor, Save: o.ZohoTokens.Save, StateKey: (&stateKey{doc: o.ZohoOAuthState}).get,
		AcquireLease: o.Store.AcquireLease, Now: o.Now, Log: o.Log,
	}
	return tokens, connect, nil
}

// RefreshCredentials is the scheduled renewal of provider credentials:
// LiveChat customer tokens that expire within the hour, and the Zoho access
// token before it expires; then the webhook setup, so a webhook deleted in
// a provider's console comes back by itself; in AWS it also keeps the
// ingress secret derived from the config secret.
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
	err = errors.Join(err, a.scheduledSetup(ctx))
	if a.ingress != nil {
		err = errors.Join(err, a.ingress.sync(ctx))
	}
	return err
}

// stateKey is the key that signs Zoho OAuth states: random, of its own,
// read once from its document; generated and saved when the document has
// none (the local process's first connect; in AWS CloudFormation generates
// it).
type stateKey struct {
	doc Document
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

// ZohoTokenDocument keeps the Zoho token in a JSON document (a secret in
// AWS, a file locally).
func ZohoTokenDocument(doc Document) zoho.TokenStore { return tokenDocument{doc} }

type tokenDocument struct{ doc Document }

func (d tokenDocument) Load(ctx context.Context) (zoho.Token, error) {
	var t zoho.Token
	err := d.doc.Load(ctx, &t)
	return t, err
}

func (d tokenDocument) Save(ctx context.Context, t zoho.Token) error { return d.doc.Save(ctx, t) }

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
	c, err := config.Env(os.Getenv)
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
		c.Secret = c.Secret.Ingress()
	}
	o := Options{Store: dynamo.New(dynamodb.NewFromConfig(awsCfg), c.TableName), Log: log, Metrics: metrics.New(os.Stdout, nil)}
	if c.Zoho != nil && !ingress {
		if c.Zoho.TokenSecretARN == "" {
			return nil, fmt.Errorf("ZOHO_TOKEN_SECRET_ARN is required with Zoho")
		}
		o.ZohoTokens = tokenDocument{secrets.Document{API: sm, ID: c.Zoho.TokenSecretARN}}
		if c.Zoho.OAuthStateSecretARN != "" {
			o.ZohoOAuthState = secrets.Document{API: sm, ID: c.Zoho.OAuthStateSecretARN}
		}
	}
	a, err := New(c, o)
	if err != nil {
		return nil, err
	}
	if !ingress && c.IngressSecretARN != "" && c.IngressSecretARN != c.ConfigSecretARN {
		a.ingress = &ingressSync{
			config: secrets.Document{API: sm, ID: c.ConfigSecretARN}, ingress: secrets.Document{API: sm, ID: c.IngressSecretARN},
			log: log,
		}
		if lc, ok := a.Bridge.Providers[hitl.LiveChat].(*livechat.Client); ok {
			a.ingress.integrationAgent = lc.IntegrationAgentID
		}
	}
	return a, nil
}

// ingressSync keeps the ingress secret equal to the ingress part of the
// config secret (config.Secret.Ingress), so operators fill one secret and
// the webhooks function still reads only what it needs.
type ingressSync struct {
	config, ingress Document
	// integrationAgent learns the LiveChat integration agent's id, which
	// the webhooks function needs and cannot learn; nil without LiveChat.
	integrationAgent func(context.Context) (string, error)
	log              *slog.Logger
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
	in := secret.Ingress()
	if in.LiveChat != nil && in.LiveChat.IntegrationAgentID == "" && s.integrationAgent != nil {
		id, err := s.integrationAgent(ctx)
		if err != nil {
			return fmt.Errorf("derive the ingress secret: learn the LiveChat integration agent: %w", err)
		}
		in.LiveChat.IntegrationAgentID = id
	}
	want, err := in.Document()
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
