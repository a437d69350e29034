// Package httpapitest is what the fuzz tests of the bridge's HTTP APIs
// (the native API, Botpress's) share: a Bridge that only its decoders and
// its own rules can refuse, and the check every answer must pass.
package httpapitest

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt/bolttest"
)

// EchoBridge returns a Bridge on a fresh embedded store whose one
// provider, "echo", accepts everything, so that a fuzzer explores the
// decoders and the Bridge rather than provider failures, and an end user of
// it, Ada, for the seeds to address. Its Log discards.
func EchoBridge(tb testing.TB) (*hitl.Bridge, hitl.User) {
	tb.Helper()
	st := bolttest.Open(tb)
	log := slog.New(slog.DiscardHandler)
	b := &hitl.Bridge{Store: st, Providers: map[string]hitl.Provider{"echo": echoProvider{}}, DefaultProvider: "echo", Log: log,
		Outbox: &delivery.Dispatcher{Store: st, Log: log, Senders: map[string]delivery.Sender{}}}
	user, err := b.CreateUser(context.Background(), hitl.UserDetails{Name: "Ada"})
	if err != nil {
		tb.Fatal(err)
	}
	return b, user
}

type echoProvider struct{}

func (echoProvider) Open(_ context.Context, r hitl.OpenRequest) (hitl.Opened, error) {
	return hitl.Opened{ConversationID: "c-" + r.SessionID}, nil
}
func (echoProvider) Send(context.Context, hitl.Session, hitl.Message) (hitl.Sent, error) {
	return hitl.Sent{MessageID: "m"}, nil
}
func (echoProvider) Close(context.Context, hitl.Session) error { return nil }

// Serve has h answer req, whose body is body, and fails t when the answer
// is a 5xx, or an error without the documented JSON error object. It
// returns the answer for the caller's own checks.
func Serve(t *testing.T, h http.Handler, req *http.Request, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s answered %d to %q: %s", req.URL.Path, rec.Code, body, rec.Body)
	}
	if rec.Code >= 400 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%d without the error object: %s", rec.Code, rec.Body)
		}
	}
	return rec
}
