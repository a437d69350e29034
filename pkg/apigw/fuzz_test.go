package apigw

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// FuzzAdapter feeds arbitrary API Gateway events to the adapter: it never
// panics nor fails the invocation; an event it cannot read is a 400 with
// the JSON error object, and one it can reaches the handler with the body
// exactly as sent, base64 decoded.
func FuzzAdapter(f *testing.F) {
	for _, seed := range []struct {
		method, path, query, body string
		b64                       bool
	}{
		{"POST", "/webhooks/livechat", "", `{"action":"incoming_event"}`, false},
		{"POST", "/webhooks/zoho", "", base64.StdEncoding.EncodeToString([]byte(`{"event":"conversation.completed"}`)), true},
		{"POST", "/v1/users", "a=1&b=%zz", base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe}), true},
		{"GET", "/botpress/%2F%2e%2e/ping", "", "!!not base64", true},
		{"", "", "", "", false},
	} {
		f.Add(seed.method, seed.path, seed.query, seed.body, seed.b64, "Bearer k")
	}
	var got []byte
	h := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(got)
	}))
	f.Fuzz(func(t *testing.T, method, path, query, body string, b64 bool, auth string) {
		got = nil
		e := events.APIGatewayV2HTTPRequest{RawPath: path, RawQueryString: query, Body: body, IsBase64Encoded: b64,
			Headers: map[string]string{"authorization": auth, "content-type": "application/json"}}
		e.RequestContext.HTTP.Method = method
		resp, err := h(context.Background(), e)
		if err != nil {
			t.Fatalf("invocation failed: %v", err)
		}
		want := []byte(body)
		if b64 {
			want, err = base64.StdEncoding.DecodeString(body)
		}
		switch {
		case resp.StatusCode == http.StatusBadRequest:
			if got != nil || resp.Body == "" || resp.Headers["Content-Type"] != "application/json" {
				t.Fatalf("refused event: %+v", resp)
			}
		case resp.StatusCode != http.StatusOK:
			t.Fatalf("status %d", resp.StatusCode)
		case err != nil || !bytes.Equal(got, want):
			t.Fatalf("the handler read %q, want %q (%v)", got, want, err)
		}
	})
}
