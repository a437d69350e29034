//go:build bench

package bench

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Function names with a special event; the others are scheduled.
const (
	webhooksFunction = "webhooks"
	actionsFunction  = "actions"
	adminFunction    = "admin" // the operator page: sizes and cold starts only
	helloFunction    = "hello"
)

// event is the n-th event of a function's runs, spread over convs, and the
// check of its answer.
func (b *bench) event(p provider, e *env, name string, convs []conversation, n int) ([]byte, func([]byte) error) {
	c := convs[n%len(convs)]
	switch name {
	case helloFunction:
		return []byte(`{}`), func(body []byte) error {
			if string(body) != `"hello"` {
				return fmt.Errorf("answered %s", body)
			}
			return nil
		}
	case webhooksFunction:
		return apiGatewayEvent(p.agentMessage(e.Env, c, n), n), httpAnswer(200)
	case actionsFunction:
		return apiGatewayEvent(botMessage(c.sessionID, n), n), httpAnswer(202)
	case adminFunction:
		return apiGatewayEvent(request{method: "GET", path: "/admin", want: 200}, n), httpAnswer(200)
	}
	return b.schedule, nil
}

func (b *bench) scheduled() []string {
	var out []string
	for _, n := range b.names {
		if n != webhooksFunction && n != actionsFunction && n != adminFunction {
			out = append(out, n)
		}
	}
	return out
}

func (b *bench) logPath(name string) string {
	return filepath.Join(b.logs, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
}

// counts is everything counted at the fake endpoints.
type counts struct {
	aws      awsCounts
	bot      int            // callbacks the bot accepted
	provider map[string]int // provider simulator calls by action
}

func (b *bench) counts(p provider, e *env) counts {
	return counts{aws: e.lane.proxy.snapshot(), bot: len(e.Bot.Events()), provider: p.calls(e.Env)}
}

func (c counts) minus(old counts) counts {
	d := counts{aws: c.aws.minus(old.aws), bot: c.bot - old.bot, provider: map[string]int{}}
	for k, v := range c.provider {
		if v -= old.provider[k]; v != 0 {
			d.provider[k] = v
		}
	}
	return d
}

func (c counts) providerCalls(only ...string) int {
	n := 0
	for k, v := range c.provider {
		if len(only) == 0 || slices.Contains(only, k) {
			n += v
		}
	}
	return n
}

// perOp formats a service's calls by operation, divided by n.
func perOp(calls map[string]int, service string, n int) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(calls)) {
		if name, ok := strings.CutPrefix(op, service+"."); ok {
			parts = append(parts, fmt.Sprintf("%s %.2f", name, float64(calls[op])/float64(n)))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// scheduledRun measures the scheduled functions' first run on a table of
// closed sessions with some work due, and a second with nothing due.
func (b *bench) scheduledRun(p provider) error {
	e, stop, err := b.launchEnv(p)
	if err != nil {
		return err
	}
	defer stop()
	if err := closedSessions(b.t, b.ctx, e.Env, p, e.lane.direct, e.table, b.size.closedSessions); err != nil {
		return err
	}
	if err := dueWork(b.t, b.ctx, e.Env, p, b.size.dueItems); err != nil {
		return err
	}
	section := forProvider(sectionScheduled, p.name)
	total := 0
	var done []string
	for _, name := range b.scheduled() {
		proc, err := start(name, b.bins[name], b.logPath(name), e.settings)
		if err != nil {
			return err
		}
		before := b.counts(p, e)
		_, err = proc.invoke(b.ctx, b.schedule)
		work := b.counts(p, e).minus(before)
		var idle counts
		if err == nil {
			before = b.counts(p, e)
			_, err = proc.invoke(b.ctx, b.schedule)
			idle = b.counts(p, e).minus(before)
		}
		proc.stop()
		if err != nil {
			return err
		}
		total += work.aws.ItemsRead
		done = append(done, fmt.Sprintf("%s: %d callbacks delivered, %d provider calls", name, work.bot, work.providerCalls()))
		b.r.add(figure{Section: section, Name: name + ": items read", Value: float64(work.aws.ItemsRead), Text: fmt.Sprint(work.aws.ItemsRead)}.
			note("DynamoDB calls: %s; with nothing due: %d items read (%s)", perOp(work.aws.Calls, "dynamodb", 1), idle.aws.ItemsRead, perOp(idle.aws.Calls, "dynamodb", 1)))
	}
	b.r.add(figure{Section: section, Name: "items read, all scheduled functions", Value: float64(total), Text: fmt.Sprint(total)}.
		atMost(maxItemsPerScheduledRun, "%.0f").note("%s", strings.Join(done, "; ")))
	return nil
}

// coldStarts starts each binary coldStarts times, in turns, to its first
// answer.
func (b *bench) coldStarts(p provider, e *env, c conversation) error {
	targets := append([]string{helloFunction}, b.names...)
	starts := map[string][]coldStart{}
	for rep := range b.size.coldStarts {
		for _, name := range targets {
			event, check := b.event(p, e, name, []conversation{c}, 1_000_000+rep)
			before := e.lane.proxy.snapshot()
			cs, proc, err := startCold(b.ctx, name, b.bins[name], b.logPath(name), e.settings, event, check)
			if err != nil {
				return err
			}
			spent := e.lane.proxy.snapshot().minus(before)
			cs.aws, cs.calls = spent.Busy, spent.Calls
			proc.stop()
			starts[name] = append(starts[name], cs)
		}
	}
	med := func(name string, part func(coldStart) time.Duration) time.Duration {
		var d []time.Duration
		for _, cs := range starts[name] {
			d = append(d, part(cs))
		}
		return median(d)
	}
	total := func(cs coldStart) time.Duration { return cs.total }
	initPart := func(cs coldStart) time.Duration { return cs.init }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	section := forProvider(sectionColdStart, p.name)
	hello := med(helloFunction, total)
	b.r.add(figure{Section: section, Name: "hello (baseline)", Value: hello.Seconds(), Unit: "s", Text: ms(hello)}.
		note("init (exec → first GET …/next) %s", ms(med(helloFunction, initPart))))
	for _, name := range b.names {
		d := med(name, total)
		ratio := d.Seconds() / hello.Seconds()
		own := med(name, func(cs coldStart) time.Duration { return cs.total - cs.aws })
		b.r.add(figure{Section: section, Name: name, Value: ratio, Unit: "ratio", Text: fmt.Sprintf("%.2f (%s)", ratio, ms(d))}.
			atMost(maxColdStartRatio, "%.1f").
			note("init %s, first invocation %s, waiting on moto_server %s (the Secrets Manager read at init and the first event's DynamoDB calls: %s in the last start); without that wait %s, %.2f × hello",
				ms(med(name, initPart)), ms(med(name, func(cs coldStart) time.Duration { return cs.first })),
				ms(med(name, func(cs coldStart) time.Duration { return cs.aws })), callList(starts[name][len(starts[name])-1].calls),
				ms(own), own.Seconds()/hello.Seconds()))
	}
	return nil
}

// callList lists calls by operation, in name order: "dynamodb.GetItem 2, …".
func callList(calls map[string]int) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(calls)) {
		parts = append(parts, fmt.Sprintf("%s %d", op, calls[op]))
	}
	return strings.Join(parts, ", ")
}

// prefixed names provider actions "provider.<action>" for perOp.
func prefixed(calls map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range calls {
		out["provider."+k] = v
	}
	return out
}
