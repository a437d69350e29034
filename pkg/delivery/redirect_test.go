package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// A bot endpoint answering 3xx must not make the bridge post its signed
// event somewhere else, e.g. to a service on the bridge's loopback.
func TestCallbackNeverFollowsARedirect(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var internal atomic.Int32
			loopback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { internal.Add(1) }))
			defer loopback.Close()
			bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, loopback.URL+"/admin", status)
			}))
			defer bot.Close()
			c := &Callback{URL: bot.URL, Secret: []byte("k"), Client: &http.Client{}, Now: time.Now}
			err := c.Send(context.Background(), hitl.Event{ID: "evt_1", Type: hitl.EventStopped, SessionID: "ses_1"})
			if err == nil {
				t.Fatalf("a %d answer was taken for acceptance", status)
			}
			if n := internal.Load(); n != 0 {
				t.Fatalf("the redirect target received %d requests", n)
			}
		})
	}
}
