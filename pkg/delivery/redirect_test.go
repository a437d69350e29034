package delivery

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// A bot endpoint answering 3xx must not make the bridge post its signed
// event somewhere else, e.g. to a service on the bridge's loopback.
func TestCallbackNeverFollowsARedirect(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			bot := simcore.NewRedirect(t, status)
			c := &Callback{URL: bot.URL, Secret: []byte("k"), Client: &http.Client{}, Now: time.Now}
			err := c.Send(context.Background(), hitl.Event{ID: "evt_1", Type: hitl.EventStopped, SessionID: "ses_1"})
			if err == nil {
				t.Fatalf("a %d answer was taken for acceptance", status)
			}
			if n := bot.Followed(); n != 0 {
				t.Fatalf("the redirect target received %d requests", n)
			}
		})
	}
}
