// Package apptest assembles a whole bridge for tests, demos and benchmarks:
// the App on a chosen store, served over HTTP, with the LiveChat simulator
// as provider and a bot receiver that checks every callback's signature.
//
// Every Env a test starts with New checks, when the test ends, that none of
// its log lines contains a credential it knows: its configuration's
// secrets, every token and cookie that crossed its Network, and any the
// test added with AddSecret.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin/page"
	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/metrics"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt/bolttest"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/dynamo"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

// Credentials and ids used by every Env, the same as in events/*.json;
// tests assert no credential reaches a log.
const (
	BotKey         = "test-bot-key-0123456789"
	WebhookSecret  = "test-livechat-webhook-secret"
	OrganizationID = "5f2b8c1e-3d4a-4e6b-9c7d-0a1b2c3d4e5f"
	AdminKey       = "test-admin-key-0123456789"
	SigningKey     = "test-signing-secret-0123456789"
)

// Env is a running bridge and its counterparts.
type Env struct {
	App    *app.App
	Config config.Config
	// Options are the App's: with Config, what each function's
	// constructor (app.NewWebhooks, …) needs to wire it on this Env.
	Options  app.Options
	Store    hitl.Store
	LiveChat *livechattest.Server
	Zoho     *zohotest.Server
	Bot      *Bot
	Server   *httptest.Server // the bridge: every route of both HTTP functions
	Logs     *Logs
	// Metrics has the CloudWatch metric lines the app emitted.
	Metrics *Logs
	Clock   *Clock
	// Documents are the documents platforms keep for themselves (secrets
	// in AWS), in memory.
	Documents *Documents
	// ZohoTokens is where the Zoho token is kept (one of Documents).
	ZohoTokens zoho.TokenStore
	// Net carries every call the bridge makes, and injects network faults.
	Net *Network

	closers []func()
	mu      sync.Mutex
	secrets []string
}

// StoreFactory makes a fresh store for one test.
type StoreFactory func(t testing.TB) hitl.Store

// Bolt is the embedded store in a temporary directory.
func Bolt(t testing.TB) hitl.Store { return bolttest.Open(t) }

// Dynamo is the DynamoDB store on a fresh table of the test binary's
// moto_server.
func Dynamo(t testing.TB) hitl.Store {
	st, _ := CountedDynamo(t)
	return st
}

// CountedDynamo is Dynamo with a Counter of the DynamoDB calls the store
// makes once its table exists.
func CountedDynamo(t testing.TB) (hitl.Store, *awstest.Counter) {
	calls := &awstest.Counter{}
	db := awstest.DynamoDB(t, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, calls.AddTo) })
	table := fmt.Sprintf("hitl-%d", time.Now().UnixNano())
	if err := dynamo.CreateTable(context.Background(), db, table); err != nil {
		t.Fatal(err)
	}
	// moto_server keeps every table of the test binary in memory: drop each
	// when its test is done, so the server does not slow down as they pile up.
	t.Cleanup(func() { _, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table}) })
	calls.Reset()
	return dynamo.New(db, table), calls
}

// Stores are the store implementations every integration test runs on.
var Stores = map[string]StoreFactory{"bolt": Bolt, "dynamo": Dynamo}

// New starts an Env on st for a test and stops it when the test ends.
// modify, if given, adjusts the configuration before the App is built.
func New(t testing.TB, st hitl.Store, modify ...func(*config.Config)) *Env {
	t.Helper()
	e, err := Start(st, modify...)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the logs are checked once everything stopped.
	t.Cleanup(func() { e.checkLogs(t) })
	t.Cleanup(e.Close)
	return e
}

