package health_test

import (
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/health"
)

func TestVerdictIsTheWorstCheck(t *testing.T) {
	ok := health.NewReport("a", health.Passed("x", "fine"))
	warn := health.NewReport("b", health.Passed("x", "fine"), health.Warning("y", "hmm", "look"))
	fail := health.NewReport("c", health.Failed("z", "broken", "fix it"), health.Warning("y", "hmm", "look"))
	if ok.Verdict != health.OK || warn.Verdict != health.Warn || fail.Verdict != health.Fail {
		t.Fatalf("%s %s %s", ok.Verdict, warn.Verdict, fail.Verdict)
	}
	if health.Worst() != health.OK || health.Worst(ok, warn) != health.Warn || health.Worst(warn, fail, ok) != health.Fail {
		t.Fatal("Worst")
	}
}
