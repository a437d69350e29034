package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestDemoPlaysTheWholeHandoff(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), nil, &out, io.Discard); err != nil {
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