// Start starts an Env on st: the simulators, the bot receiver and the
// bridge, all on loopback. Close stops them.
func Start(st hitl.Store, modify ...func(*config.Config)) (*Env, error) {
	e := &Env{Store: st, Bot: NewBot(), Logs: &Logs{}, Metrics: &Logs{}, Clock: &Clock{}, Net: newNetwork()}
	bot := httptest.NewServer(e.Bot)
	e.closers = append(e.closers, bot.Close)
	e.LiveChat = livechattest.New(livechattest.Options{Now: e.Clock.Now, WebhookSecret: WebhookSecret, OrganizationID: OrganizationID})
	e.Zoho = zohotest.New(zohotest.Options{Now: e.Clock.Now, RetrySpacing: time.Millisecond})
	e.closers = append(e.closers, e.LiveChat.Close, e.Zoho.Close)
	z := e.Zoho.Options()

	env := map[string]string{
		"BOT_CALLBACK_URL":         bot.URL + "/hitl",
		"LIVECHAT_ORGANIZATION_ID": e.LiveChat.Options().OrganizationID,
		"LIVECHAT_CLIENT_ID":       e.LiveChat.Options().ClientID,
		"LIVECHAT_REDIRECT_URI":    "https://bot.example.com/",
		"LIVECHAT_GROUP_ID":        "1",
		"LIVECHAT_API_URL":         e.LiveChat.APIURL(),
		"LIVECHAT_ACCOUNTS_URL":    e.LiveChat.AccountsURL(),
		"HITL_ALLOW_PRIVATE_URLS":  "true",
		"ZOHO_SCREEN_NAME":         z.ScreenName,
		"ZOHO_REGION":              "us",
		"ZOHO_APP_ID":              z.AppID,
		"ZOHO_DEPARTMENT_ID":       z.DepartmentID,
		"ZOHO_ORG_ID":              z.OrgID,
		"ZOHO_ACCOUNTS_URL":        e.Zoho.AccountsURL(),
		"ZOHO_SALESIQ_URL":         e.Zoho.SalesIQURL(),
		"DEFAULT_PROVIDER":         "livechat",
	}
	c, err := config.Env(func(k string) string { return env[k] }, app.Integrations())
	if err != nil {
		e.Close()
		return nil, err
	}
	c.Secret = config.Secret{
		BotAPIKeys: []string{BotKey}, AdminAPIKey: AdminKey, CallbackSigningSecret: SigningKey,
		Blocks: map[string]json.RawMessage{
			hitl.LiveChat: block(livechat.ConfigSecret{AgentToken: e.LiveChat.AgentToken(), WebhookSecret: e.LiveChat.Options().WebhookSecret}),
			hitl.Zoho: block(zoho.ConfigSecret{ClientID: z.ClientID, ClientSecret: z.ClientSecret, RefreshToken: z.RefreshToken,
				WebhookPublicKeys: []string{e.Zoho.PublicKeyPEM()}}),
		},
	}
	for _, m := range modify {
		m(&c)
	}
	e.Config = c
	log := e.Logs.Logger()
	e.Documents = &Documents{}
	e.ZohoTokens = zoho.TokenDocument(e.Documents.Open("zoho-token", ""))
	e.Options = app.Options{
		Store: st, Log: log, Client: e.Net.Client(), Now: e.Clock.Now, Documents: e.Documents.Open,
		Metrics: metrics.New(e.Metrics, e.Clock.Now),
	}
	e.App, err = app.New(c, e.Options)
	if err != nil {
		e.Close()
		return nil, err
	}
	e.App.Admin.ServePage(page.Render)
	e.Server = httptest.NewServer(e.App.Handler())
	e.closers = append(e.closers, e.Server.Close)
	e.LiveChat.SetWebhookURL(e.Server.URL + "/webhooks/livechat")
	e.Zoho.SetWebhookURL(e.Server.URL + "/webhooks/zoho")
	return e, nil
}

