package metrics_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/metrics"
)

func TestEmbeddedMetricFormat(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := metrics.New(&buf, func() time.Time { return at })
	r.Count(metrics.WebhooksRefused, "zoho", 1)
	r.Duration(metrics.HandoffLatency, "", 1500*time.Millisecond)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%q", buf.String())
	}
	var first struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Provider        string
		WebhooksRefused float64
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	m := first.AWS.CloudWatchMetrics
	if first.AWS.Timestamp != at.UnixMilli() || len(m) != 1 || m[0].Namespace != "hitl-bridge" ||
		len(m[0].Dimensions) != 2 || len(m[0].Dimensions[0]) != 0 || m[0].Dimensions[1][0] != "Provider" ||
		m[0].Metrics[0].Name != "WebhooksRefused" || m[0].Metrics[0].Unit != "Count" ||
		first.Provider != "zoho" || first.WebhooksRefused != 1 {
		t.Fatalf("%s", lines[0])
	}
	var second map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if second["HandoffLatency"] != 1500.0 || second["Provider"] != nil {
		t.Fatalf("%s", lines[1])
	}
	var none *metrics.Recorder
	none.Count(metrics.DeadLettered, "", 1) // a nil Recorder records nothing
}
