package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

const (
	forwardSize = 50 << 20 // SalesIQ's limit
	// memoryBudget is the most a 50 MiB forward may raise a function's
	// peak memory to; Lambda gives it 128 MB.
	memoryBudget = 40 << 20
)

// childBinary is this test binary, or, under the race detector (whose
// shadow memory the Lambda binary does not have), the same tests built
// without it.
func childBinary(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return os.Args[0]
	}
	bin := filepath.Join(t.TempDir(), "app.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the tests without -race: %v\n%s", err, out)
	}
	return bin
}

// TestPeakMemoryOfA50MiBForward forwards a 50 MiB image to SalesIQ in a
// child process that holds only the bridge (the file's server and the
// SalesIQ simulator stay in this one), and reads the child's peak resident
// memory (VmHWM): the file is streamed through a spooled copy, never held.
func TestPeakMemoryOfA50MiBForward(t *testing.T) {
	if os.Getenv("HITL_FORWARD_CHILD") != "" {
		forwardInChild(t)
		return
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Fatalf("VmHWM needs Linux /proc: %v", err)
	}
	zs := zohotest.New(zohotest.Options{})
	defer zs.Close()
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Length", strconv.Itoa(forwardSize))
		_, _ = io.WriteString(w, "\x89PNG\r\n\x1a\n")
		_, _ = io.CopyN(w, zeros{}, forwardSize-8)
	}))
	defer files.Close()
	bot := httptest.NewServer(apptest.NewBot())
	defer bot.Close()

	z := zs.Options()
	cmd := exec.Command(childBinary(t), "-test.run=^TestPeakMemoryOfA50MiBForward$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HITL_FORWARD_CHILD=1",
		"FORWARD_FILE_URL="+files.URL+"/receipt.png", "FORWARD_STORE="+filepath.Join(t.TempDir(), "bridge.db"),
		"BOT_CALLBACK_URL="+bot.URL+"/hitl", "HITL_ALLOW_PRIVATE_URLS=true", "DEFAULT_PROVIDER=zoho",
		"ZOHO_SCREEN_NAME="+z.ScreenName, "ZOHO_REGION=us", "ZOHO_APP_ID="+z.AppID, "ZOHO_DEPARTMENT_ID="+z.DepartmentID,
		"ZOHO_ORG_ID="+z.OrgID, "ZOHO_ACCOUNTS_URL="+zs.AccountsURL(), "ZOHO_SALESIQ_URL="+zs.SalesIQURL(),
		"FORWARD_ZOHO_CLIENT="+z.ClientID, "FORWARD_ZOHO_SECRET="+z.ClientSecret, "FORWARD_ZOHO_REFRESH="+z.RefreshToken,
		"TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`peak=(\d+) kB`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("child printed no peak:\n%s", out)
	}
	peakKB, _ := strconv.Atoi(string(m[1]))
	t.Logf("peak resident memory of a %d MiB forward: %.1f MB", forwardSize>>20, float64(peakKB)/1024)
	if peakKB*1024 > memoryBudget {
		t.Fatalf("peak memory %d kB, budget %d kB", peakKB, memoryBudget>>10)
	}
	var got int
	for _, c := range zs.Conversations() {
		for _, msg := range c.Messages {
			if msg.FileName != "" {
				got = len(msg.File)
				if msg.ContentType != "image/png" || !bytes.HasPrefix(msg.File, []byte("\x89PNG")) {
					t.Fatalf("SalesIQ got %s of type %s", msg.FileName, msg.ContentType)
				}
			}
		}
	}
	if got != forwardSize {
		t.Fatalf("SalesIQ received a file of %d bytes, want %d", got, forwardSize)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// forwardInChild opens a SalesIQ session and sends the image, then prints
// the process's VmHWM.
func forwardInChild(t *testing.T) {
	c, err := config.Env(os.Getenv, app.Integrations())
	if err != nil {
		t.Fatal(err)
	}
	c.Secret = config.Secret{BotAPIKeys: []string{apptest.BotKey}, CallbackSigningSecret: apptest.SigningKey,
		Blocks: map[string]json.RawMessage{hitl.Zoho: must(json.Marshal(zoho.ConfigSecret{
			ClientID: os.Getenv("FORWARD_ZOHO_CLIENT"), ClientSecret: os.Getenv("FORWARD_ZOHO_SECRET"), RefreshToken: os.Getenv("FORWARD_ZOHO_REFRESH"),
		}))}}
	st, err := bolt.Open(os.Getenv("FORWARD_STORE"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := app.New(c, app.Options{Store: st, Log: slog.New(slog.DiscardHandler), Documents: (&apptest.Documents{}).Open})
	if err != nil {
		t.Fatal(err)
	}
	h := a.Handler()
	call := func(path string, body any) map[string]any {
		raw, _ := json.Marshal(body)
		req := httptest.NewRequest("POST", path, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+apptest.BotKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		if rec.Code/100 != 2 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		return out
	}
	u := call("/v1/users", map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"})
	s := call("/v1/sessions", map[string]any{"userId": u["userId"], "title": "Receipt", "botConversationId": "bc-1"})
	call("/v1/sessions/"+s["sessionId"].(string)+"/messages", map[string]any{"type": "image", "payload": map[string]any{"imageUrl": os.Getenv("FORWARD_FILE_URL")}})
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			fmt.Printf("peak=%s kB\n", f[1])
		}
	}
}

func must(raw []byte, err error) json.RawMessage {
	if err != nil {
		panic(err)
	}
	return raw
}
