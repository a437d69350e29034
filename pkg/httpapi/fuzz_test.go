package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/httpapi"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt"
)

const botKey = "fuzz-bot-key-0123456789"

// echoProvider accepts everything, so the fuzzer explores the decoders
// and the Bridge rather than provider failures.
type echoProvider struct{}

func (echoProvider) Open(_ context.Context, r hitl.OpenRequest) (hitl.Opened, error) {
	return hitl.Opened{ConversationID: "c-" + r.SessionID}, nil
}
func (echoProvider) Send(context.Context, hitl.Session, hitl.Message) (hitl.Sent, error) {
	return hitl.Sent{MessageID: "m"}, nil
}
func (echoProvider) Close(context.Context, hitl.Session) error { return nil }

// FuzzNativeAPI sends arbitrary bodies to every native route: the answer is
// never a 5xx, and every error is the documented JSON error object.
func FuzzNativeAPI(f *testing.F) {
	st, err := bolt.Open(filepath.Join(f.TempDir(), "b.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bridge := &hitl.Bridge{Store: st, Providers: map[string]hitl.Provider{"echo": echoProvider{}}, DefaultProvider: "echo", Log: log,
		Outbox: &delivery.Dispatcher{Store: st, Log: log, Senders: map[string]delivery.Sender{}}}
	h := httpapi.Actions(httpapi.ActionsConfig{Bridge: bridge, BotAPIKeys: []string{botKey}, Log: log})
	user, err := bridge.CreateUser(context.Background(), hitl.UserDetails{Name: "Ada"})
	if err != nil {
		f.Fatal(err)
	}
	session, err := bridge.StartSession(context.Background(), hitl.StartRequest{UserID: user.ID})
	if err != nil {
		f.Fatal(err)
	}
	routes := []string{"/v1/users", "/v1/sessions", "/v1/sessions/" + session.ID + "/messages", "/v1/sessions/" + session.ID + "/stop"}
	for _, seed := range []string{
		`{"name":"Ada","email":"ada@example.com"}`,
		`{"userId":"` + user.ID + `","messageHistory":[{"source":{"type":"user"},"type":"text","payload":{"text":"hi"}}]}`,
		`{"type":"bloc","payload":{"items":[{"type":"card","payload":{"title":"t","actions":[{"action":"url","label":"l","value":"https://x"}]}}]}}`,
		`{"type":"location","payload":{"latitude":1e308,"longitude":-0}}`,
		`{"type":"text","payload":{"text":"\u0000"}}`,
		`{"reason":null}`, `[]`, `"x"`, `{"name":{"a":[1,2]}}`,
	} {
		for i := range routes {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		req := httptest.NewRequest(http.MethodPost, routes[int(route)%len(routes)], strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+botKey)
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
	})
}
