package reliability

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
)

// long selects the long form: HITL_RELIABILITY=long.
var long = os.Getenv("HITL_RELIABILITY") == "long"

// size is n in the short form and longN in the long form.
func size(n, longN int) int {
	if long {
		return longN
	}
	return n
}

// figure is a row of the table: what is measured and the target it must
// meet.
type figure struct {
	key, what, target string
}

// figures are the rows of the table, in the order it prints them.
var figures = []figure{
	{"forgery/livechat", "forged LiveChat webhooks: accepted · store writes · callbacks · provider calls", "0 · 0 · 0 · 0 of ≥ 200"},
	{"forgery/zoho", "forged SalesIQ webhooks: accepted · store writes · callbacks · provider calls", "0 · 0 · 0 · 0 of ≥ 200"},
	{"forgery/botpress", "Botpress calls with a wrong path token: accepted · store writes · callbacks · provider calls", "0 · 0 · 0 · 0 of ≥ 200"},
	{"forgery/native", "native and operator calls with a wrong key: accepted · store writes · callbacks · provider calls", "0 · 0 · 0 · 0"},
	{"forgery/control", "the genuine deliveries the forgeries imitate: accepted", "all"},
	{"duplicates", "provider events, each delivered 3 times concurrently: distinct ids at the bot · delivered twice · out of order", "all · 0 · 0"},
	{"outage/503", "bot answers 503 for a stretch: events at the bot after recovery · lost · twice · out of order", "all · 0 · 0 · 0"},
	{"outage/timeout", "bot hangs for a stretch (callback timeout): events at the bot after recovery · lost · twice · out of order", "all · 0 · 0 · 0"},
	{"outage/deadletter", "bot down past the 25 h retry window: dead-lettered · replayed by the operator · lost · twice", "all · all · 0 · 0"},
	{"outage/webhook", "webhooks answered while the bot is down or hangs: non-200 · slowest answer", "0 · < 5 s (Zoho's timeout)"},
	{"crash/outbox", "killed between persisting an event and delivering it: delivered by the sweep · lost · twice", "all · 0 · 0"},
	{"crash/start", "retried startHitl after a crash between the provider call and the session write: provider conversations opened", "1"},
	{"faults/livechat", "LiveChat faults (429, too_many_requests, 5xx, timeouts) on open, send, upload, close, token: cases as specified · most attempts of a call · duplicates at LiveChat", "all · ≤ 3 · 0"},
	{"faults/zoho", "SalesIQ faults (429, 1023, 5xx, timeouts, HTTP-200 errors) on open, send, upload, close, token: cases as specified · most attempts of a call · duplicates at SalesIQ", "all · ≤ 3 · 0"},
	{"tokens", "50 concurrent invalid-token failures: Zoho token refreshes per round · sends refused", "1 · 0"},
	{"load", "webhook events of many sessions at once (64 in flight; 16 on moto_server, 8 in the short form): delivered · lost · twice · 5xx · out of order", "all · 0 · 0 · 0 · 0"},
	{"malformed", "malformed requests on every route: 5xx · panics · errors without the JSON error object", "0 · 0 · 0"},
	{"secrets", "log lines of every bridge in this run containing a credential the run used", "0"},
}

// measurement is one figure measured on one store ("" when the store plays
// no part).
type measurement struct {
	store, value string
	ok           bool
}

var table struct {
	mu    sync.Mutex
	got   map[string][]measurement
	notes []string
}

// note adds a finding to print under the table: a gap a figure does not
// count against its target, with who owns it.
func note(key, format string, args ...any) {
	table.mu.Lock()
	defer table.mu.Unlock()
	n := fmt.Sprintf("%s: %s", key, fmt.Sprintf(format, args...))
	for _, have := range table.notes {
		if have == n {
			return
		}
	}
	table.notes = append(table.notes, n)
}

// record keeps a figure measured by t on store and fails t when the
// figure falls short.
func record(t testing.TB, key, store string, ok bool, format string, args ...any) {
	t.Helper()
	f, known := lookup(key)
	if !known {
		t.Fatalf("no figure %q in the table", key)
	}
	value := fmt.Sprintf(format, args...)
	table.mu.Lock()
	if table.got == nil {
		table.got = map[string][]measurement{}
	}
	table.got[key] = append(table.got[key], measurement{store: store, value: value, ok: ok})
	table.mu.Unlock()
	if !ok {
		t.Errorf("%s (%s): measured %s, target %s", f.what, storeName(store), value, f.target)
	}
}

func lookup(key string) (figure, bool) {
	for _, f := range figures {
		if f.key == key {
			return f, true
		}
	}
	return figure{}, false
}

func storeName(store string) string {
	switch store {
	case "bolt":
		return "embedded"
	case "dynamo":
		return "DynamoDB"
	case "":
		return "—"
	}
	return store
}

func TestMain(m *testing.M) {
	start := time.Now()
	code := awstest.Run(m)
	scan := apptest.LogScans()
	if scan.Envs > 0 {
		ok := scan.Leaks == 0
		table.mu.Lock()
		if table.got == nil {
			table.got = map[string][]measurement{}
		}
		table.got["secrets"] = append(table.got["secrets"], measurement{
			value: fmt.Sprintf("%d of %d lines (%d bridges, %d credential checks)", scan.Leaks, scan.Lines, scan.Envs, scan.Secrets),
			ok:    ok,
		})
		table.mu.Unlock()
		if !ok && code == 0 {
			code = 1
		}
	}
	printTable(time.Since(start))
	os.Exit(code)
}

// printTable prints the figures as a Markdown table.
func printTable(took time.Duration) {
	form := "short form (HITL_RELIABILITY=long for the long form)"
	if long {
		form = "long form"
	}
	rows := [][]string{{"#", "figure", "store", "measured", "target", ""}}
	table.mu.Lock()
	for i, f := range figures {
		got := table.got[f.key]
		if len(got) == 0 {
			rows = append(rows, []string{fmt.Sprint(i + 1), f.what, "—", "not measured in this run", f.target, ""})
			continue
		}
		for _, g := range got {
			verdict := "ok"
			if !g.ok {
				verdict = "FAIL"
			}
			rows = append(rows, []string{fmt.Sprint(i + 1), f.what, storeName(g.store), g.value, f.target, verdict})
		}
	}
	notes := table.notes
	table.mu.Unlock()
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nhitl-bridge reliability figures, %s, %s\n\n", form, took.Round(time.Second))
	for n, r := range rows {
		b.WriteString("|")
		for i, c := range r {
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
		}
		b.WriteString("\n")
		if n == 0 {
			b.WriteString("|")
			for _, w := range widths {
				b.WriteString(strings.Repeat("-", w+2) + "|")
			}
			b.WriteString("\n")
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes (measured, not counted against a target):\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
	}
	fmt.Print(b.String())
}
