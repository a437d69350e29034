//go:build bench

package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one row of the table.
type figure struct {
	Section string  `json:"section"`
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit,omitempty"`
	Text    string  `json:"text"`             // the value as printed
	Target  string  `json:"target,omitempty"` // e.g. "≤ 2"
	Status  string  `json:"status,omitempty"` // ok, MISSING, ERROR; empty without a target
	Note    string  `json:"note,omitempty"`
	// Runs, Min and Max: a figure measured more than once is the median
	// run's, with the spread of the values.
	Runs int     `json:"runs,omitempty"`
	Min  float64 `json:"min,omitempty"`
	Max  float64 `json:"max,omitempty"`
}

// Sections of the table, in the order of issue 6. Sections about one
// provider add its name.
const (
	sectionAgentCalls = "AWS calls per agent message, webhook → bot, warm"
	sectionBotCalls   = "AWS calls per bot message, bot → agent, warm"
	sectionSecrets    = "Secrets Manager calls per 10,000 warm invocations"
	sectionScheduled  = "DynamoDB work of one scheduled run (10,000 closed sessions, 10 due)"
	sectionColdStart  = "Cold start: exec to first answer, median, ratio to hello-world"
	sectionLatency    = "Handler latency and throughput, local server HTTP path"
	sectionMemory     = "Peak memory (VmHWM) during a 10,000-event run"
	sectionFailures   = "Invocations that failed during the 10,000-event runs"
	sectionSize       = "Binary size (bootstrap, linux/arm64, stripped, as the Makefile builds it)"
	sectionCost       = "Cost per 1,000,000 messages (128 MB arm64, us-east-1)"
)

var sectionOrder = []string{
	sectionAgentCalls, sectionBotCalls, sectionSecrets, sectionScheduled, sectionColdStart,
	sectionLatency, sectionMemory, sectionFailures, sectionSize, sectionCost,
}

// forProvider names a section about one provider.
func forProvider(section, provider string) string { return section + " [" + provider + "]" }

// sort orders the figures by section, keeping the order within each;
// sections of failed steps go last.
func (r *report) sort() {
	rank := func(f figure) int {
		for i, s := range sectionOrder {
			if strings.HasPrefix(f.Section, s) {
				return i
			}
		}
		return len(sectionOrder)
	}
	slices.SortStableFunc(r.Figures, func(a, b figure) int { return rank(a) - rank(b) })
}

// Statuses.
const (
	statusOK      = "ok"
	statusMissing = "MISSING"
	statusError   = "ERROR"
)

// Targets are checked on values rounded to two decimals, as counts per
// message are printed: one failed invocation in 10,000 (reported in its
// own row) does not make 2 calls per message read 2.0002.

// atMost sets the target value ≤ limit.
func (f figure) atMost(limit float64, format string) figure {
	f.Target = "≤ " + fmt.Sprintf(format, limit)
	f.Status = pass(round2(f.Value) <= limit)
	return f
}

// atLeast sets the target value ≥ limit.
func (f figure) atLeast(limit float64, format string) figure {
	f.Target = "≥ " + fmt.Sprintf(format, limit)
	f.Status = pass(round2(f.Value) >= limit)
	return f
}

