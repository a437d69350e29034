//go:build bench

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
)

// sizes are the sizes of the runs.
type sizes struct {
	conversations  int // sessions the long runs spread their events over
	runEvents      int // measured events of each function's long run
	coldStarts     int // starts of each binary; medians are reported
	closedSessions int // closed sessions of the scheduled-run table
	dueItems       int // tokens to renew and outboxes to deliver in it

	latencyConversations int
	latencyEmbedded      int // sequential requests per path, embedded store
	latencyMoto          int // sequential requests per path, moto
	loadRequests         int // requests of a throughput run
	echoRequests         int
	capacityMessages     int // agent messages priced, in one conversation
	repeats              int // runs of the time figures; the table shows their median
}

// fullSizes are the table's; quickSizes (HITL_BENCH_QUICK=1) check the
// harness in a minute, with figures that are not comparable.
var (
	fullSizes = sizes{
		conversations: 100, runEvents: 10_000, coldStarts: 9, closedSessions: 10_000, dueItems: 10,
		latencyConversations: 20, latencyEmbedded: 1000, latencyMoto: 300, loadRequests: 3000, echoRequests: 20_000,
		capacityMessages: 120, repeats: 3,
	}
	quickSizes = sizes{
		conversations: 10, runEvents: 200, coldStarts: 3, closedSessions: 200, dueItems: 10,
		latencyConversations: 5, latencyEmbedded: 200, latencyMoto: 30, loadRequests: 500, echoRequests: 2000,
		capacityMessages: 120, repeats: 3,
	}
)

const loadWorkers = 8 // concurrent requests of a throughput run

// Targets (issue 6).
const (
	maxDynamoPerAgentMessage = 2
	maxDynamoPerBotMessage   = 1
	maxItemsPerScheduledRun  = 20
	maxColdStartRatio        = 2.0
	minThroughputRatio       = 0.3
	maxPeakRSS               = 40 << 20
	maxBinaryBytes           = 15_000_000
	maxLoadedP99             = 10 * time.Millisecond // agent message, embedded store, loadWorkers concurrent
	// Two writes of a small item per agent message (issue 13): a single
	// write cannot both record the event before its delivery and mark it
	// delivered after, which the crash sweep needs (README "Performance").
	maxCostPerMillion = 2.60
	secretCachePeriod = 5 * time.Minute // app.loadSecret's cache
)

func TestBenchTable(t *testing.T) {
	if _, err := exec.LookPath("moto_server"); err != nil {
		t.Fatal("make bench needs moto_server on PATH (pip install 'moto[server]')")
	}
	b := newBench(t)
	b.step("binary sizes", b.binarySizes)
	if !b.step("build for the host", b.buildHost) || !b.step("AWS on moto_server", b.startAWS) {
		b.finish()
		return
	}
	// The local server's latency and throughput first: the server under
	// test shares this process's heap, which the long runs' simulators
	// fill, and garbage collection of the harness's data would be measured
	// as the server's.
	for _, p := range providers(t) {
		b.step("handler latency and throughput ("+p.name+")", func() error { return b.repeat(func() error { return b.latency(p) }) })
	}
	for _, p := range providers(t) {
		b.measureProvider(p)
	}
	b.step("Scan calls", func() error {
		scans := 0
		for _, l := range b.lanes {
			scans += l.proxy.snapshot().Calls["dynamodb.Scan"]
		}
		b.r.add(figure{Section: sectionScheduled, Name: "Scan calls, whole bench run", Value: float64(scans), Text: fmt.Sprint(scans)}.exactly(0, "%.0f"))
		return nil
	})
	b.finish()
}

// bench is one run of the table.
type bench struct {
	t     *testing.T
	ctx   context.Context
	root  string
	work  string // binaries
	logs  string // the functions' output
	began time.Time
	size  sizes
	r     *report

	schedule []byte // the EventBridge event of the scheduled functions

	names []string          // Lambda functions
	bins  map[string]string // host binaries by name, hello included

	aws    *lane   // awstest's moto_server
	lanes  []*lane // every moto_server, aws first
	tables atomic.Int64

	// measured by the long runs, used by the cost
	webhookBilled, botBilled time.Duration // mean billed duration of a warm invocation
	agentSecrets, botSecrets float64       // Secrets Manager calls per message
}

func newBench(t *testing.T) *bench {
	root := apptest.RepoRoot(t)
	b := &bench{t: t, ctx: t.Context(), root: root, work: t.TempDir(), began: time.Now(), size: fullSizes}
	b.schedule = scheduledEvent(t)
	// The functions' logs stay after the run, for a failure's story.
	b.logs = filepath.Join(root, ".bench", "logs")
	if err := errors.Join(os.RemoveAll(b.logs), os.MkdirAll(b.logs, 0o755)); err != nil {
		t.Fatal(err)
	}
	b.r = &report{Taken: b.began.UTC(), Machine: thisMachine(root)}
	if os.Getenv("HITL_BENCH_QUICK") == "1" {
		b.size = quickSizes
		b.r.Quick = true
	}
	return b
}

