//go:build bench

package bench

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/httpapi"
)

// maxFailedShare is the share of failed invocations past which a long run
// stops: a few are a finding to report, many a broken run.
const maxFailedShare = 0.01

// longRunResult is what one function's long run measured.
type longRunResult struct {
	figures []figure
	billed  time.Duration // mean billed duration of a warm invocation
	secrets float64       // Secrets Manager calls per invocation
}

// longRuns gives each function but the operator page's its long run:
// webhooks on the main moto_server, the others one after the other on a
// second one, side by side. The scheduled functions run on an empty
// table: with nothing due they read nothing either way, and moto_server's
// index queries go through every item of a table.
func (b *bench) longRuns(p provider, main *env, convs []conversation) error {
	other, stop, err := b.launchEnv(p)
	if err != nil {
		return err
	}
	defer stop()
	var otherConvs []conversation
	for range len(convs) {
		otherConvs = append(otherConvs, p.handoff(b.t, other.Env))
	}
	idle, err := b.newTable(other.lane)
	if err != nil {
		return err
	}
	type job struct {
		name     string
		e        *env
		settings map[string]string
		convs    []conversation
	}
	var laneA, laneB []job
	for _, name := range b.names {
		switch {
		case name == adminFunction: // an operator's page, no hot path
		case name == webhooksFunction:
			laneA = append(laneA, job{name, main, main.settings, convs})
		case slices.Contains(b.scheduled(), name):
			settings := maps.Clone(other.settings)
			settings["TABLE_NAME"] = idle
			laneB = append(laneB, job{name, other, settings, otherConvs})
		default:
			laneB = append(laneB, job{name, other, other.settings, otherConvs})
		}
	}
	var (
		mu      sync.Mutex
		results = map[string]longRunResult{}
		errs    []error
		wg      sync.WaitGroup
	)
	for _, jobs := range [][]job{laneA, laneB} {
		wg.Go(func() {
			for _, j := range jobs {
				r, err := b.longRun(p, j.e, j.settings, j.convs, j.name)
				mu.Lock()
				results[j.name] = r
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, name := range b.names {
		r := results[name]
		for _, f := range r.figures {
			b.r.add(f)
		}
		switch name {
		case webhooksFunction:
			b.webhookBilled, b.agentSecrets = r.billed, r.secrets
		case actionsFunction:
			b.botBilled, b.botSecrets = r.billed, r.secrets
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// longRun sends a function one event per conversation, then
// b.size.runEvents more, measured: calls per event, Secrets Manager calls,
// peak memory, durations.
func (b *bench) longRun(p provider, e *env, settings map[string]string, convs []conversation, name string) (longRunResult, error) {
	var r longRunResult
	b.logf("  %s: %d events", name, len(convs)+b.size.runEvents)
	proc, err := start(name, b.bins[name], b.logPath(name), settings)
	if err != nil {
		return r, err
	}
	defer proc.stop()
	var failed []error
	invoke := func(n int) (time.Duration, error) {
		event, check := b.event(p, e, name, convs, n)
		inv, err := proc.invoke(b.ctx, event)
		if err != nil {
			return 0, fmt.Errorf("%s event %d: %w", name, n, err) // the process is gone
		}
		if check != nil {
			if err := check(inv.body); err != nil {
				failed = append(failed, fmt.Errorf("event %d: %w; the function logged: %s", n, err, proc.lastError()))
				if float64(len(failed)) > maxFailedShare*float64(b.size.runEvents) {
					return 0, fmt.Errorf("%s: %d invocations failed, the last: %w%s", name, len(failed), err, proc.logTail())
				}
			}
		}
		return inv.duration(), nil
	}
	for n := range len(convs) {
		if _, err := invoke(n); err != nil {
			return r, err
		}
	}
	before := b.counts(p, e)
	cpu0, err := proc.cpuTime()
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	durations := make([]time.Duration, 0, b.size.runEvents)
	for n := len(convs); n < len(convs)+b.size.runEvents; n++ {
		d, err := invoke(n)
		if err != nil {
			return r, err
		}
		durations = append(durations, d)
	}
	elapsed := time.Since(t0)
	cpu1, err := proc.cpuTime()
	if err != nil {
		return r, err
	}
	rss, err := proc.peakRSS()
	if err != nil {
		return r, err
	}
	c := b.counts(p, e).minus(before)
	cpuPer := (cpu1 - cpu0) / time.Duration(b.size.runEvents)
	for _, d := range durations {
		r.billed += billedAt128MB(d, cpuPer)
	}
	r.billed /= time.Duration(b.size.runEvents)
	slices.Sort(durations)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	add := func(f figure) { r.figures = append(r.figures, f) }

	add(figure{Section: forProvider(sectionMemory, p.name), Name: name, Value: float64(rss), Unit: "bytes",
		Text: fmt.Sprintf("%.1f MB", float64(rss)/(1<<20))}.atMost(maxPeakRSS, "%.0f").shown("≤ 40 MB").
		note("warm duration p50 %s, p99 %s, CPU %s per event; billed at 128 MB (est.) %s; the run took %s", ms(percentile(durations, 50)), ms(percentile(durations, 99)), ms(cpuPer), ms(r.billed), elapsed.Round(time.Second)))
	fail := figure{Section: forProvider(sectionFailures, p.name), Name: name, Value: float64(len(failed)), Text: fmt.Sprint(len(failed))}.exactly(0, "%.0f")
	if len(failed) > 0 {
		fail = fail.note("calls to moto_server over 1 s during the run, its queue and calls given up on included: %d; the slowest of the bench so far %s (the webhook budget is %s). The first failure: %v (function logs in .bench/logs)",
			c.aws.Slow, c.aws.Slowest.Round(time.Millisecond), httpapi.WebhookBudget, failed[0])
	}
	add(fail)

	periods := max(1, int(math.Ceil(elapsed.Seconds()/secretCachePeriod.Seconds())))
	sm := c.aws.service("secretsmanager")
	per10k := float64(sm) * 10_000 / float64(b.size.runEvents)
	add(figure{Section: forProvider(sectionSecrets, p.name), Name: name, Value: per10k, Text: fmt.Sprintf("%.0f", per10k)}.
		atMost(float64(periods), "%.0f").
		note("the run took %s: %d cache period(s) of %s; plus 1 call at each cold start", elapsed.Round(time.Second), periods, secretCachePeriod))

	per := func(v int) float64 { return float64(v) / float64(b.size.runEvents) }
	r.secrets = per(sm)
	count := func(section, name string, v int) figure {
		return figure{Section: section, Name: name, Value: per(v), Text: fmt.Sprintf("%.2f", per(v))}
	}
	dynamoCalls := c.aws.service("dynamodb")
	switch name {
	case webhooksFunction:
		section := forProvider(sectionAgentCalls, p.name)
		add(count(section, "DynamoDB", dynamoCalls).atMost(maxDynamoPerAgentMessage, "%.0f").
			note("%s", strings.Join(slices.DeleteFunc([]string{perOp(c.aws.Calls, "dynamodb", b.size.runEvents), p.agentNote}, func(s string) bool { return s == "" }), "; ")))
		add(count(section, "Secrets Manager", sm).exactly(0, "%.0f"))
		add(count(section, "bot", c.bot).exactly(1, "%.0f"))
		add(count(section, "provider", c.providerCalls()).note("the hosted reference integrations make 3 platform calls per agent message"))
	case actionsFunction:
		section := forProvider(sectionBotCalls, p.name)
		tokens := c.providerCalls(p.tokenCalls...)
		add(count(section, "DynamoDB", dynamoCalls).atMost(maxDynamoPerBotMessage, "%.0f").note("%s", perOp(c.aws.Calls, "dynamodb", b.size.runEvents)))
		add(count(section, "Secrets Manager", sm).exactly(0, "%.0f"))
		add(count(section, "provider", c.providerCalls()-tokens).exactly(1, "%.0f").note("%s", perOp(prefixed(c.provider), "provider", b.size.runEvents)))
		add(count(section, "provider token calls (tokens fresh)", tokens).exactly(0, "%.0f"))
	default:
		add(figure{Section: forProvider(sectionScheduled, p.name), Name: name + ": items read per run, long run, nothing due",
			Value: per(c.aws.ItemsRead), Text: fmt.Sprintf("%.2f", per(c.aws.ItemsRead))}.
			note("mean of the long run's %d runs, on an empty table; DynamoDB calls per run: %s", b.size.runEvents, perOp(c.aws.Calls, "dynamodb", b.size.runEvents)))
	}
	return r, nil
}
