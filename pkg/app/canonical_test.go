package app_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
)

// The local server answers paths that are not canonical as the Lambda
// functions do: a JSON 404, never a redirect to the cleaned path.
func TestLocalHandlerAnswersNonCanonicalPathsWith404(t *testing.T) {
	e := apptest.New(t, apptest.Bolt(t))
	for _, target := range []string{"/v1//users", "/v1/./users", "/webhooks/../v1/users", "/webhooks//livechat", "//healthz", "/healthz/.", "/v1/sessions/../users"} {
		t.Run(target, func(t *testing.T) {
			// A raw request: Go's client would clean the path first.
			conn, err := net.Dial("tcp", strings.TrimPrefix(e.Server.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, _ = io.WriteString(conn, "POST "+target+" HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer "+apptest.BotKey+
				"\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&out)
			if resp.StatusCode != http.StatusNotFound || out.Error.Code != "not_found" || resp.Header.Get("Location") != "" {
				t.Fatalf("%d %+v, Location %q", resp.StatusCode, out, resp.Header.Get("Location"))
			}
		})
	}
}
