package botpress_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/botpress"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

func TestSenderNeverFollowsARedirect(t *testing.T) {
	var internal atomic.Int32
	loopback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { internal.Add(1) }))
	defer loopback.Close()
	webhook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, loopback.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer webhook.Close()
	s := &botpress.Sender{WebhookURL: webhook.URL + "/hook-id", Client: &http.Client{}}
	err := s.Send(context.Background(), hitl.Event{ID: "evt_1", Type: hitl.EventStopped, SessionID: "ses_1"})
	if err == nil {
		t.Fatal("a 307 answer was taken for acceptance")
	}
	if n := internal.Load(); n != 0 {
		t.Fatalf("the redirect target received %d requests", n)
	}
}
