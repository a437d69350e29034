package livechat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

const (
	hookURL    = "https://bridge.example.com/webhooks/livechat"
	hookSecret = "a-webhook-secret-of-the-bridge"
)

type setupFixture struct {
	sim    *livechattest.Server
	client *livechat.Client
	logs   *simcore.Logs
	cfg    livechat.SetupConfig
}

func newSetup(t *testing.T, token string) *setupFixture {
	t.Helper()
	sim := livechattest.New(livechattest.Options{})
	t.Cleanup(sim.Close)
	if token == "" {
		token = sim.AgentToken()
	}
	f := &setupFixture{sim: sim, logs: &simcore.Logs{}, cfg: livechat.SetupConfig{URL: hookURL, Secret: hookSecret}}
	c, err := livechat.NewClient(livechat.Config{
		APIURL: sim.APIURL(), AccountsURL: sim.AccountsURL(), OrganizationID: sim.Options().OrganizationID,
		ClientID: sim.Options().ClientID, GroupID: 0, AgentToken: token, RetryDelay: time.Millisecond,
		Logger: f.logs.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	t.Cleanup(func() {
		for _, s := range []string{sim.Options().PAT, sim.AgentToken(), hookSecret} {
			if strings.Contains(f.logs.String(), s) {
				t.Errorf("logs contain a secret: %s", f.logs.String())
			}
		}
	})
	return f
}

func (f *setupFixture) setup(t *testing.T) livechat.SetupResult {
	t.Helper()
	res, err := f.client.SetupWebhooks(context.Background(), f.cfg)
	if err != nil {
		t.Fatalf("setup: %v (%+v)", err, res)
	}
	return res
}

// registered returns the registrations by action.
func (f *setupFixture) registered() map[string][]livechattest.Registration {
	out := map[string][]livechattest.Registration{}
	for _, w := range f.sim.Webhooks() {
		out[w.Action] = append(out[w.Action], w)
	}
	return out
}

func checkNamed(checks []health.Check, name string) (health.Check, bool) {
	i := slices.IndexFunc(checks, func(c health.Check) bool { return c.Name == name })
	if i < 0 {
		return health.Check{}, false
	}
	return checks[i], true
}

func TestSetupRegistersEveryHandledAction(t *testing.T) {
	f := newSetup(t, "")
	res := f.setup(t)
	want := []string{"chat_deactivated", "chat_properties_updated", "chat_transferred", "events_marked_as_seen",
		"incoming_event", "thread_properties_updated", "user_added_to_chat", "user_removed_from_chat"}
	if !slices.Equal(livechat.WebhookActions(), want) || !slices.Equal(res.Registered, want) {
		t.Fatalf("registered %v, actions %v", res.Registered, livechat.WebhookActions())
	}
	for action, regs := range f.registered() {
		if len(regs) != 1 {
			t.Fatalf("%s registered %d times", action, len(regs))
		}
		w := regs[0]
		if w.URL != hookURL || w.SecretKey != hookSecret || w.Type != "license" || w.OwnerClientID != f.sim.Options().ClientID ||
			!strings.HasPrefix(w.Description, "hitl-bridge ") || strings.Contains(w.Description, hookSecret) {
			t.Errorf("%s: %+v", action, w)
		}
		wantFilter := action == "incoming_event"
		if got := w.Filters["author_type"] == "agent"; got != wantFilter || (!wantFilter && len(w.Filters) > 0) {
			t.Errorf("%s filters %v", action, w.Filters)
		}
	}
	// Not installed: webhooks stay off, and the operator is told how to
	// install the app.
	c, ok := checkNamed(res.Checks, "installed")
	if res.Enabled || !ok || c.Status != health.Fail || !strings.Contains(c.Fix, "Private installation") {
		t.Fatalf("enabled %v, checks %+v", res.Enabled, res.Checks)
	}

	f.sim.InstallApp()
	res = f.setup(t)
	if len(res.Registered) != 0 || len(res.Unregistered) != 0 || !res.Enabled || len(res.Checks) != 0 {
		t.Fatalf("second run: %+v", res)
	}
	if n := len(f.sim.Webhooks()); n != len(livechat.WebhookActions()) {
		t.Fatalf("%d registrations after two runs", n)
	}
}

func TestSetupRestoresWebhookDeletedInConsole(t *testing.T) {
	f := newSetup(t, "")
	f.sim.InstallApp()
	f.setup(t)
	gone := f.registered()["chat_transferred"][0]
	f.sim.DeleteWebhook(gone.ID)
	res := f.setup(t)
	if !slices.Equal(res.Registered, []string{"chat_transferred"}) || len(res.Unregistered) != 0 {
		t.Fatalf("%+v", res)
	}
	if regs := f.registered()["chat_transferred"]; len(regs) != 1 || regs[0].ID == gone.ID {
		t.Fatalf("chat_transferred: %+v", regs)
	}
}

func TestSetupRemovesOwnStaleRegistrationsOnly(t *testing.T) {
	f := newSetup(t, "")
	f.sim.InstallApp()
	// The bridge's earlier registrations at another URL, one for an action
	// it no longer handles, and another integration's webhook of the app.
	old := f.cfg
	old.URL = "https://old-api.example.com/webhooks/livechat"
	f.cfg = old
	f.setup(t)
	f.cfg.URL = hookURL
	register := func(action, url, description string) {
		t.Helper()
		if _, err := postConfig(f, "register_webhook", map[string]any{
			"action": action, "secret_key": "other", "url": url, "description": description,
			"owner_client_id": f.sim.Options().ClientID, "type": "license",
		}); err != nil {
			t.Fatal(err)
		}
	}
	register("incoming_chat", old.URL, "hitl-bridge")
	register("incoming_event", "https://crm.example.com/hook", "CRM sync")

	res := f.setup(t)
	if len(res.Registered) != len(livechat.WebhookActions()) || len(res.Unregistered) != len(livechat.WebhookActions())+1 {
		t.Fatalf("%+v", res)
	}
	for _, w := range f.sim.Webhooks() {
		if w.URL == old.URL {
			t.Errorf("stale registration kept: %+v", w)
		}
	}
	if regs := f.registered()["incoming_event"]; len(regs) != 2 {
		t.Errorf("incoming_event: %+v (the CRM's registration must stay)", regs)
	}
}

func TestSetupReRegistersAfterSecretChange(t *testing.T) {
	f := newSetup(t, "")
	f.sim.InstallApp()
	f.setup(t)
	f.cfg.Secret = "a-rotated-webhook-secret"
	res := f.setup(t)
	if len(res.Registered) != len(livechat.WebhookActions()) || len(res.Unregistered) != len(livechat.WebhookActions()) {
		t.Fatalf("%+v", res)
	}
	for _, w := range f.sim.Webhooks() {
		if w.SecretKey != "a-rotated-webhook-secret" {
			t.Errorf("old secret still registered: %s", w.Action)
		}
	}
}

func TestSetupFinishesHalfDoneRun(t *testing.T) {
	f := newSetup(t, "")
	f.sim.InstallApp()
	f.sim.FailNext("register_webhook", 1, livechattest.Fault{Status: 500, Type: "internal", Message: "boom"})
	res, err := f.client.SetupWebhooks(context.Background(), f.cfg)
	if err == nil || len(res.Registered) != len(livechat.WebhookActions())-1 {
		t.Fatalf("first run: %v, %+v", err, res)
	}
	res = f.setup(t)
	if len(res.Registered) != 1 || len(f.sim.Webhooks()) != len(livechat.WebhookActions()) {
		t.Fatalf("second run: %+v, %d registrations", res, len(f.sim.Webhooks()))
	}
}

func TestSetupReenablesDisabledWebhooks(t *testing.T) {
	f := newSetup(t, "")
	f.sim.InstallApp()
	if _, err := postConfig(f, "disable_license_webhooks", map[string]any{"owner_client_id": f.sim.Options().ClientID}); err != nil {
		t.Fatal(err)
	}
	res := f.setup(t)
	if !res.Enabled || !f.sim.WebhooksEnabled() || len(res.Checks) != 0 {
		t.Fatalf("%+v", res)
	}
}

func TestSetupRunsOncePerPropagationDelay(t *testing.T) {
	f := newSetup(t, "")
	var mu sync.Mutex
	held := time.Time{}
	f.cfg.Lease = func(_ context.Context, _, _ string, now, until time.Time) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if now.Before(held) {
			return false, nil
		}
		held = until
		return true, nil
	}
	f.setup(t)
	f.sim.DeleteWebhook(f.sim.Webhooks()[0].ID)
	res := f.setup(t)
	if c, ok := checkNamed(res.Checks, "webhooks"); len(res.Registered) != 0 || !ok || c.Status != health.Warn {
		t.Fatalf("second run within 2 minutes: %+v", res)
	}
}

func TestSetupRefusedCredentials(t *testing.T) {
	tests := []struct {
		name   string
		token  string
		scopes []string
		want   string
	}{
		{"wrong PAT", "dGVzdC1hY2NvdW50Ondyb25n", nil, "refused livechat.agentToken"},
		{"missing scope", "", []string{"chats--all:rw", "webhooks.state:rw"}, "lacks the webhooks.configuration:rw scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSetup(t, tt.token)
			if tt.scopes != nil {
				f.sim.SetScopes(tt.scopes...)
			}
			res, err := f.client.SetupWebhooks(context.Background(), f.cfg)
			c, ok := checkNamed(res.Checks, "credentials")
			if err == nil || !ok || c.Status != health.Fail || !strings.Contains(c.Detail, tt.want) || c.Fix == "" {
				t.Fatalf("err %v, checks %+v", err, res.Checks)
			}
			if len(f.sim.Webhooks()) != 0 {
				t.Fatal("registered with refused credentials")
			}
		})
	}
}

