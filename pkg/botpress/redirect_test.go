package botpress_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/botpress"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

func TestSenderNeverFollowsARedirect(t *testing.T) {
	webhook := simcore.NewRedirect(t, http.StatusTemporaryRedirect)
	s := &botpress.Sender{WebhookURL: webhook.URL + "/hook-id", Client: &http.Client{}}
	err := s.Send(context.Background(), hitl.Event{ID: "evt_1", Type: hitl.EventStopped, SessionID: "ses_1"})
	if err == nil {
		t.Fatal("a 307 answer was taken for acceptance")
	}
	if n := webhook.Followed(); n != 0 {
		t.Fatalf("the redirect target received %d requests", n)
	}
}
