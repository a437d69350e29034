package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestDemoPlaysTheWholeHandoff(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-demo"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"hitl.assigned", `"Hi Ada, I'm checking with the courier now."`, "file new-label.pdf", "reason agent_closed",
		"[file] screenshot.png (image/png", "[user] Where is my order #1042?", `"status":"closed"`,
		`"Hello Ada, a new label is on its way."`, "reason bot_stopped", "(closed: true)",
		`{"provider":"zoho","accepting":true,"agents":1}`, `"Hello, I'm Olga. How can I help?"`, `"status":"assigned"`,
		"hitl.rated", `rating 5 of 5, comment "Quick and kind"`,
		"queue position 1, about 120 s to wait", "hitl.assigned    from Ann (avatar https://cdn.example.com/avatars/ann.png)",
		"hitl.seen        from Ann has read up to", `hitl.rated       rated 1/1 "Quick and kind"`} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if n := strings.Count(s, "signature verified"); n != 13 {
		t.Errorf("%d verified callbacks, want 13:\n%s", n, s)
	}
	if strings.Count(s, "courier ticket 7781") != 1 { // once: in the agent's view only
		t.Error("the agent's note reached the bot")
	}
}

func TestServeRefusesAnIncompleteConfiguration(t *testing.T) {
	env := map[string]string{"HITL_STORE_PATH": t.TempDir() + "/b.db"}
	err := run(t.Context(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "HITL_SECRET_JSON") {
		t.Fatalf("err = %v", err)
	}
	env["HITL_SECRET_JSON"] = `{"botApiKeys":["short"]}`
	err = run(t.Context(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no provider is configured") || !strings.Contains(err.Error(), "botApiKeys[0]") {
		t.Fatalf("err = %v", err)
	}
}

func TestServerBoundsSlowAndIdleClients(t *testing.T) {
	s := newServer("127.0.0.1:0", http.NotFoundHandler())
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Fatalf("timeouts: header %v, read %v, idle %v", s.ReadHeaderTimeout, s.ReadTimeout, s.IdleTimeout)
	}
}
