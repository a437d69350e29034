package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/httpapi"
	"github.com/hitl-bridge/hitl-bridge/pkg/httpapi/httpapitest"
)

const botKey = "fuzz-bot-key-0123456789"

// FuzzNativeAPI sends arbitrary bodies to every native route: the answer is
// never a 5xx, and every error is the documented JSON error object.
func FuzzNativeAPI(f *testing.F) {
	bridge, user := httpapitest.EchoBridge(f)
	h := httpapi.Actions(httpapi.ActionsConfig{Bridge: bridge, BotAPIKeys: []string{botKey}, Log: bridge.Log})
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
		httpapitest.Serve(t, h, req, body)
	})
}
