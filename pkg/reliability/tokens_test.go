package reliability

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app"
	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
)

// TestConcurrentInvalidTokensRefreshOnce has Zoho refuse the access token
// under 50 concurrent sends, spread over two containers that share the
// store and the token secret: Zoho sees one refresh per round, and every
// send goes through.
func TestConcurrentInvalidTokensRefreshOnce(t *testing.T) {
	const senders = 50
	rounds := size(2, 10)
	forEachStore(t, func(t *testing.T, storeName string, st *countedStore) {
		e := apptest.New(t, st)
		// A second container: its own App and token cache, the same store,
		// token secret, clock and log.
		log := slog.New(slog.NewJSONHandler(e.Logs, nil))
		second, err := app.New(e.Config, app.Options{Store: e.Store, Log: log, Client: e.Net.Client(), Now: e.Clock.Now, Documents: e.Documents.Open})
		if err != nil {
			t.Fatal(err)
		}
		secondServer := httptest.NewServer(second.Handler())
		t.Cleanup(secondServer.Close)

		sessionID, _ := e.HandoffTo(t, "zoho")
		var refreshes []int
		var refused atomic.Int64
		worst := 0
		for r := range rounds {
			// Zoho revokes the token some minutes after the last refresh.
			e.Clock.Advance(2 * time.Minute)
			e.Zoho.ExpireTokens()
			before := e.Zoho.TokenCalls()
			var wg sync.WaitGroup
			for i := range senders {
				base := e.Server.URL
				if i%2 == 1 {
					base = secondServer.URL
				}
				wg.Go(func() {
					body := []byte(`{"type":"text","payload":{"text":"round message"}}`)
					h := http.Header{"Authorization": {"Bearer " + apptest.BotKey}}
					if status, answer := post(base+"/v1/sessions/"+sessionID+"/messages", body, h); status != http.StatusAccepted {
						refused.Add(1)
						t.Logf("round %d: send answered %d %s", r, status, answer)
					}
				})
			}
			wg.Wait()
			n := e.Zoho.TokenCalls() - before
			refreshes = append(refreshes, n)
			worst = max(worst, n)
		}
		ok := refused.Load() == 0
		for _, n := range refreshes {
			ok = ok && n == 1
		}
		record(t, "tokens", storeName, ok, "%d · %d (%d rounds of %d sends over 2 containers; refreshes per round %v)",
			worst, refused.Load(), rounds, senders, refreshes)
	})
}