// step runs one measurement; a failure becomes an ERROR row and the run
// goes on.
func (b *bench) step(name string, f func() error) bool {
	t0 := time.Now()
	b.logf("%s…", name)
	if err := f(); err != nil {
		b.t.Errorf("%s: %v", name, err)
		b.r.fail(name, "(not measured)", err)
		return false
	}
	b.logf("%s done in %s", name, time.Since(t0).Round(100*time.Millisecond))
	return true
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %6s  %s\n", time.Since(b.began).Round(time.Second), fmt.Sprintf(format, args...))
}

func (b *bench) finish() {
	b.r.Machine.LoadAfter = loadAverage()
	b.r.Elapsed = time.Since(b.began).Round(time.Second).String()
	b.r.Notes = append(b.r.Notes,
		"AWS is moto_server on loopback behind a counting proxy that forwards one request at a time; calls are counted there, bot and provider calls at their simulators.",
		"Warm means after the container's first invocation; the long runs first send one event per conversation, then measure the next 10,000.",
		fmt.Sprintf("Prices: us-east-1 on-demand as of %s: HTTP API $1.00/M requests; Lambda arm64 $0.20/M requests and $%.10f/GB-s at 128 MB, billed per 1 ms; DynamoDB $0.625/M WRU and $0.125/M RRU; Secrets Manager $0.05 per 10,000 calls.", pricesDate, priceLambdaGBSecond),
		fmt.Sprintf("Cold starts and the local server's latency and throughput are measured %d times: each such figure is the median of the runs, their spread (min – max) in brackets when they differ; the other figures are counts and sizes, taken once (the long runs' durations, and so the Lambda share of the cost, come from their one run).", b.size.repeats),
		fmt.Sprintf("The machine is shared: the 1-minute load average went from %.2f to %.2f during the run; time figures are noisy, counts are not.", b.r.Machine.LoadBefore, b.r.Machine.LoadAfter),
	)
	b.r.sort()
	previous, path, err := b.r.save(filepath.Join(b.root, ".bench"))
	if err != nil {
		b.t.Errorf("save the table: %v", err)
	}
	b.r.print(os.Stdout, previous)
	fmt.Printf("\nwritten to %s\n", path)
}

func (b *bench) binarySizes() error {
	names, err := functionNames(b.root)
	if err != nil {
		return err
	}
	b.names = names
	bins, err := build(b.ctx, b.root, filepath.Join(b.work, "arm64"), "linux", "arm64", names)
	if err != nil {
		return err
	}
	section := sectionSize
	for _, n := range append(slices.Clone(names), "hello") {
		st, err := os.Stat(bins[n])
		if err != nil {
			return err
		}
		f := figure{Section: section, Name: n, Value: float64(st.Size()), Unit: "bytes", Text: fmt.Sprintf("%.1f MB", float64(st.Size())/1e6)}
		if n == "hello" {
			b.r.add(f.note("the hello-world baseline, no target"))
			continue
		}
		b.r.add(f.atMost(maxBinaryBytes, "%.0f").shown("≤ 15 MB"))
	}
	return nil
}

func (b *bench) buildHost() error {
	if b.names == nil {
		names, err := functionNames(b.root)
		if err != nil {
			return err
		}
		b.names = names
	}
	// The harness reads /proc: the host is Linux.
	bins, err := build(b.ctx, b.root, filepath.Join(b.work, "host"), "linux", runtime.GOARCH, b.names)
	b.bins = bins
	return err
}

// startAWS starts moto_server and the counting proxy in front of it.
func (b *bench) startAWS() error {
	l, err := b.newLane(awstest.Endpoint(b.t))
	if err != nil {
		return err
	}
	b.aws = l
	rtt, err := b.roundTrip(b.ctx, l)
	if err != nil {
		return err
	}
	b.r.Notes = append(b.r.Notes, fmt.Sprintf("A DynamoDB GetItem to moto_server through the proxy takes %s here (median of 50); in AWS, in-region, a few ms.", rtt.Round(10*time.Microsecond)))
	return nil
}

func dynamoKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}
}

// measureProvider takes every per-provider figure but the local server's
// latency and throughput.
func (b *bench) measureProvider(p provider) {
	b.step("scheduled run on 10,000 closed sessions ("+p.name+")", func() error { return b.scheduledRun(p) })
	var main *env
	var convs []conversation
	ok := b.step("bridge on moto, "+fmt.Sprint(b.size.conversations)+" conversations ("+p.name+")", func() error {
		var err error
		if main, err = b.newEnv(b.aws, p, counted); err != nil {
			return err
		}
		for range b.size.conversations {
			convs = append(convs, p.handoff(b.t, main.Env))
		}
		return nil
	})
	if ok {
		b.step("cold starts ("+p.name+")", func() error { return b.repeat(func() error { return b.coldStarts(p, main, convs[0]) }) })
		b.step("10,000-event runs ("+p.name+")", func() error { return b.longRuns(p, main, convs) })
	}
	b.step("cost per message ("+p.name+")", func() error { return b.cost(p) })
}
