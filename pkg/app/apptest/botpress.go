package apptest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// BotpressToken is the botpressPathToken of a BotpressEnv.
const BotpressToken = "test-botpress-path-token-0123456789"

// BotpressWebhookPath is the path of the integration's webhook URL, as in
// https://webhook.botpress.cloud/<webhook id>.
const BotpressWebhookPath = "/wh-test"

// BotpressEnv is an Env used by Botpress's "Human in the Loop API"
// integration: BaseURL is the URL the integration is configured with, and
// Webhook records the callbacks the bridge makes to the integration.
type BotpressEnv struct {
	*Env
	Webhook *BotpressWebhook
	BaseURL string // <bridge>/botpress/<token>
}

// NewBotpress starts an Env with the Botpress compatibility on: the path
// token set, the config secret's botpressWebhookUrl pointing at a BotpressWebhook. modify
// runs after those settings.
func NewBotpress(t testing.TB, st hitl.Store, modify ...func(*config.Config)) *BotpressEnv {
	t.Helper()
	hook := &BotpressWebhook{}
	hookServer := httptest.NewServer(hook)
	t.Cleanup(hookServer.Close)
	settings := func(c *config.Config) {
		c.Secret.BotpressWebhookURL = hookServer.URL + BotpressWebhookPath
		c.Secret.BotpressPathToken = BotpressToken
	}
	e := New(t, st, append([]func(*config.Config){settings}, modify...)...)

	return &BotpressEnv{Env: e, Webhook: hook, BaseURL: e.Server.URL + "/botpress/" + BotpressToken}
}

// BotpressCall is one callback the integration's webhook received.
type BotpressCall struct {
	Route string // "/message-from-agent", "/agent-assigned" or "/stop-hitl"
	Body  []byte
}

// BotpressWebhook is the integration's webhook. It records every call and
// answers 200; while down, 503.
type BotpressWebhook struct {
	mu    sync.Mutex
	calls []BotpressCall
	down  bool
}

func (h *BotpressWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	route, ok := strings.CutPrefix(r.URL.Path, BotpressWebhookPath)
	switch {
	case h.down:
		w.WriteHeader(http.StatusServiceUnavailable)
	case !ok || r.Method != http.MethodPost:
		w.WriteHeader(http.StatusNotFound)
	default:
		h.calls = append(h.calls, BotpressCall{Route: route, Body: body})
	}
}

// Calls returns the accepted calls in arrival order.
func (h *BotpressWebhook) Calls() []BotpressCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]BotpressCall(nil), h.calls...)
}

// SetDown makes the webhook refuse (true) or accept (false) calls.
func (h *BotpressWebhook) SetDown(down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = down
}
