package reliability

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// TestStartAfterACrashOpensOneChat kills startHitl between the LiveChat
// call and the session write; the bot's retry with the same
// Idempotency-Key, once the opener is presumed dead, must not open a second
// chat. (SalesIQ cannot list a visitor's conversations: there the retry
// opens a second one, as the README says.)
func TestStartAfterACrashOpensOneChat(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeName string, st *countedStore) {
		e := apptest.New(t, st)
		e.App.Bridge.Providers[hitl.LiveChat] = &apptest.CrashAfterOpen{Provider: e.App.Bridge.Providers[hitl.LiveChat]}
		_, u := e.Do(t, "POST", "/v1/users", map[string]any{"name": "Ada"})
		start := func() int {
			body, _ := json.Marshal(map[string]any{"userId": u["userId"], "provider": "livechat"})
			req, _ := http.NewRequest("POST", e.Server.URL+"/v1/sessions", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+apptest.BotKey)
			req.Header.Set("Idempotency-Key", "crash-start")
			resp, err := e.Server.Client().Do(req)
			if err != nil {
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		start() // dies after the provider call
		e.Clock.Advance(3 * time.Minute)
		status := start()
		opened := e.LiveChat.Calls("start_chat")
		record(t, "crash/start", storeName, status == http.StatusCreated && opened == 1,
			"%d (retry answered %d)", opened, status)
	})
}
