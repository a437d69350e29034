package simcore

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRecordAndFaults(t *testing.T) {
	var c Core[string]
	c.Start(http.NewServeMux(), nil, "")
	defer c.Close()
	c.FailNext("send", 2, "busy")
	c.FailNext("send", 1, "gone")
	var got []string
	for range 4 {
		f, ok := c.Record("customer/send", "send")
		got = append(got, f+map[bool]string{true: "!", false: "-"}[ok])
	}
	if want := []string{"busy!", "busy!", "gone!", "-"}; !slices.Equal(got, want) {
		t.Fatalf("faults %v, want %v", got, want)
	}
	c.Record("agent/close", "close")
	if c.Calls("send") != 4 || c.Calls("close") != 1 || c.Calls("open") != 0 {
		t.Fatalf("calls: send %d, close %d", c.Calls("send"), c.Calls("close"))
	}
	if log := c.CallLog(); len(log) != 5 || log[0] != "customer/send" || log[4] != "agent/close" {
		t.Fatalf("call log %v", log)
	}
}

func TestClockAndWebhook(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var c Core[int]
	c.Start(http.NewServeMux(), func() time.Time { return base }, "https://bridge.example.com/hook")
	defer c.Close()
	c.Advance(90 * time.Second)
	if got := c.Now(); !got.Equal(base.Add(90 * time.Second)) {
		t.Fatalf("now %s", got)
	}
	if u, n := c.Webhook(); u != "https://bridge.example.com/hook" || n != 1 {
		t.Fatalf("webhook %s ×%d", u, n)
	}
	c.SetWebhookURL("")
	c.SetDeliveries(0)
	if u, n := c.Webhook(); u != "" || n != 1 {
		t.Fatalf("webhook %q ×%d, want none, once", u, n)
	}
	var wall Clock
	wall.Advance(time.Hour)
	if d := time.Until(wall.Now()); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("the zero clock advanced an hour is %s ahead", d)
	}
}

func TestFilesAreServed(t *testing.T) {
	var c Core[int]
	c.Start(http.NewServeMux(), nil, "")
	defer c.Close()
	u := c.StoreFile("Invoice 4/2.pdf", "application/pdf", []byte("%PDF-1.4"))
	if !strings.HasPrefix(u, c.URL()+"/files/") || !strings.HasSuffix(u, "/Invoice%204_2.pdf") {
		t.Fatalf("file URL %s", u)
	}
	if body, ct, ok := c.File(u); !ok || ct != "application/pdf" || string(body) != "%PDF-1.4" {
		t.Fatalf("File: %q %q %v", body, ct, ok)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pdf" || string(body) != "%PDF-1.4" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	if _, _, ok := c.File(c.URL() + "/files/unknown/x.pdf"); ok {
		t.Fatal("an unknown file was found")
	}
	if resp, err := http.Get(c.URL() + "/files/unknown/x.pdf"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown file: %v %v", resp, err)
	}
}

func TestLogs(t *testing.T) {
	var l Logs
	l.Logger().Debug("hello", "k", "v")
	if !strings.Contains(l.String(), `"msg":"hello","k":"v"`) {
		t.Fatalf("logs %s", l.String())
	}
}

func TestWithUnknownFields(t *testing.T) {
	body := []byte(`{"id":90071992547409931,"chat":{"users":[{"id":"a"},{"id":"b"}],"tags":["x"]}}`)
	out := WithUnknownFields(t, body)
	// 3 object paths (root, chat, the users together) and everywhere, per
	// kind; and the body as it is.
	if want := (3+1)*len(unforeseen) + 1; len(out) != want {
		t.Fatalf("%d variants, want %d", len(out), want)
	}
	if string(out["as documented"]) != string(body) {
		t.Fatalf("as documented: %s", out["as documented"])
	}
	one := string(out["$.chat.users[] + string"])
	if strings.Count(one, "x_unforeseen_field") != 2 || !strings.Contains(one, `{"id":"b","x_unforeseen_field":"unforeseen"}`) {
		t.Fatalf("users variant: %s", one)
	}
	if all := string(out["everywhere + null"]); strings.Count(all, `"x_unforeseen_field":null`) != 4 {
		t.Fatalf("everywhere variant: %s", all)
	}
	if !strings.Contains(one, "90071992547409931") {
		t.Fatalf("a large number lost its digits: %s", one)
	}
}

func TestTokens(t *testing.T) {
	var clock Clock
	tokens := NewTokens(clock.Now)
	tokens.Issue("a", "ann", time.Hour)
	tokens.Issue("b", "", time.Minute)
	tokens.Issue("c", "cid", time.Hour)
	if who, ok := tokens.Subject("a"); !ok || who != "ann" {
		t.Fatalf("a: %q %v", who, ok)
	}
	if _, ok := tokens.Subject("unknown"); ok {
		t.Fatal("a token never issued is good")
	}
	clock.Advance(time.Minute)
	if _, ok := tokens.Subject("b"); ok {
		t.Fatal("an expired token is good")
	}
	tokens.Revoke("a")
	if _, ok := tokens.Subject("a"); ok {
		t.Fatal("a revoked token is good")
	}
	if _, ok := tokens.Subject("c"); !ok {
		t.Fatal("c expired early")
	}
	tokens.ExpireAll()
	if _, ok := tokens.Subject("c"); ok {
		t.Fatal("ExpireAll left c good")
	}
	tokens.Issue("d", "", time.Hour)
	if _, ok := tokens.Subject("d"); !ok {
		t.Fatal("a token issued after ExpireAll is not good")
	}
}

func TestReceiverKeepsDeliveries(t *testing.T) {
	r := NewReceiver(t)
	post := func(body string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, r.URL, strings.NewReader(body))
		req.Header.Set("X-Signature", "sig-"+body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if post("one") != http.StatusOK {
		t.Fatal("not answered 200")
	}
	r.SetStatus(http.StatusServiceUnavailable)
	if post("two") != http.StatusServiceUnavailable {
		t.Fatal("SetStatus not answered")
	}
	got := r.Take()
	if len(got) != 2 || string(got[0].Body) != "one" || got[1].Header.Get("X-Signature") != "sig-two" {
		t.Fatalf("took %+v", got)
	}
	if len(r.Take()) != 0 {
		t.Fatal("Take returned deliveries twice")
	}
}