func TestInspect(t *testing.T) {
	f := newSetup(t, "")
	checks := f.client.Inspect(context.Background(), f.cfg)
	status := map[string]health.Status{}
	for _, c := range checks {
		status[c.Name] = c.Status
		if c.Status != health.OK && c.Fix == "" {
			t.Errorf("%s has no fix", c.Name)
		}
	}
	want := map[string]health.Status{"credentials": health.OK, "chats": health.OK, "group": health.OK, "webhooks": health.Fail, "installed": health.Fail}
	if !mapsEqual(status, want) {
		t.Fatalf("before setup: %+v", checks)
	}
	if len(f.sim.Webhooks()) != 0 {
		t.Fatal("Inspect changed registrations")
	}
	f.sim.InstallApp()
	f.setup(t)
	for _, c := range f.client.Inspect(context.Background(), f.cfg) {
		if c.Status != health.OK {
			t.Errorf("after setup: %+v", c)
		}
	}
	// Without groups--all:ro the group cannot be checked: a warning.
	f.sim.SetScopes("chats--all:rw", "webhooks.configuration:rw", "webhooks.state:rw")
	if c, _ := checkNamed(f.client.Inspect(context.Background(), f.cfg), "group"); c.Status != health.Warn {
		t.Errorf("group without scope: %+v", c)
	}
	f.sim.SetScopes("webhooks.configuration:rw", "webhooks.state:rw", "groups--all:ro")
	if c, _ := checkNamed(f.client.Inspect(context.Background(), f.cfg), "chats"); c.Status != health.Fail || !strings.Contains(c.Detail, "chats--all:rw") {
		t.Errorf("chats without scope: %+v", c)
	}
}

