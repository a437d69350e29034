package livechattest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
)

// receiver records webhook deliveries; fail decides the status of each.
type receiver struct {
	mu         sync.Mutex
	actions    []string
	payloads   []map[string]any
	at         []time.Time
	early      []bool // delivered before transfer_chat answered
	answered   *atomic.Bool
	fail       func(n int) bool
	deliveries int
}

func newReceiver(t *testing.T, answered *atomic.Bool, fail func(n int) bool) (*receiver, string) {
	r := &receiver{answered: answered, fail: fail}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var env struct {
			Action  string         `json:"action"`
			Payload map[string]any `json:"payload"`
		}
		body, _ := io.ReadAll(req.Body)
		_ = json.Unmarshal(body, &env)
		r.mu.Lock()
		r.deliveries++
		n := r.deliveries
		r.actions = append(r.actions, env.Action)
		r.payloads = append(r.payloads, env.Payload)
		r.at = append(r.at, time.Now())
		r.early = append(r.early, answered != nil && !answered.Load())
		r.mu.Unlock()
		if fail != nil && fail(n) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func call(t *testing.T, sim *livechattest.Server, path string, in any, header ...string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, sim.URL()+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Basic "+sim.AgentToken())
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// startAndTransfer starts a chat as the integration's agent and transfers
// it to group 2; answered is set once transfer_chat has answered.
func startAndTransfer(t *testing.T, sim *livechattest.Server, answered *atomic.Bool) string {
	t.Helper()
	status, out := call(t, sim, "/v3.6/agent/action/start_chat", map[string]any{"chat": map[string]any{"access": map[string]any{"group_ids": []int{2}}}, "continuous": true})
	if status != 200 {
		t.Fatalf("start_chat: %d %v", status, out)
	}
	chatID, _ := out["chat_id"].(string)
	status, out = call(t, sim, "/v3.6/agent/action/transfer_chat", map[string]any{"id": chatID,
		"target": map[string]any{"type": "group", "ids": []int{2}}, "ignore_agents_availability": true})
	answered.Store(true)
	if status != 200 {
		t.Fatalf("transfer_chat: %d %v", status, out)
	}
	return chatID
}

func TestTransferRoutesToAnAvailableAgentBeforeAnswering(t *testing.T) {
	nora := livechattest.Agent{ID: "nora@example.com", Name: "Nora"}
	sim := livechattest.New(livechattest.Options{Routing: livechattest.RoutingAssign, Agents: []livechattest.Agent{nora}})
	defer sim.Close()
	var answered atomic.Bool
	rec, url := newReceiver(t, &answered, nil)
	sim.SetWebhookURL(url)

	chatID := startAndTransfer(t, sim, &answered)

	want := []string{"chat_transferred", "user_removed_from_chat", "user_added_to_chat", "incoming_event"}
	if !slices.Equal(rec.actions, want) {
		t.Fatalf("webhooks %q, want %q", rec.actions, want)
	}
	for i, early := range rec.early {
		if !early {
			t.Errorf("%s arrived after transfer_chat answered", rec.actions[i])
		}
	}
	integration := sim.Options().IntegrationAgentID
	if to := rec.payloads[0]["transferred_to"].(map[string]any); to["agent_ids"].([]any)[0] != nora.ID || rec.payloads[0]["queue"] != nil {
		t.Errorf("chat_transferred %v", rec.payloads[0])
	}
	if rec.payloads[1]["user_id"] != integration {
		t.Errorf("user_removed_from_chat %v, want the agent who started the chat", rec.payloads[1])
	}
	if rec.payloads[2]["user"].(map[string]any)["id"] != nora.ID {
		t.Errorf("user_added_to_chat %v", rec.payloads[2])
	}
	if e := rec.payloads[3]["event"].(map[string]any); e["author_id"] != nora.ID || e["text"] == "" {
		t.Errorf("greeting %v", e)
	}
	chat, _ := sim.Chat(chatID)
	if chat.Queued || len(chat.Users) != 1 || chat.Users[0].ID != nora.ID {
		t.Errorf("chat queued %v, users %+v", chat.Queued, chat.Users)
	}
}

func TestTransferQueuesWhenNobodyIsAvailable(t *testing.T) {
	sim := livechattest.New(livechattest.Options{})
	defer sim.Close()
	sim.SetRouting(livechattest.RoutingQueue)
	var answered atomic.Bool
	rec, url := newReceiver(t, &answered, nil)
	sim.SetWebhookURL(url)

	chatID := startAndTransfer(t, sim, &answered)

	if want := []string{"chat_transferred", "user_removed_from_chat"}; !slices.Equal(rec.actions, want) || !rec.early[0] || !rec.early[1] {
		t.Fatalf("webhooks %q (early %v), want %q before the answer", rec.actions, rec.early, want)
	}
	q, _ := rec.payloads[0]["queue"].(map[string]any)
	if q == nil || q["position"] == nil || q["wait_time"] == nil || q["queued_at"] == nil {
		t.Errorf("chat_transferred without queue: %v", rec.payloads[0])
	}
	if chat, _ := sim.Chat(chatID); !chat.Queued || len(chat.Users) != 0 {
		t.Errorf("chat %+v", chat)
	}
}

func TestSilentRoutingSendsNoWebhook(t *testing.T) {
	sim := livechattest.New(livechattest.Options{})
	defer sim.Close()
	var answered atomic.Bool
	rec, url := newReceiver(t, &answered, nil)
	sim.SetWebhookURL(url)
	chatID := startAndTransfer(t, sim, &answered)
	if chat, _ := sim.Chat(chatID); len(rec.actions) != 0 || !chat.Queued {
		t.Errorf("webhooks %q, queued %v", rec.actions, chat.Queued)
	}
}

func TestWebhookRetries(t *testing.T) {
	const spacing = 20 * time.Millisecond
	t.Run("answered 503 twice, then 200", func(t *testing.T) {
		sim := livechattest.New(livechattest.Options{WebhookRetryDelay: spacing})
		defer sim.Close()
		rec, url := newReceiver(t, nil, func(n int) bool { return n <= 2 })
		sim.SetWebhookURL(url)
		status, err := sim.Deliver("chat_deactivated", map[string]any{"chat_id": "QX7B2K9LMA", "thread_id": "T1"})
		if err != nil || status != 200 || rec.deliveries != 3 {
			t.Fatalf("status %d, err %v, %d deliveries", status, err, rec.deliveries)
		}
		for i := 1; i < len(rec.at); i++ {
			if gap := rec.at[i].Sub(rec.at[i-1]); gap < spacing {
				t.Errorf("retry %d after %v, want at least %v", i, gap, spacing)
			}
		}
	})
	t.Run("always failing: the first attempt and 3 retries", func(t *testing.T) {
		sim := livechattest.New(livechattest.Options{})
		defer sim.Close()
		rec, url := newReceiver(t, nil, func(int) bool { return true })
		sim.SetWebhookURL(url)
		status, err := sim.Deliver("chat_deactivated", map[string]any{"chat_id": "QX7B2K9LMA", "thread_id": "T1"})
		if err != nil || status != http.StatusServiceUnavailable || rec.deliveries != 4 {
			t.Fatalf("status %d, err %v, %d deliveries", status, err, rec.deliveries)
		}
	})
}

func TestMisdirectedRequest(t *testing.T) {
	sim := livechattest.New(livechattest.Options{Region: "fra"})
	defer sim.Close()
	status, out := call(t, sim, "/v3.6/agent/action/start_chat", map[string]any{})
	e, _ := out["error"].(map[string]any)
	data, _ := e["data"].(map[string]any)
	if status != http.StatusMisdirectedRequest || e["type"] != "misdirected_request" || data["region"] != "fra" {
		t.Fatalf("%d %v", status, out)
	}
	if status, out := call(t, sim, "/v3.6/agent/action/start_chat", map[string]any{}, "X-Region", "fra"); status != 200 {
		t.Fatalf("with X-Region fra: %d %v", status, out)
	}
}
