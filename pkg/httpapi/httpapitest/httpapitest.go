// Package httpapitest is what the fuzz tests of the bridge's HTTP APIs
// (the native API, Botpress's) share: a Bridge that only its decoders and
// its own rules can refuse, and the check every answer must pass.
package httpapitest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt"
)

// EchoBridge returns a Bridge on a fresh embedded store whose one
// provider, "echo", accepts everything, so that a fuzzer explores the
// decoders and the Bridge rather than provider failures. Its Log discards.
func EchoBridge(tb testing.TB) *hitl.Bridge {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "b.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &hitl.Bridge{Store: st, Providers: map[string]hitl.Provider{"echo": echoProvider{}}, DefaultProvider: "echo", Log: log,
		Outbox: &delivery.Dispatcher{Store: st, Log: log, Senders: map[string]delivery.Sender{}}}
}

type echoProvider struct{}

func (echoProvider) Open(_ context.Context, r hitl.OpenRequest) (hitl.Opened, error) {
	return hitl.Opened{ConversationID: "c-" + r.SessionID}, nil
}
func (echoProvider) Send(context.Context, hitl.Session, hitl.Message) (hitl.Sent, error) {
	return hitl.Sent{MessageID: "m"}, nil
}
func (echoProvider) Close(context.Context, hitl.Session) error { return nil }

// CheckAnswer fails t when the answer rec gave to body on path is a 5xx,
// or an error without the documented JSON error object.
func CheckAnswer(t *testing.T, path string, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s answered %d to %q: %s", path, rec.Code, body, rec.Body)
	}
	if rec.Code >= 400 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%d without the error object: %s", rec.Code, rec.Body)
		}
	}
}
