package admin_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
)

// chromium finds the browser `make test-browser-deps` installs. Without
// one the test is skipped, except in CI (CI=true), where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium on PATH: make test-browser-deps installs it (apt-get install chromium chromium-driver)")
	}
	t.Skip("no Chromium on PATH: run make test-browser-deps")
	return ""
}

// artifact is where a screenshot is kept: HITL_ARTIFACTS, else
// .artifacts/ at the repository root (git-ignored).
func artifact(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("HITL_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", ".artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A real browser signs in to /admin, sees the dead letter, replays it with
// the page's button, and sees the result; the bot then has the event.
func TestAdminPageInBrowser(t *testing.T) {
	exe := chromium(t)
	e, sessionID := withDeadLetter(t)
	e.Bot.SetDown(false)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 1000))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	// The first call starts the browser and must not carry a timeout.
	if err := chromedp.Do(browser, chromedp.Navigate(e.Server.URL+"/admin")); err != nil {
		t.Fatalf("browser: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(browser, 60*time.Second)
	defer cancelTimeout()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			html, _ := chromedp.Run(browser, chromedp.OuterHTML(chromedp.CSS("body")))
			t.Fatalf("%s: %v; page: %s", what, err, html)
		}
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("text of #%s: %v", id, err)
		}
		return s
	}

	// A wrong key is refused with a message; the right one signs in.
	do("wrong key", chromedp.WaitVisible(chromedp.ID("key")), chromedp.SendKeys(chromedp.ID("key"), "not-the-admin-key-123"),
		chromedp.Submit(chromedp.ID("key")), chromedp.WaitVisible(chromedp.ID("error")))
	errorText := text("error")
	do("sign in", chromedp.SendKeys(chromedp.ID("key"), apptest.AdminKey), chromedp.Submit(chromedp.ID("key")),
		chromedp.WaitVisible(chromedp.ID("verdict")))
	verdict, deadLetters := text("verdict"), text("dead-letters")
	cookies, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
	})
	if err != nil {
		t.Fatal(err)
	}
	do("replay", chromedp.Click(chromedp.CSS("button.replay")), chromedp.WaitVisible(chromedp.ID("flash")),
		chromedp.WaitVisible(chromedp.ID("no-dead-letters")))
	flash := text("flash")
	screenshot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	shot := artifact(t, "admin-replay.png")
	if err := os.WriteFile(shot, screenshot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the page after the replay: %s", shot)

	if !strings.Contains(errorText, "not the admin API key") {
		t.Errorf("wrong key message %q", errorText)
	}
	if verdict != "failing" { // the dead letter, and no webhooks registered
		t.Errorf("verdict %q", verdict)
	}
	if !strings.Contains(deadLetters, sessionID) || !strings.Contains(deadLetters, "hitl.message") {
		t.Errorf("dead letters table %q", deadLetters)
	}
	if !strings.Contains(flash, "Replayed 1 event(s) of session "+sessionID) {
		t.Errorf("flash %q", flash)
	}
	if c := cookies.Cookies; len(c) != 1 || !c[0].HTTPOnly || c[0].SameSite != network.CookieSameSiteStrict {
		t.Errorf("session cookie %+v", c)
	}
	ev := e.Bot.Events()
	if len(ev) != 2 || ev[1].Message == nil || ev[1].Message.Text != "are you still there?" {
		t.Fatalf("bot events after the replay: %+v", ev)
	}
}