// exactly sets the target value = want.
func (f figure) exactly(want float64, format string) figure {
	f.Target = "= " + fmt.Sprintf(format, want)
	f.Status = pass(round2(f.Value) == want)
	return f
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// shown replaces how the target is printed.
func (f figure) shown(target string) figure {
	f.Target = target
	return f
}

func (f figure) note(format string, args ...any) figure {
	f.Note = strings.Join(strings.Fields(fmt.Sprintf(format, args...)), " ") // one line
	return f
}

func pass(ok bool) string {
	if ok {
		return statusOK
	}
	return statusMissing
}

// report is the table of one run.
type report struct {
	Taken   time.Time `json:"taken"`
	Machine machine   `json:"machine"`
	Figures []figure  `json:"figures"`
	Notes   []string  `json:"notes"`
	Elapsed string    `json:"elapsed"`
	Quick   bool      `json:"quick,omitempty"` // smaller runs: not comparable
}

// machine says where and on what the figures were taken.
type machine struct {
	Go         string  `json:"go"`
	Platform   string  `json:"platform"`
	CPUs       int     `json:"cpus"`
	CPU        string  `json:"cpu,omitempty"`
	Commit     string  `json:"commit,omitempty"`
	LoadBefore float64 `json:"loadBefore"` // 1-minute load average at start
	LoadAfter  float64 `json:"loadAfter"`
}

func (r *report) add(f figure) { r.Figures = append(r.Figures, f) }

// fail records a step that could not be measured.
func (r *report) fail(section, name string, err error) {
	r.add(figure{Section: section, Name: name, Text: "-", Status: statusError, Note: err.Error()})
}

func thisMachine(root string) machine {
	m := machine{Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(), LoadBefore: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

// loadAverage is the 1-minute load average: other work on the machine
// makes every time figure noisier.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var l float64
	fmt.Sscan(string(b), &l)
	return l
}

// print writes the table; previous, if any, adds the last run's values.
func (r *report) print(w io.Writer, previous *report) {
	prev := map[string]string{}
	if previous != nil {
		for _, f := range previous.Figures {
			prev[f.Section+"\x00"+f.Name] = f.Text
		}
	}
	m := r.Machine
	fmt.Fprintf(w, "\nhitl-bridge performance, %s, %s %s, %d CPUs (%s), load %.2f → %.2f, commit %s, %s\n",
		r.Taken.Format(time.RFC3339), m.Go, m.Platform, m.CPUs, m.CPU, m.LoadBefore, m.LoadAfter, cmp.Or(m.Commit, "?"), r.Elapsed)
	if r.Quick {
		fmt.Fprintln(w, "QUICK MODE (HITL_BENCH_QUICK=1): smaller runs, to check the harness; the figures are not comparable")
	}
	if previous != nil {
		fmt.Fprintf(w, "previous run: %s (%s)\n", previous.Taken.Format(time.RFC3339), cmp.Or(previous.Machine.Commit, "?"))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	section := ""
	fmt.Fprintln(tw, "\nfigure\tvalue\ttarget\tstatus\tprevious\t")
	for _, f := range r.Figures {
		if f.Section != section {
			section = f.Section
			fmt.Fprintf(tw, "%s\t\t\t\t\t\n", section)
		}
		status := f.Status
		if status == statusMissing {
			status = "MISSING (target " + f.Target + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t\n", f.Name, f.Text, f.Target, status, prev[f.Section+"\x00"+f.Name])
	}
	tw.Flush()
	var notes []string
	for _, f := range r.Figures {
		if f.Note != "" {
			notes = append(notes, fmt.Sprintf("%s / %s: %s", f.Section, f.Name, f.Note))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nNotes on figures:")
		for _, n := range notes {
			fmt.Fprintln(w, "  - "+n)
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w, "\nHow it was measured:")
		for _, n := range r.Notes {
			fmt.Fprintln(w, "  - "+n)
		}
	}
	missing, errs := r.count(statusMissing), r.count(statusError)
	fmt.Fprintf(w, "\n%d figures, %d with a target: %d ok, %d MISSING, %d ERROR\n",
		len(r.Figures), r.count(statusOK)+missing+errs, r.count(statusOK), missing, errs)
}

// markdown writes the table as Markdown, for the README's Performance
// section.
func (r *report) markdown(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "Measured %s on %s %s, %d CPUs (%s), load %.2f → %.2f, commit %s.\n\n",
		r.Taken.Format("2006-01-02"), m.Go, m.Platform, m.CPUs, m.CPU, m.LoadBefore, m.LoadAfter, cmp.Or(m.Commit, "?"))
	fmt.Fprintln(w, "| figure | value | target | status |")
	fmt.Fprintln(w, "|---|---|---|---|")
	section := ""
	for _, f := range r.Figures {
		if f.Section != section {
			section = f.Section
			fmt.Fprintf(w, "| **%s** | | | |\n", section)
		}
		status := f.Status
		if status == statusMissing {
			status = "**MISSING**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", f.Name, f.Text, f.Target, status)
	}
}

func (r *report) count(status string) int {
	n := 0
	for _, f := range r.Figures {
		if f.Status == status {
			n++
		}
	}
	return n
}

// save writes the report to dir as latest.json and <time>.json, and
// returns the previous latest, if any.
func (r *report) save(dir string) (*report, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	name := "latest.json"
	if r.Quick {
		name = "latest-quick.json" // never compared with full runs
	}
	latest := filepath.Join(dir, name)
	var previous *report
	if b, err := os.ReadFile(latest); err == nil {
		var p report
		if json.Unmarshal(b, &p) == nil {
			previous = &p
		}
	}
	var md strings.Builder
	r.markdown(&md)
	if err := os.WriteFile(filepath.Join(dir, strings.TrimSuffix(name, ".json")+".md"), []byte(md.String()), 0o644); err != nil {
		return nil, "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, "", err
	}
	stamped := filepath.Join(dir, "bench-"+r.Taken.UTC().Format("20060102T150405Z")+strings.TrimSuffix(strings.TrimPrefix(name, "latest"), ".json")+".json")
	if err := os.WriteFile(stamped, b, 0o644); err != nil {
		return nil, "", err
	}
	return previous, stamped, os.WriteFile(latest, b, 0o644)
}

// repeat runs measure b.size.repeats times, each on a report of its own,
// and adds to the table each figure's median over the runs (see medians).
// A failed run ends the repetition: the runs before it still count.
func (b *bench) repeat(measure func() error) error {
	table := b.r
	defer func() { b.r = table }()
	var runs [][]figure
	var err error
	for i := range b.size.repeats {
		b.r = &report{}
		err = measure()
		runs = append(runs, b.r.Figures)
		if err != nil {
			err = fmt.Errorf("run %d of %d: %w", i+1, b.size.repeats, err)
			break
		}
	}
	for _, f := range medians(runs) {
		table.add(f)
	}
	return err
}

// medians merges the figures of several runs, in the first run's order:
// a figure whose runs printed the same text stays as it is; otherwise it
// is the median run's figure (by value: for a "p50 / p99" row, the p99),
// with its target and status, followed by the lowest and highest runs'
// texts in brackets.
func medians(runs [][]figure) []figure {
	type key struct{ section, name string }
	byKey := map[key][]figure{}
	var order []key
	for _, run := range runs {
		for _, f := range run {
			k := key{f.Section, f.Name}
			if byKey[k] == nil {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], f)
		}
	}
	out := make([]figure, 0, len(order))
	for _, k := range order {
		fs := byKey[k]
		if !slices.ContainsFunc(fs, func(f figure) bool { return f.Text != fs[0].Text }) {
			out = append(out, fs[0])
			continue
		}
		slices.SortStableFunc(fs, func(a, b figure) int { return cmp.Compare(a.Value, b.Value) })
		m := fs[len(fs)/2]
		lo, hi := fs[0], fs[len(fs)-1]
		m.Text = fmt.Sprintf("%s [%s – %s]", m.Text, lo.Text, hi.Text)
		m.Runs, m.Min, m.Max = len(fs), lo.Value, hi.Value
		out = append(out, m)
	}
	return out
}