func TestInspectUnknownGroup(t *testing.T) {
	sim := livechattest.New(livechattest.Options{})
	defer sim.Close()
	c, err := livechat.NewClient(livechat.Config{
		APIURL: sim.APIURL(), OrganizationID: sim.Options().OrganizationID, ClientID: sim.Options().ClientID,
		GroupID: 42, AgentToken: sim.AgentToken(), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := checkNamed(c.Inspect(context.Background(), livechat.SetupConfig{URL: hookURL, Secret: hookSecret}), "group"); g.Status != health.OK {
		t.Fatalf("%+v", g)
	}
	sim.RemoveGroup(42)
	g, _ := checkNamed(c.Inspect(context.Background(), livechat.SetupConfig{URL: hookURL, Secret: hookSecret}), "group")
	if g.Status != health.Fail || !strings.Contains(g.Detail, "no group 42") || !strings.Contains(g.Fix, "LIVECHAT_GROUP_ID") {
		t.Fatalf("%+v", g)
	}
}

func TestInspectWrongClientID(t *testing.T) {
	sim := livechattest.New(livechattest.Options{})
	defer sim.Close()
	c, err := livechat.NewClient(livechat.Config{
		APIURL: sim.APIURL(), OrganizationID: sim.Options().OrganizationID, ClientID: "someone-elses-app",
		AgentToken: sim.AgentToken(), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := c.Inspect(context.Background(), livechat.SetupConfig{URL: hookURL, Secret: hookSecret})
	if len(checks) != 1 || checks[0].Status != health.Fail || !strings.Contains(checks[0].Detail, "someone-elses-app") || !strings.Contains(checks[0].Fix, "LIVECHAT_CLIENT_ID") {
		t.Fatalf("%+v", checks)
	}
}

// postConfig calls the simulator's Configuration API as the operator would
// by hand.
func postConfig(f *setupFixture, action string, in map[string]any) (int, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodPost, f.sim.APIURL()+"/configuration/action/"+action, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Basic "+f.sim.AgentToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("%s: HTTP %d", action, resp.StatusCode)
	}
	return resp.StatusCode, nil
}

func mapsEqual(a, b map[string]health.Status) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