// Close stops everything Start started, newest first.
func (e *Env) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// Do calls the bridge with the bot key and returns the status and decoded
// JSON answer.
func (e *Env) Do(t testing.TB, method, path string, body any, header ...string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.Server.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+BotKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s answered %d with non-JSON %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

// Handoff creates a user and starts a LiveChat session for it; it returns
// the session id and the LiveChat chat id.
func (e *Env) Handoff(t testing.TB) (sessionID, chatID string) {
	t.Helper()
	return e.HandoffTo(t, "livechat")
}

// HandoffTo creates a user and starts a session with provider; it returns
// the session id and the provider's conversation id.
func (e *Env) HandoffTo(t testing.TB, provider string) (sessionID, conversationID string) {
	t.Helper()
	status, u := e.Do(t, "POST", "/v1/users", map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"})
	if status != http.StatusCreated {
		t.Fatalf("create user: %d %v", status, u)
	}
	status, s := e.Do(t, "POST", "/v1/sessions", map[string]any{"userId": u["userId"], "provider": provider, "title": "Help", "botConversationId": "bc-1"})
	if status != http.StatusCreated {
		t.Fatalf("start session: %d %v", status, s)
	}
	return s["sessionId"].(string), s["providerConversationId"].(string)
}

// Invoke runs h on a raw API Gateway event, as the Lambda runtime does,
// and decodes its answer.
func Invoke(t testing.TB, h lambda.Handler, payload []byte) events.APIGatewayV2HTTPResponse {
	t.Helper()
	out, err := h.Invoke(t.Context(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("not an API Gateway answer: %s", out)
	}
	return resp
}

// IngressConfig is e's configuration as the webhooks function reads it in
// AWS: with the ingress secret that the token refresh function derives
// from e's config secret (a run of that function, on documents in memory).
func (e *Env) IngressConfig(t testing.TB) config.Config {
	t.Helper()
	ctx := context.Background()
	var docs Documents
	o := e.Options
	o.ConfigSecret, o.IngressSecret = docs.Open("config", ""), docs.Open("ingress", "")
	doc, err := e.Config.Secret.Document()
	if err != nil {
		t.Fatal(err)
	}
	if err := o.ConfigSecret.Save(ctx, json.RawMessage(doc)); err != nil {
		t.Fatal(err)
	}
	refresh, err := app.NewTokenRefresh(e.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := refresh(ctx); err != nil {
		t.Fatalf("derive the ingress secret: %v", err)
	}
	var raw json.RawMessage
	if err := o.IngressSecret.Load(ctx, &raw); err != nil {
		t.Fatal(err)
	}
	c := e.Config
	if c.Secret, err = config.ParseSecret(raw); err != nil {
		t.Fatal(err)
	}
	return c
}

// Documents are JSON documents in memory, by name, as platforms keep
// them in secrets in AWS (integration.Runtime.Documents).
type Documents struct {
	mu   sync.Mutex
	docs map[string]*document
}

// Open returns the document name (the same one each time); the secret ARN
// is not used.
func (d *Documents) Open(name, _ string) integration.Document {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.docs == nil {
		d.docs = map[string]*document{}
	}
	if d.docs[name] == nil {
		d.docs[name] = &document{}
	}
	return d.docs[name]
}

type document struct {
	mu  sync.Mutex
	raw []byte
}

// Load decodes the saved value into v; nothing saved leaves v as it is.
func (d *document) Load(_ context.Context, v any) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.raw == nil {
		return nil
	}
	return json.Unmarshal(d.raw, v)
}

// Save keeps v's JSON.
func (d *document) Save(_ context.Context, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.raw = raw
	return nil
}

// block is v as a block of the config secret.
func block(v any) json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("apptest: encode a config secret block: %v", err))
	}
	return raw
}

// EditBlock changes the block of platform name in c's config secret,
// decoded as T (the platform's block type, e.g. zoho.ConfigSecret): for
// modify functions.
func EditBlock[T any](c *config.Config, name string, edit func(*T)) {
	var v T
	if err := json.Unmarshal(c.Secret.Blocks[name], &v); err != nil {
		panic(fmt.Sprintf("apptest: decode the %s block: %v", name, err))
	}
	edit(&v)
	c.Secret.Blocks[name] = block(v)
}

