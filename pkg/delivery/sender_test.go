package delivery

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

func TestSignMatchesTheDocumentedScheme(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"id":"evt_1"}`)
	at := time.Unix(1700000000, 0)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("1700000000." + string(body)))
	want := "t=1700000000,v1=" + hex.EncodeToString(mac.Sum(nil))
	if got := Sign(secret, at, body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if Sign([]byte("other"), at, body) == want || Sign(secret, at.Add(time.Second), body) == want {
		t.Fatal("signature ignores the secret or the time")
	}
}

func TestCallbackSendsSignedEvent(t *testing.T) {
	var gotHeader http.Header
	var gotBody []byte
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHeader = r.Header.Clone()
		gotBody, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	at := time.Unix(1700000000, 0)
	c := &Callback{URL: srv.URL, Secret: []byte("k"), Client: srv.Client(), Now: func() time.Time { return at }}
	e := hitl.Event{ID: "evt_1", Type: hitl.EventMessage, SessionID: "ses_1", Provider: "livechat", OccurredAt: at.UTC(),
		Message: &hitl.Message{Type: hitl.TypeText, Text: "hello"}, Agent: &hitl.Agent{ID: "a@x.test", Name: "Ann"}}
	if err := c.Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if gotHeader.Get(HeaderEventID) != "evt_1" || gotHeader.Get(HeaderSignature) != Sign([]byte("k"), at, gotBody) {
		t.Fatalf("headers %v do not carry the id and a valid signature", gotHeader)
	}
	var body map[string]any
	if err := json.Unmarshal(gotBody, &body); err != nil {
		t.Fatal(err)
	}
	if body["type"] != "hitl.message" || body["sessionId"] != "ses_1" || body["message"].(map[string]any)["payload"].(map[string]any)["text"] != "hello" {
		t.Fatalf("body = %s", gotBody)
	}
	if _, leaked := body["Channel"]; leaked || strings.Contains(string(gotBody), "channel") {
		t.Fatalf("routing fields leak into the body: %s", gotBody)
	}
	status = http.StatusServiceUnavailable
	if err := c.Send(context.Background(), e); err == nil {
		t.Fatal("a 503 answer was taken as delivered")
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 4: 80 * time.Second, 30: 15 * time.Minute} {
		for range 20 {
			got := Backoff(n)
			if got < want*8/10 || got > want*12/10 {
				t.Fatalf("Backoff(%d) = %s, want %s ±20%%", n, got, want)
			}
		}
	}
}
