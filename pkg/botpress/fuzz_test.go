package botpress_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/botpress"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/httpapi"
	"github.com/hitl-bridge/hitl-bridge/pkg/httpapi/httpapitest"
)

const botpressToken = "fuzz-botpress-token-0123456789"

// FuzzBotpressAPI sends arbitrary bodies, under the right path token or
// another, to every route of Botpress's "Human in the Loop API"
// integration: the answer is never a 5xx, every error is the JSON error
// object, and a wrong token is always the 404 of an unknown route.
func FuzzBotpressAPI(f *testing.F) {
	bridge, user := httpapitest.EchoBridge(f)
	log := bridge.Log
	// Mounted as the app mounts them, among the native routes.
	h := httpapi.Actions(httpapi.ActionsConfig{Bridge: bridge, Log: log,
		BotRoutes: []func(*http.ServeMux){botpress.Routes{Bridge: bridge, PathToken: botpressToken, Log: log}.Mount}})
	deferred, err := bridge.CreateDeferred(context.Background(), hitl.DeferredRequest{Channel: botpress.Channel, Title: "t"})
	if err != nil {
		f.Fatal(err)
	}
	routes := []string{"ping", "createRemoteUser", "createRemoteConversation", "botSendsMessage", "closeRemoteTicket",
		"echo/createRemoteConversation", "echo/botSendsMessage", "zoho/ping"}
	for _, seed := range []string{
		`{}`,
		`{"payload":{"name":"Ada","email":"ada@bot.botpress.invalid","pictureUrl":"https://x/a.png","role":"end-user"}}`,
		`{"payload":{"title":"t","description":"d","messages":[{"type":"text","text":"hi"},{"type":"image","imageUrl":"https://x/a.png"}]}}`,
		`{"remoteConversationId":"` + deferred.ID + `","remoteUserId":"` + user.ID + `","payload":{"type":"text","text":"hi","userId":"u"}}`,
		`{"remoteConversationId":"` + deferred.ID + `","remoteUserId":"BOT","payload":{"options":[{"label":"a","value":"a"}],"text":"pick"}}`,
		`{"remoteConversationId":"` + deferred.ID + `","remoteUserId":"` + user.ID + `","payload":{"items":[{"type":"card","payload":{"title":"t"}}]}}`,
		`{"payload":{"botpressConversationId":"` + deferred.ID + `"}}`,
		`{"payload":null}`, `[]`, `"x"`, `{"payload":{"type":["text"]}}`,
	} {
		for i := range routes {
			f.Add(uint8(i), botpressToken, []byte(seed))
		}
		f.Add(uint8(0), "wrong-token", []byte(seed))
	}
	f.Fuzz(func(t *testing.T, route uint8, token string, body []byte) {
		target := "/botpress/" + url.PathEscape(token) + "/" + routes[int(route)%len(routes)]
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
		rec := httpapitest.Serve(t, h, req, body)
		// A dot segment in place of the token is redirected to the cleaned
		// path, as any path is: 3xx reveals nothing and accepts nothing.
		if token != botpressToken && rec.Code != http.StatusNotFound && (rec.Code < 300 || rec.Code > 399) {
			t.Fatalf("a wrong token %q was answered %d: %s", token, rec.Code, rec.Body)
		}
	})
}
