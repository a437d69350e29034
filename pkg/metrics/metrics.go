// Package metrics emits CloudWatch metrics in the embedded metric format
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
// one JSON line per measurement, with an _aws object that tells CloudWatch
// Logs to extract it. Lambda writes stdout to the function's log group,
// where the extraction happens; no API call, no agent. Every metric is
// published without dimensions (what the alarms watch) and, when a
// provider is named, per Provider too.
package metrics

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every metric.
const Namespace = "hitl-bridge"

// The metrics the bridge emits.
const (
	EventsDelivered      = "EventsDelivered"      // callbacks the bot accepted
	DeadLettered         = "DeadLettered"         // outboxes moved to the dead letters
	WebhooksRefused      = "WebhooksRefused"      // provider webhooks answered 401
	TokenRefreshFailures = "TokenRefreshFailures" // scheduled credential renewals that failed
	HandoffLatency       = "HandoffLatency"       // startHitl: request to provider conversation open
	// Per ended hand-off (hitl.stopped), as the bot is told them:
	TimeToAssignment  = "TimeToAssignment"  // session start to the first agent
	TimeToFirstReply  = "TimeToFirstReply"  // session start to the first agent message
	HandoffDuration   = "HandoffDuration"   // session start to its end
	HandoffsAbandoned = "HandoffsAbandoned" // sessions that ended before an agent took them
	HandoffsEnded     = "HandoffsEnded"     // sessions that ended
)

// Recorder writes metrics to w. A nil Recorder records nothing. It is safe
// for concurrent use.
type Recorder struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// New returns a Recorder writing to w (os.Stdout in Lambda).
func New(w io.Writer, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{w: w, now: now}
}

// Count records n occurrences of name, for provider when not empty.
func (r *Recorder) Count(name, provider string, n int) { r.put(name, provider, "Count", float64(n)) }

// Seconds records a duration given in seconds, as milliseconds.
func (r *Recorder) Seconds(name, provider string, s float64) {
	r.put(name, provider, "Milliseconds", s*1000)
}

// Duration records d, in milliseconds, for provider when not empty.
func (r *Recorder) Duration(name, provider string, d time.Duration) {
	r.put(name, provider, "Milliseconds", float64(d.Microseconds())/1000)
}

func (r *Recorder) put(name, provider, unit string, value float64) {
	if r == nil {
		return
	}
	dims := [][]string{{}}
	line := map[string]any{name: value}
	if provider != "" {
		dims = append(dims, []string{"Provider"})
		line["Provider"] = provider
	}
	line["_aws"] = map[string]any{
		"Timestamp": r.now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  Namespace,
			"Dimensions": dims,
			"Metrics":    []map[string]string{{"Name": name, "Unit": unit}},
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.w.Write(append(b, '\n'))
}
