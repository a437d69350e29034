package apptest

import (
	"fmt"
	"strings"
	"testing"
)

// errorRecorder is a testing.TB that keeps the errors reported to it.
type errorRecorder struct {
	testing.TB
	errs []string
}

func (r *errorRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestLoggedCredentialsAreFound(t *testing.T) {
	e, err := Start(Bolt(t))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	sessionID, _ := e.Handoff(t) // a customer token and its cookies cross the Network
	e.AddSecret("presented-by-the-test")
	var token string
	for _, c := range e.Net.Credentials() {
		if strings.HasPrefix(c, "dal:") {
			token = c
		}
	}
	if token == "" {
		t.Fatalf("no customer token among the credentials seen: %d seen", len(e.Net.Credentials()))
	}

	clean := &errorRecorder{TB: t}
	e.checkLogs(clean)
	if len(clean.errs) != 0 {
		t.Fatalf("a clean log was reported: %v", clean.errs)
	}
	before := LogScans()
	for _, leak := range []string{token, SigningKey, "presented-by-the-test", e.Zoho.Options().ClientSecret} {
		e.App.Log.Info("oops", "session_id", sessionID, "value", leak)
	}
	leaky := &errorRecorder{TB: t}
	e.checkLogs(leaky)
	if len(leaky.errs) != 4 || LogScans().Leaks-before.Leaks != 4 {
		t.Fatalf("4 leaked credentials, %d reported: %v", len(leaky.errs), leaky.errs)
	}
	for _, msg := range leaky.errs {
		if strings.Contains(msg, token) || strings.Contains(msg, SigningKey) {
			t.Fatalf("the report repeats the credential: %s", msg)
		}
	}
}
