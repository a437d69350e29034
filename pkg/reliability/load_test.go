package reliability

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
)

// TestWebhookLoadLosesNothing delivers webhook events of many sessions at
// once, half LiveChat and half SalesIQ, each session's events in order as
// a provider sends them: every event reaches the bot once, in order, and
// no delivery is answered 5xx. A 5xx is retried, as the providers do, so
// that a loss is told apart from a retry.
//
// moto_server takes one DynamoDB request at a time (see awstest), about
// 13 ms a write at the median and up to a second when it stalls: 64
// webhooks queued on it wait 1.5 s at the median, and about 1 % pass the
// 3 s webhook budget and are answered 500 (then retried, as providers do).
// Real DynamoDB serves requests in parallel and imposes no such queue.
// DynamoDB therefore gets 16 in flight for the figure (8 in the short form,
// which CI runs beside other tests); the long form also measures 64 in
// flight on it and reports that run in the notes.
func TestWebhookLoadLosesNothing(t *testing.T) {
	sessions, perSession := size(50, 200), size(20, 50)
	forEachStore(t, func(t *testing.T, storeName string, st *countedStore) {
		e := apptest.New(t, st)
		switch {
		case storeName == "bolt":
			r := loadRun(t, e, st, sessions, perSession, size(50, 64))
			record(t, "load", storeName, r.ok(), "%s", r)
		case !long:
			r := loadRun(t, e, st, sessions, perSession/2, 8)
			record(t, "load", storeName, r.ok(), "%s", r)
		default:
			r := loadRun(t, e, st, sessions, perSession, 16)
			record(t, "load", storeName, r.ok(), "%s", r)
			r = loadRun(t, e, st, sessions, perSession, 64)
			note("load", "DynamoDB on moto_server at 64 in flight (delivered · lost · twice · 5xx · out of order): %s", r)
		}
	})
}

// loadResult is what a load run measured.
type loadResult struct {
	n, distinct, twice, fivexx, disorder, non200 int
	sessions, inFlight, inline                   int
	rate, writes                                 float64
	p50, p99, slowest                            time.Duration
}

func (r loadResult) ok() bool {
	return r.distinct == r.n && r.twice == 0 && r.fivexx == 0 && r.disorder == 0 && r.non200 == 0
}

func (r loadResult) String() string {
	return fmt.Sprintf("%d of %d · %d · %d · %d · %d (%d sessions, %d in flight; %.0f events/s, answered in p50 %s, p99 %s, at most %s; %d delivered inline; %.1f store writes per event)",
		r.distinct, r.n, r.n-r.distinct, r.twice, r.fivexx, r.disorder, r.sessions, r.inFlight,
		r.rate, r.p50, r.p99, r.slowest, r.inline, r.writes)
}

// loadRun opens sessions handoffs, taps perSession events of each, and
// delivers them inFlight at a time.
func loadRun(t *testing.T, e *apptest.Env, st *countedStore, sessions, perSession, inFlight int) loadResult {
	t.Helper()
	convs, want, n := openConversations(t, e, sessions, perSession, 1)
	botBefore := len(e.Bot.Events())

	writesBefore := st.Writes()
	queue := make(chan *conversation, len(convs))
	for _, c := range convs {
		queue <- c
	}
	close(queue)
	var mu sync.Mutex
	statuses := map[int]int{}
	var took []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for c := range queue {
				for _, copies := range c.events {
					d := copies[0]
					for range 3 { // the providers' retries of a 5xx
						t0 := time.Now()
						status, _ := post(webhookURL(e, c.provider), d.Body, d.Header)
						mu.Lock()
						statuses[status]++
						took = append(took, time.Since(t0))
						mu.Unlock()
						if status > 0 && status < 500 {
							break
						}
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := loadResult{n: n, sessions: sessions, inFlight: inFlight, rate: float64(n) / elapsed.Seconds(),
		writes: float64(st.Writes()-writesBefore) / float64(n), inline: len(e.Bot.Events()) - botBefore}
	drain(t, e, botBefore+n) // anything a delivery left for the scheduled run

	got := tallyEvents(e.Bot.Events()[botBefore:])
	r.distinct, r.twice, r.disorder = got.distinct, got.twice, outOfOrder(got.sessions, want)
	for status, count := range statuses {
		switch {
		case status >= 500 || status == 0:
			r.fivexx += count
		case status != http.StatusOK:
			r.non200 += count
		}
	}
	slices.Sort(took)
	pct := func(p float64) time.Duration { return took[int(float64(len(took)-1)*p)].Round(time.Millisecond) }
	r.p50, r.p99, r.slowest = pct(0.5), pct(0.99), pct(1)
	return r
}
