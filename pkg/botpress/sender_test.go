package botpress_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hitl-bridge/hitl-bridge/pkg/botpress"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

func TestSenderMapsEventsToTheWebhookContract(t *testing.T) {
	webhook := loadContract(t, webhookContract)
	var mu sync.Mutex
	var got []string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		route := strings.TrimPrefix(r.URL.Path, "/hook-id")
		webhook.checkRequest(t, route, body)
		got = append(got, route+" "+string(body))
		w.WriteHeader(status)
	}))
	defer srv.Close()
	s := &botpress.Sender{WebhookURL: srv.URL + "/hook-id/", Client: srv.Client()}

	ann := &hitl.Agent{ID: "ann@example.com", Name: "Ann"}
	msg := func(m hitl.Message) hitl.Event {
		return hitl.Event{ID: "evt_1", Type: hitl.EventMessage, SessionID: "ses_1", Agent: ann, Message: &m}
	}
	tests := []struct {
		name string
		e    hitl.Event
		want string // "" for no call
	}{
		{"text", msg(hitl.Message{Type: hitl.TypeText, Text: "Hi"}),
			`/message-from-agent {"remoteConversationId":"ses_1","remoteUserId":"ann@example.com","messageType":"text","payload":{"text":"Hi"}}`},
		{"image file", msg(hitl.Message{Type: hitl.TypeFile, URL: "https://f.test/1", Title: "scan", ContentType: "image/jpeg"}),
			`/message-from-agent {"remoteConversationId":"ses_1","remoteUserId":"ann@example.com","messageType":"image","payload":{"imageUrl":"https://f.test/1"}}`},
		{"image file read back without its content type", msg(hitl.Message{Type: hitl.TypeFile, URL: "https://f.test/1", Title: "map.PNG"}),
			`/message-from-agent {"remoteConversationId":"ses_1","remoteUserId":"ann@example.com","messageType":"image","payload":{"imageUrl":"https://f.test/1"}}`},
		{"audio file", msg(hitl.Message{Type: hitl.TypeFile, URL: "https://f.test/v.ogg", ContentType: "audio/ogg"}),
			`/message-from-agent {"remoteConversationId":"ses_1","remoteUserId":"ann@example.com","messageType":"audio","payload":{"audioUrl":"https://f.test/v.ogg"}}`},
		{"other file", msg(hitl.Message{Type: hitl.TypeFile, URL: "https://f.test/2", Title: "label.pdf", ContentType: "application/pdf"}),
			`/message-from-agent {"remoteConversationId":"ses_1","remoteUserId":"ann@example.com","messageType":"file","payload":{"fileUrl":"https://f.test/2","title":"label.pdf"}}`},
		{"assigned", hitl.Event{Type: hitl.EventAssigned, SessionID: "ses_1", Agent: ann},
			`/agent-assigned {"remoteConversationId":"ses_1","remoteUserId":"ann@example.com"}`},
		{"transferred to an agent", hitl.Event{Type: hitl.EventTransferred, SessionID: "ses_1", Agent: &hitl.Agent{ID: "op-2"}},
			`/agent-assigned {"remoteConversationId":"ses_1","remoteUserId":"op-2"}`},
		{"transferred to a queue", hitl.Event{Type: hitl.EventTransferred, SessionID: "ses_1", Queued: true}, ""},
		{"stopped", hitl.Event{Type: hitl.EventStopped, SessionID: "ses_1", Reason: hitl.ReasonTimeout},
			`/stop-hitl {"remoteConversationId":"ses_1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			if err := s.Send(context.Background(), tt.e); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case tt.want == "" && len(got) != 0:
				t.Fatalf("calls %q, want none", got)
			case tt.want != "" && (len(got) != 1 || !sameJSONCall(got[0], tt.want)):
				t.Fatalf("calls %q, want %q", got, tt.want)
			}
		})
	}

	status = http.StatusInternalServerError
	err := s.Send(context.Background(), hitl.Event{Type: hitl.EventStopped, SessionID: "ses_1"})
	if err == nil {
		t.Fatal("a 500 answer was taken as delivered")
	}
	dead := &botpress.Sender{WebhookURL: "http://127.0.0.1:1/secret-hook-id", Client: srv.Client()}
	if err := dead.Send(context.Background(), hitl.Event{Type: hitl.EventStopped, SessionID: "ses_1"}); err == nil || strings.Contains(err.Error(), "secret-hook-id") {
		t.Fatalf("err = %v, want an error that does not show the webhook URL", err)
	}
}

func sameJSONCall(got, want string) bool {
	gr, gb, _ := strings.Cut(got, " ")
	wr, wb, _ := strings.Cut(want, " ")
	var g, w any
	return gr == wr && json.Unmarshal([]byte(gb), &g) == nil && json.Unmarshal([]byte(wb), &w) == nil && jsonEqual(g, w)
}

func jsonEqual(a, b any) bool {
	ra, _ := json.Marshal(a)
	rb, _ := json.Marshal(b)
	return string(ra) == string(rb)
}
