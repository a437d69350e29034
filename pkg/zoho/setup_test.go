package zoho_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

// hookStore is a WebhookStore in memory.
type hookStore struct {
	mu       sync.Mutex
	state    zoho.WebhookState
	saves    int
	loads    int
	failLoad int // loads that fail before they work again
}

func (s *hookStore) LoadWebhook(context.Context) (zoho.WebhookState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	if s.failLoad > 0 {
		s.failLoad--
		return zoho.WebhookState{}, errors.New("store unavailable")
	}
	return s.state, nil
}

func (s *hookStore) loaded() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads
}

func (s *hookStore) SaveWebhook(_ context.Context, st zoho.WebhookState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = st
	s.saves++
	return nil
}

func (s *hookStore) get() zoho.WebhookState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

type hookFixture struct {
	sim      *zohotest.Server
	client   *zoho.Client
	store    *hookStore
	receiver *httptest.Server // answers SalesIQ's HEAD check
	headOK   bool
	verifier *zoho.Verifier
	cfg      zoho.SetupConfig
	logs     *simcore.Logs
}

func newHookFixture(t *testing.T) *hookFixture {
	t.Helper()
	f := &hookFixture{sim: zohotest.New(zohotest.Options{}), store: &hookStore{}, headOK: true, logs: &simcore.Logs{}}
	t.Cleanup(f.sim.Close)
	f.receiver = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && f.headOK {
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(f.receiver.Close)
	o := f.sim.Options()
	oauth, err := zoho.NewOAuth(zoho.OAuthConfig{Region: "us", AccountsURL: f.sim.AccountsURL(), ClientID: o.ClientID, ClientSecret: o.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := oauth.Refresh(context.Background(), o.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	f.client = f.clientWith(t, zoho.StaticToken(tok.AccessToken), o.DepartmentID)
	f.cfg = zoho.SetupConfig{URL: f.receiver.URL + "/webhooks/zoho", Store: f.store}
	f.verifier = zoho.NewVerifier(zoho.VerifierConfig{Store: f.store, AppID: o.AppID, OrgID: o.OrgID, Logger: f.logs.Logger(), ReloadRefused: time.Nanosecond})
	t.Cleanup(func() {
		if strings.Contains(f.logs.String(), tok.AccessToken) {
			t.Error("logs contain the access token")
		}
	})
	return f
}

func (f *hookFixture) clientWith(t *testing.T, tokens zoho.TokenSource, department string) *zoho.Client {
	t.Helper()
	o := f.sim.Options()
	c, err := zoho.NewClient(zoho.Config{Region: "us", SalesIQURL: f.sim.SalesIQURL(), ScreenName: o.ScreenName, AppID: o.AppID,
		DepartmentID: department, Tokens: tokens, Logger: f.logs.Logger(), RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *hookFixture) setup(t *testing.T) zoho.SetupResult {
	t.Helper()
	res, err := f.client.SetupWebhook(context.Background(), f.cfg)
	if err != nil {
		t.Fatalf("setup: %v (%+v)", err, res)
	}
	return res
}

// delivery is a body SalesIQ signed now, and its header.
func (f *hookFixture) delivery(t *testing.T, conversation string) (http.Header, []byte) {
	t.Helper()
	o := f.sim.Options()
	body, err := json.Marshal(map[string]any{
		"org_id": o.OrgID, "app_id": o.AppID, "event": "conversation.completed", "entity_type": "conversation",
		"entity_id": conversation, "attempt": 1, "entity": map[string]any{"id": conversation},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(zoho.SignatureHeader, f.sim.Sign(body))
	return h, body
}

func (f *hookFixture) verifies(t *testing.T, h http.Header, body []byte) bool {
	t.Helper()
	evs, err := f.verifier.Parse(h, body)
	if err != nil && hitl.ErrorCode(err) != hitl.CodeUnauthenticated {
		t.Fatalf("parse: %v", err)
	}
	return err == nil && len(evs) == 1
}

func TestSetupWebhookCreatesWebhookAndKey(t *testing.T) {
	f := newHookFixture(t)
	h, body := f.delivery(t, "c1")
	if f.verifies(t, h, body) {
		t.Fatal("verified before the bridge had a key")
	}
	res := f.setup(t)
	hooks := f.sim.Webhooks()
	if !res.Created || !res.KeyCreated || len(hooks) != 1 || len(res.Checks) != 0 {
		t.Fatalf("%+v, webhooks %+v", res, hooks)
	}
	w := hooks[0]
	if w.URL != f.cfg.URL || w.Type != "data" || !w.Secured || !slices.Equal(w.Events, zoho.WebhookEvents()) ||
		!slices.Equal(w.AppIDs, []string{f.sim.Options().AppID}) || len(w.Keys) != 1 {
		t.Fatalf("webhook %+v", w)
	}
	if st := f.store.get(); st.WebhookID != w.ID || len(st.Keys) != 1 || st.Keys[0].ID != w.Keys[0].ID {
		t.Fatalf("stored %+v", st)
	}
	h, body = f.delivery(t, "c2")
	if !f.verifies(t, h, body) {
		t.Fatal("a delivery signed with the new key was refused")
	}
	res = f.setup(t)
	if res.Created || res.KeyCreated || len(res.Deleted) != 0 || len(f.sim.Webhooks()) != 1 {
		t.Fatalf("second run changed something: %+v", res)
	}
}

func TestSetupWebhookHeadCheckFails(t *testing.T) {
	f := newHookFixture(t)
	f.headOK = false
	res, err := f.client.SetupWebhook(context.Background(), f.cfg)
	if err == nil || len(f.sim.Webhooks()) != 0 || len(res.Checks) != 1 || res.Checks[0].Status != health.Fail {
		t.Fatalf("%v %+v", err, res)
	}
	if f.store.saves != 0 {
		t.Fatal("stored something")
	}
}

func TestSetupWebhookRecoversLostKeyAndDeletedWebhook(t *testing.T) {
	f := newHookFixture(t)
	f.setup(t)
	// The stored keys are lost: a new key is created and the unknown one
	// deleted, so the new one signs.
	f.store.SaveWebhook(context.Background(), zoho.WebhookState{})
	res := f.setup(t)
	if res.Created || !res.KeyCreated || len(f.sim.Webhooks()[0].Keys) != 1 {
		t.Fatalf("%+v, %+v", res, f.sim.Webhooks())
	}
	h, body := f.delivery(t, "c1")
	if !f.verifies(t, h, body) {
		t.Fatal("refused after recovering the key")
	}
	// The webhook is deleted in SalesIQ: it comes back.
	first := f.sim.Webhooks()[0].ID
	if _, err := deleteWebhook(f, first); err != nil {
		t.Fatal(err)
	}
	res = f.setup(t)
	if !res.Created || !res.KeyCreated || len(f.sim.Webhooks()) != 1 || f.sim.Webhooks()[0].ID == first {
		t.Fatalf("%+v", res)
	}
}

func TestSetupWebhookReplacesUnfitWebhook(t *testing.T) {
	f := newHookFixture(t)
	f.setup(t)
	// An older webhook of the URL, without conversation.missed.
	o := f.sim.Options()
	body, _ := json.Marshal(map[string]any{"type": "data", "url": f.cfg.URL, "events": []string{"conversation.completed"}, "app_ids": []string{o.AppID}, "secured": true})
	if status, err := apiCall(f, http.MethodPost, "/webhooks", body); err != nil || status != 200 {
		t.Fatal(status, err)
	}
	res := f.setup(t)
	if res.Created || len(res.Deleted) != 1 || len(f.sim.Webhooks()) != 1 {
		t.Fatalf("%+v", res)
	}
}

func TestRotateKey(t *testing.T) {
	f := newHookFixture(t)
	ctx := context.Background()
	f.setup(t)
	oldH, oldBody := f.delivery(t, "before")
	k, err := f.client.RotateKey(ctx, f.store)
	if err != nil {
		t.Fatal(err)
	}
	st := f.store.get()
	if len(st.Keys) != 2 || st.Keys[1].ID != k.ID {
		t.Fatalf("stored %+v", st)
	}
	if keys := f.sim.Webhooks()[0].Keys; len(keys) != 1 || keys[0].ID != k.ID {
		t.Fatalf("SalesIQ keys %+v", keys)
	}
	if _, err := f.client.RotateKey(ctx, f.store); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Fatalf("second rotation: %v", err)
	}
	// A retried delivery signed with the old key still verifies, and
	// keeps it.
	if !f.verifies(t, oldH, oldBody) || len(f.store.get().Keys) != 2 {
		t.Fatal("old key dropped too early")
	}
	// The first delivery signed with the new key completes the rotation.
	h, body := f.delivery(t, "after")
	if !f.verifies(t, h, body) {
		t.Fatal("new key refused")
	}
	if st := f.store.get(); len(st.Keys) != 1 || st.Keys[0].ID != k.ID {
		t.Fatalf("after the rotation: %+v", st)
	}
	if f.verifies(t, oldH, oldBody) {
		t.Fatal("old key still accepted after the rotation")
	}
}

func TestSetupWebhookFinishesRotation(t *testing.T) {
	f := newHookFixture(t)
	f.setup(t)
	f.sim.FailNext("delete_webhook_key", 1, zohotest.Fault{Code: 1001, Message: "Unknown error"})
	if _, err := f.client.RotateKey(context.Background(), f.store); err == nil {
		t.Fatal("rotation did not report the failed delete")
	}
	if n := len(f.sim.Webhooks()[0].Keys); n != 2 {
		t.Fatalf("%d keys at SalesIQ", n)
	}
	f.setup(t)
	keys := f.sim.Webhooks()[0].Keys
	if st := f.store.get(); len(keys) != 1 || keys[0].ID != st.Keys[1].ID {
		t.Fatalf("SalesIQ %+v, stored %+v", keys, st)
	}
}

func TestSetupWebhookNamesMissingScope(t *testing.T) {
	f := newHookFixture(t)
	f.sim.SetScopes("SalesIQ.webhooks.READ", "SalesIQ.Conversations.ALL")
	res, err := f.client.SetupWebhook(context.Background(), f.cfg)
	if err == nil || len(res.Checks) != 1 || !strings.Contains(res.Checks[0].Detail, "SalesIQ.webhooks.CREATE") || len(f.sim.Webhooks()) != 0 {
		t.Fatalf("%v %+v", err, res)
	}
}

func TestVerify(t *testing.T) {
	f := newHookFixture(t)
	for _, c := range f.client.Verify(context.Background()) {
		if c.Status != health.OK {
			t.Errorf("%+v", c)
		}
	}
	wrong := f.clientWith(t, zoho.StaticToken("none"), "1234")
	checks := wrong.Verify(context.Background())
	if len(checks) == 0 || checks[0].Name != "department" || checks[0].Status != health.Fail {
		t.Fatalf("%+v", checks)
	}
	f.sim.SetScopes("SalesIQ.webhooks.ALL", "SalesIQ.Conversations.ALL", "SalesIQ.apps.read")
	checks = f.client.Verify(context.Background())
	if checks[0].Status != health.Fail || !strings.Contains(checks[0].Detail, "SalesIQ.departments.READ") {
		t.Fatalf("%+v", checks)
	}
	f.sim.SetScopes("SalesIQ.Conversations.ALL", "SalesIQ.departments.READ", "SalesIQ.apps.READ")
	checks = f.client.Verify(context.Background())
	if c := checks[len(checks)-1]; c.Name != "webhooks" || !strings.Contains(c.Detail, "SalesIQ.webhooks.READ") {
		t.Fatalf("%+v", checks)
	}
}

func TestInspectWebhook(t *testing.T) {
	f := newHookFixture(t)
	status := func() health.Check {
		checks := f.client.Inspect(context.Background(), f.cfg)
		return checks[len(checks)-1]
	}
	if c := status(); c.Status != health.Fail || c.Fix == "" {
		t.Fatalf("before setup: %+v", c)
	}
	f.setup(t)
	if c := status(); c.Status != health.OK {
		t.Fatalf("after setup: %+v", c)
	}
	f.sim.DisableWebhook(f.sim.Webhooks()[0].ID)
	if c := status(); c.Status != health.Fail || !strings.Contains(c.Detail, "disabled") {
		t.Fatalf("disabled: %+v", c)
	}
}

// Preload reads the stored keys before the first delivery, which then
// reads nothing.
// TestVerifierPreload: the stored keys read in the background at start-up
// serve the first delivery without another read; a failed read is not
// kept as if it were fresh: the first delivery reads them again and its
// stored key verifies it.
func TestVerifierPreload(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failLoad  int
		wantLoads int
	}{
		{"read", 0, 1},
		{"failed", 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newHookFixture(t)
			f.setup(t)
			o := f.sim.Options()
			v := zoho.NewVerifier(zoho.VerifierConfig{Store: f.store, AppID: o.AppID, OrgID: o.OrgID, Logger: f.logs.Logger()})
			f.store.mu.Lock()
			f.store.failLoad = tc.failLoad
			before := f.store.loads
			f.store.mu.Unlock()
			v.Preload()
			for deadline := time.Now().Add(5 * time.Second); f.store.loaded() == before; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("Preload read no keys")
				}
			}
			h, body := f.delivery(t, "conv-1")
			if _, err := v.Parse(h, body); err != nil {
				t.Fatal(err)
			}
			if n := f.store.loaded() - before; n != tc.wantLoads {
				t.Errorf("%d key loads, want %d", n, tc.wantLoads)
			}
		})
	}
}

func TestVerifierConfiguredKeys(t *testing.T) {
	sim := zohotest.New(zohotest.Options{})
	defer sim.Close()
	o := sim.Options()
	v := zoho.NewVerifier(zoho.VerifierConfig{ConfiguredKeys: []string{"not a key", sim.PublicKeyPEM()}, AppID: o.AppID, OrgID: o.OrgID, Logger: slog.New(slog.DiscardHandler)})
	body := []byte(`{"org_id":"` + o.OrgID + `","app_id":"` + o.AppID + `","event":"conversation.completed","entity_id":"c9","entity":{"id":"c9"}}`)
	h := http.Header{}
	h.Set(zoho.SignatureHeader, sim.Sign(body))
	if evs, err := v.Parse(h, body); err != nil || len(evs) != 1 {
		t.Fatalf("%v %v", evs, err)
	}
	h.Set(zoho.SignatureHeader, sim.Sign(append(body, ' ')))
	if _, err := v.Parse(h, body); hitl.ErrorCode(err) != hitl.CodeUnauthenticated {
		t.Fatalf("forged: %v", err)
	}
}

func apiCall(f *hookFixture, method, path string, body []byte) (int, error) {
	o := f.sim.Options()
	oauth, err := zoho.NewOAuth(zoho.OAuthConfig{Region: "us", AccountsURL: f.sim.AccountsURL(), ClientID: o.ClientID, ClientSecret: o.ClientSecret})
	if err != nil {
		return 0, err
	}
	tok, err := oauth.Refresh(context.Background(), o.RefreshToken)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(method, f.sim.SalesIQURL()+"/api/v2/"+o.ScreenName+path, strings.NewReader(string(body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Zoho-oauthtoken "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Error *struct{ Code int } `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	if out.Error != nil {
		return out.Error.Code, nil
	}
	return resp.StatusCode, nil
}

func deleteWebhook(f *hookFixture, id string) (int, error) {
	return apiCall(f, http.MethodDelete, "/webhooks/"+id, nil)
}
