package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin"
	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

var adminAuth = []string{"Authorization", "Bearer " + apptest.AdminKey}

// status calls GET /v1/admin/status.
func status(t *testing.T, e *apptest.Env) admin.Status {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.Server.URL+"/v1/admin/status", nil)
	req.Header.Set(adminAuth[0], adminAuth[1])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st admin.Status
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		t.Fatalf("status: HTTP %d", resp.StatusCode)
	}
	return st
}

func report(st admin.Status, name string) health.Report {
	for _, r := range st.Providers {
		if r.Name == name {
			return r
		}
	}
	return health.Report{}
}

func check(r health.Report, name string) health.Check {
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	return health.Check{}
}

// A deployed bridge with nothing registered: the status names each missing
// piece and its fix; one setup call registers LiveChat's webhooks and
// creates SalesIQ's webhook and key; once the app is installed, both
// providers' deliveries reach the bot.
func TestSetupThenStatusThenDeliveries(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t), func(c *config.Config) {
		apptest.EditBlock(c, hitl.Zoho, func(z *zoho.ConfigSecret) { z.WebhookPublicKeys = nil })
	})
	if code, _ := e.Do(t, "GET", "/v1/admin/status", nil); code != http.StatusUnauthorized {
		t.Fatalf("status with the bot key: %d", code)
	}
	st := status(t, e)
	lc, z := report(st, "livechat"), report(st, "zoho")
	if st.Verdict != health.Fail || lc.Verdict != health.Fail || z.Verdict != health.Fail ||
		check(lc, "webhooks").Status != health.Fail || check(lc, "installed").Status != health.Fail ||
		check(z, "webhooks").Status != health.Fail || check(st.Bridge, "dead letters").Status != health.OK {
		t.Fatalf("before setup: %+v", st)
	}
	if st.PublicURL != e.Server.URL {
		t.Fatalf("public URL %q, want the request's %q", st.PublicURL, e.Server.URL)
	}

	code, out := e.Do(t, "POST", "/v1/admin/setup", nil, adminAuth...)
	if code != http.StatusOK {
		t.Fatalf("setup: %d %v", code, out)
	}
	hooks := e.LiveChat.Webhooks()
	if len(hooks) != len(livechat.WebhookActions()) || hooks[0].URL != e.Server.URL+"/webhooks/livechat" || hooks[0].SecretKey != apptest.WebhookSecret {
		t.Fatalf("livechat registrations %+v", hooks)
	}
	zh := e.Zoho.Webhooks()
	if len(zh) != 1 || zh[0].URL != e.Server.URL+"/webhooks/zoho" || len(zh[0].Keys) != 1 {
		t.Fatalf("zoho webhooks %+v", zh)
	}
	if ws, _ := storedWebhook(t, e); ws.WebhookID != zh[0].ID || len(ws.Keys) != 1 {
		t.Fatalf("stored keys %+v", ws)
	}

	e.LiveChat.InstallApp()
	st = status(t, e)
	for _, r := range st.Providers {
		for _, c := range r.Checks {
			if c.Status == health.Fail {
				t.Errorf("after setup: %s %+v", r.Name, c)
			}
		}
	}
	// SalesIQ signs with the key the bridge created: the delivery is
	// accepted and reaches the bot.
	_, conv := e.HandoffTo(t, "zoho")
	if _, err := e.Zoho.OperatorAccepts(conv, zohotest.Operator{ID: "op-1", Name: "Olga"}); err != nil {
		t.Fatal(err)
	}
	if code, err := e.Zoho.OperatorReplies(conv, "Hello from SalesIQ"); err != nil || code != http.StatusOK {
		t.Fatalf("zoho delivery: %d %v", code, err)
	}
	if !slices.ContainsFunc(e.Bot.Events(), func(ev hitl.Event) bool { return ev.Message != nil && ev.Message.Text == "Hello from SalesIQ" }) {
		t.Fatalf("bot events %+v", e.Bot.Events())
	}
}