// WithPlatform adds a platform to the bridge an Env starts, as the list
// of integrations would: in is configured from env (HITL_ALLOW_PRIVATE_URLS
// is true, as for the other platforms) and its block of the config secret
// is secret's JSON. For modify functions.
func WithPlatform(in integration.Integration, env map[string]string, secret any) func(*config.Config) {
	return func(c *config.Config) {
		getenv := func(k string) string {
			if k == "HITL_ALLOW_PRIVATE_URLS" {
				return "true"
			}
			return env[k]
		}
		own, err := config.Env(getenv, []integration.Integration{in})
		if err != nil || own.Platforms[in.Name] == nil {
			panic(fmt.Sprintf("apptest: configure %s: %v (is %s set?)", in.Name, err, in.EnabledBy))
		}
		c.Integrations = append(c.Integrations, in)
		c.Platforms[in.Name] = own.Platforms[in.Name]
		c.Secret.Blocks[in.Name] = block(secret)
	}
}

// Clock is a settable clock shared by the bridge and the simulators; the
// zero Clock is the wall clock.
type Clock = simcore.Clock

// Logs collects log output, for checks that no secret is ever logged.
type Logs = simcore.Logs

// Bot is a bot's callback endpoint: it verifies signatures and records the
// events it accepts. While Down, it answers 503 and records nothing; while
// stalled, it answers nothing until the caller gives up.
type Bot struct {
	// OnEvent, if set before use, sees each accepted event.
	OnEvent func(hitl.Event)

	mu       sync.Mutex
	events   []hitl.Event
	badSigs  int
	attempts int
	down     bool
	stall    chan struct{} // closed to release stalled callbacks; nil when not stalled
}

// NewBot returns a bot receiver.
func NewBot() *Bot { return &Bot{} }

func (b *Bot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.attempts++
	stall := b.stall
	b.mu.Unlock()
	if stall != nil {
		// A hung bot never answers what it received while hung; when it
		// comes back, the callbacks still waiting are refused, so none is
		// accepted after the bridge gave up on it.
		select {
		case <-r.Context().Done():
		case <-stall:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if !validSignature(r.Header.Get(delivery.HeaderSignature), body) {
		b.badSigs++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var e hitl.Event
	if err := json.Unmarshal(body, &e); err != nil || e.ID != r.Header.Get(delivery.HeaderEventID) {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	b.events = append(b.events, e)
	if b.OnEvent != nil {
		b.OnEvent(e)
	}
	w.WriteHeader(http.StatusNoContent)
}

func validSignature(header string, body []byte) bool {
	ts, _, ok := strings.Cut(strings.TrimPrefix(header, "t="), ",")
	if !ok {
		return false
	}
	var at int64
	if _, err := fmt.Sscan(ts, &at); err != nil {
		return false
	}
	return delivery.Sign([]byte(SigningKey), time.Unix(at, 0), body) == header
}

// SetDown makes the bot refuse (true) or accept (false) callbacks.
func (b *Bot) SetDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}

// SetStalled makes the bot hold callbacks without answering (true), as a
// bot that hangs does, or answer them again (false). Callbacks held when
// it comes back are refused.
func (b *Bot) SetStalled(stalled bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case stalled && b.stall == nil:
		b.stall = make(chan struct{})
	case !stalled && b.stall != nil:
		close(b.stall)
		b.stall = nil
	}
}

// Attempts counts the callbacks received, refused and stalled ones included.
func (b *Bot) Attempts() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.attempts
}

// Events returns the accepted events in arrival order.
func (b *Bot) Events() []hitl.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]hitl.Event(nil), b.events...)
}

// BadSignatures counts callbacks whose signature did not verify.
func (b *Bot) BadSignatures() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.badSigs
}

// Event reads events/<name> (the samples `sam local invoke` uses) and
// applies the old, new string replacements, e.g. to put a real session id
// in place of the sample's.
func Event(t testing.TB, name string, oldnew ...string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(RepoRoot(t), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.NewReplacer(oldnew...).Replace(string(raw)))
}

// RepoRoot is the repository's root: the directory of go.mod above the
// test's directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
