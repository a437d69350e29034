package admin_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
)

// withDeadLetter starts a bridge whose bot was down past the retry window
// for one agent message; it returns the env and the session id.
func withDeadLetter(t *testing.T) (*apptest.Env, string) {
	t.Helper()
	e := apptest.New(t, apptest.Bolt(t))
	sessionID, chatID := e.Handoff(t)
	if _, err := e.LiveChat.AgentJoins(chatID, livechattest.Ann); err != nil {
		t.Fatal(err)
	}
	e.Bot.SetDown(true)
	if _, err := e.LiveChat.AgentSays(chatID, "are you still there?"); err != nil {
		t.Fatal(err)
	}
	for range 26 * 3 {
		e.Clock.Advance(20 * time.Minute)
		if _, err := e.App.Dispatcher.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return e, sessionID
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestPageSignInAndForms(t *testing.T) {
	e, sessionID := withDeadLetter(t)
	b := apptest.NewBrowser(t, e.Server.URL)
	if code, page := b.Get("/admin"); code != http.StatusOK || !strings.Contains(page, `id="login"`) || strings.Contains(page, sessionID) {
		t.Fatalf("signed out: %d", code)
	}
	if resp, page := b.Post("/admin/login", url.Values{"key": {"wrong-key-0123456789"}}, ""); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "not the admin API key") {
		t.Fatalf("wrong key: %d", resp.StatusCode)
	}
	if resp, _ := b.Post("/admin/login", url.Values{"key": {apptest.AdminKey}}, "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site sign-in: %d", resp.StatusCode)
	}
	resp, _ := b.Post("/admin/login", url.Values{"key": {apptest.AdminKey}}, e.Server.URL)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	cookie := resp.Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure || cookie.Path != "/admin" ||
		strings.Contains(cookie.Value, apptest.AdminKey) {
		t.Fatalf("cookie %+v (Secure is off on loopback only)", cookie)
	}
	code, page := b.Get("/admin")
	if code != http.StatusOK || !strings.Contains(page, sessionID) || !strings.Contains(page, "dead letters") {
		t.Fatalf("signed in: %d", code)
	}
	for _, secret := range []string{apptest.AdminKey, apptest.BotKey, apptest.SigningKey, e.LiveChat.AgentToken(), apptest.WebhookSecret} {
		if strings.Contains(page, secret) {
			t.Fatal("the page shows a secret")
		}
	}
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the page")
	}
	replay := "/admin/dead-letters/" + sessionID + "/replay"
	e.Bot.SetDown(false)
	if resp, _ := b.Post(replay, url.Values{}, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replay without CSRF token: %d", resp.StatusCode)
	}
	if resp, _ := b.Post(replay, url.Values{"csrf": {m[1]}}, "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site replay: %d", resp.StatusCode)
	}
	if n := len(e.Bot.Events()); n != 1 { // the assignment only
		t.Fatalf("refused forms delivered something: %d events", n)
	}
	resp, _ = b.Post(replay, url.Values{"csrf": {m[1]}}, "")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "Replayed+1+event") {
		t.Fatalf("replay: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if ev := e.Bot.Events(); len(ev) != 2 || ev[1].Message.Text != "are you still there?" {
		t.Fatalf("bot events after replay: %+v", ev)
	}
	if resp, _ = b.Post("/admin/logout", url.Values{"csrf": {m[1]}}, ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if _, page := b.Get("/admin"); !strings.Contains(page, `id="login"`) {
		t.Fatal("still signed in after sign-out")
	}
}

func TestJSONRoutesNeedTheAdminKey(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t))
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/admin/status"}, {"POST", "/v1/admin/setup"}, {"POST", "/v1/admin/zoho/rotate-key"},
	} {
		if code, out := e.Do(t, r.method, r.path, nil); code != http.StatusUnauthorized || out["error"] == nil {
			t.Errorf("%s %s with the bot key: %d %v", r.method, r.path, code, out)
		}
	}
	code, out := e.Do(t, "GET", "/v1/admin/status", nil, "Authorization", "Bearer "+apptest.AdminKey)
	if code != http.StatusOK || out["verdict"] == nil {
		t.Fatalf("%d %v", code, out)
	}
}