// The scheduled run (the tokenrefresh function's) runs the setup too: a
// LiveChat webhook deleted in the console comes back by itself.
func TestScheduledRunRestoresWebhooks(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t), func(c *config.Config) { c.PublicURL = "https://bridge.example.com" })
	ctx := context.Background()
	if err := e.App.RefreshCredentials(ctx); err != nil {
		t.Fatal(err)
	}
	hooks := e.LiveChat.Webhooks()
	if len(hooks) != len(livechat.WebhookActions()) || hooks[0].URL != "https://bridge.example.com/webhooks/livechat" {
		t.Fatalf("%+v", hooks)
	}
	e.LiveChat.DeleteWebhook(hooks[2].ID)
	e.Clock.Advance(5 * time.Minute) // the next scheduled run
	if err := e.App.RefreshCredentials(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.LiveChat.Webhooks(); len(got) != len(livechat.WebhookActions()) || !slices.ContainsFunc(got, func(r livechattest.Registration) bool { return r.Action == hooks[2].Action }) {
		t.Fatalf("after the scheduled run: %+v", got)
	}
}

// Connecting Zoho with a token that lacks a scope changes nothing and says
// which scope; with every scope, the connect creates the webhook and key.
func TestZohoConnectVerifiesThenSetsUpWebhook(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t), func(c *config.Config) {
		apptest.EditBlock(c, hitl.Zoho, func(z *zoho.ConfigSecret) { z.RefreshToken, z.WebhookPublicKeys = "", nil })
	})
	connect := func() (int, string) {
		t.Helper()
		_, out := e.Do(t, "GET", "/oauth/zoho/start", nil, adminAuth...)
		u, _ := url.Parse(out["authorizationUrl"].(string))
		q := u.Query()
		v := url.Values{"code": {e.Zoho.AuthorizationCode(q.Get("redirect_uri"))}, "state": {q.Get("state")},
			"location": {"us"}, "accounts-server": {e.Zoho.AccountsURL()}}
		return zohoCallback(t, e, v)
	}
	e.Zoho.SetScopes("SalesIQ.Conversations.ALL", "SalesIQ.apps.READ", "SalesIQ.webhooks.ALL")
	code, page := connect()
	if code != http.StatusBadRequest || !strings.Contains(page, "Nothing was changed") || !strings.Contains(page, "SalesIQ.departments.READ") {
		t.Fatalf("missing scope: %d %s", code, page)
	}
	if tok, _ := e.ZohoTokens.Load(t.Context()); tok.RefreshToken != "" || len(e.Zoho.Webhooks()) != 0 {
		t.Fatal("a refused connect changed something")
	}
	e.Zoho.SetScopes()
	code, page = connect()
	if code != http.StatusOK || !strings.Contains(page, "webhook and signing key are in place") {
		t.Fatalf("connect: %d %s", code, page)
	}
	if ws, _ := storedWebhook(t, e); len(e.Zoho.Webhooks()) != 1 || len(ws.Keys) != 1 {
		t.Fatalf("webhooks %+v, keys %+v", e.Zoho.Webhooks(), ws)
	}
	// Rotation is one call; deliveries go on without a refused one.
	code, out := e.Do(t, "POST", "/v1/admin/zoho/rotate-key", nil, adminAuth...)
	if code != http.StatusOK || out["keyId"] == "" {
		t.Fatalf("rotate: %d %v", code, out)
	}
	_, conv := e.HandoffTo(t, "zoho")
	if _, err := e.Zoho.OperatorAccepts(conv, zohotest.Operator{ID: "op-1", Name: "Olga"}); err != nil {
		t.Fatal(err)
	}
	if code, err := e.Zoho.OperatorReplies(conv, "after rotation"); err != nil || code != http.StatusOK {
		t.Fatalf("delivery after rotation: %d %v", code, err)
	}
	if ws, _ := storedWebhook(t, e); len(ws.Keys) != 1 || ws.Keys[0].ID != out["keyId"] {
		t.Fatalf("after the first delivery with the new key: %+v", ws)
	}
}

// storedWebhook is the SalesIQ webhook the bridge keeps in its store.
func storedWebhook(t *testing.T, e *apptest.Env) (zoho.WebhookState, error) {
	t.Helper()
	var w zoho.WebhookState
	raw, err := e.Store.Setting(t.Context(), "zoho.webhook")
	if err == nil && raw != nil {
		err = json.Unmarshal(raw, &w)
	}
	return w, err
}
