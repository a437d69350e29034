package livechat_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat/livechattest"
)

const (
	secret = "s3cr3t-webhook"
	org    = "390e44e6-f1e6-0368c-z6ddb-74g14508c2ex"
)

// envelope is a delivery as LiveChat v3.6 sends it, with payload spliced in.
func envelope(action, payload string) string {
	return `{"webhook_id":"8c2ac4a4ba0b0e1b1b6e2f3c2b1a0f9e","secret_key":"` + secret + `","action":"` + action +
		`","organization_id":"390e44e6-f1e6-0368c-z6ddb-74g14508c2ex","payload":` + payload +
		`,"additional_data":{"chat_presence_user_ids":["smith@example.com"]}}`
}

const (
	agentMessage = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","event":{"id":"K600PKZON8_3","custom_id":"1dnepb4z00t",` +
		`"created_at":"2019-12-09T12:01:18.909000Z","visibility":"all","type":"message","text":"Hello, I'm Smith","author_id":"smith@example.com"}}`
	agentFile = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","event":{"id":"K600PKZON8_4","created_at":"2019-12-09T12:02:00.000000Z",` +
		`"visibility":"all","type":"file","author_id":"smith@example.com","name":"label.pdf",` +
		`"url":"https://cdn.livechat-files.com/api/file/lc/att/8948324/label.pdf","content_type":"application/pdf","size":1024}}`
	customerMessage = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","event":{"id":"K600PKZON8_5","created_at":"2019-12-09T12:03:00.000000Z",` +
		`"visibility":"all","type":"message","text":"my order is broken","author_id":"b7eff798-f8df-4364-8059-649c35c9ed0c"}}`
	echoedMessage = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","event":{"id":"K600PKZON8_6","custom_id":"hitl-bridge:ses_1",` +
		`"created_at":"2019-12-09T12:03:00.000000Z","visibility":"all","type":"message","text":"sent by us","author_id":"b7eff798-f8df-4364-8059-649c35c9ed0c"}}`
	agentNote = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","event":{"id":"K600PKZON8_7","created_at":"2019-12-09T12:04:00.000000Z",` +
		`"visibility":"agents","type":"message","text":"customer seems angry","author_id":"smith@example.com"}}`
	systemMessage = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","event":{"id":"K600PKZON8_8","created_at":"2019-12-09T12:05:00.000000Z",` +
		`"visibility":"all","type":"system_message","system_message_type":"routing.assigned","text":"Smith joined the chat"}}`
	filledForm = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","event":{"id":"K600PKZON8_9","created_at":"2019-12-09T12:05:00.000000Z",` +
		`"visibility":"all","type":"filled_form","author_id":"b7eff798-f8df-4364-8059-649c35c9ed0c","form_id":"1","fields":[{"type":"email","label":"E-mail","answer":"a@b.c"}]}}`
	agentAdded = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","user":{"id":"smith@example.com","name":"Agent Smith",` +
		`"email":"smith@example.com","type":"agent","present":true,"avatar":"https://cdn.livechat-files.com/api/file/avatar.png","visibility":"all"},` +
		`"user_type":"agent","reason":"manual","requester_id":"smith@example.com"}`
	supervisorAdded = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","user":{"id":"boss@example.com","name":"Boss","type":"agent","visibility":"agents"},` +
		`"user_type":"agent","reason":"manual","requester_id":"boss@example.com"}`
	customerAdded = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","user":{"id":"b7eff798-f8df-4364-8059-649c35c9ed0c","name":"Ada",` +
		`"type":"customer","present":true,"statistics":{"chats_count":1}},"user_type":"customer","reason":"manual","requester_id":"integration@example.com"}`
	transferredQueued = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","requester_id":"integration@example.com","reason":"manual",` +
		`"transferred_to":{"group_ids":[7]},"queue":{"position":42,"wait_time":1337,"queued_at":"2019-12-09T12:01:18.909000Z"}}`
	transferredAgent = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","requester_id":"jones@example.com","reason":"manual",` +
		`"transferred_to":{"group_ids":[19],"agent_ids":["smith@example.com"]}}`
	deactivatedByAgent  = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","user_id":"smith@example.com"}`
	deactivatedByRouter = `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8"}`
)

func TestParse(t *testing.T) {
	at := func(s string) time.Time {
		v, _ := time.Parse(time.RFC3339Nano, s)
		return v
	}
	tests := []struct {
		name     string
		body     string
		want     *hitl.ProviderEvent // nil: no event
		wantCode hitl.Code           // set: an error with this code
	}{
		{
			name: "agent message",
			body: envelope("incoming_event", agentMessage),
			want: &hitl.ProviderEvent{ConversationID: "PJ0MRSHTDG", Key: "event/PJ0MRSHTDG/K600PKZON8_3", Type: hitl.EventMessage,
				OccurredAt: at("2019-12-09T12:01:18.909Z"), Agent: &hitl.Agent{ID: "smith@example.com"},
				Message: &hitl.Message{Type: hitl.TypeText, Text: "Hello, I'm Smith"}},
		},
		{
			name: "agent file",
			body: envelope("incoming_event", agentFile),
			want: &hitl.ProviderEvent{ConversationID: "PJ0MRSHTDG", Key: "event/PJ0MRSHTDG/K600PKZON8_4", Type: hitl.EventMessage,
				OccurredAt: at("2019-12-09T12:02:00Z"), Agent: &hitl.Agent{ID: "smith@example.com"},
				Message: &hitl.Message{Type: hitl.TypeFile, URL: "https://cdn.livechat-files.com/api/file/lc/att/8948324/label.pdf",
					Title: "label.pdf", ContentType: "application/pdf"}},
		},
		{
			// Parse cannot tell the customer from an agent: the author id
			// travels in Agent.ID and the Bridge drops it when it equals
			// the session's Visitor.ID.
			name: "customer message carries its author",
			body: envelope("incoming_event", customerMessage),
			want: &hitl.ProviderEvent{ConversationID: "PJ0MRSHTDG", Key: "event/PJ0MRSHTDG/K600PKZON8_5", Type: hitl.EventMessage,
				OccurredAt: at("2019-12-09T12:03:00Z"), Agent: &hitl.Agent{ID: "b7eff798-f8df-4364-8059-649c35c9ed0c"},
				Message: &hitl.Message{Type: hitl.TypeText, Text: "my order is broken"}},
		},
		{name: "our own message echoed", body: envelope("incoming_event", echoedMessage)},
		{name: "agents-only note", body: envelope("incoming_event", agentNote)},
		{name: "system message", body: envelope("incoming_event", systemMessage)},
		{name: "filled form", body: envelope("incoming_event", filledForm)},
		{
			name: "v3.1 recipients instead of visibility",
			body: envelope("incoming_event", strings.Replace(agentMessage, `"visibility":"all"`, `"recipients":"all"`, 1)),
			want: &hitl.ProviderEvent{ConversationID: "PJ0MRSHTDG", Key: "event/PJ0MRSHTDG/K600PKZON8_3", Type: hitl.EventMessage,
				OccurredAt: at("2019-12-09T12:01:18.909Z"), Agent: &hitl.Agent{ID: "smith@example.com"},
				Message: &hitl.Message{Type: hitl.TypeText, Text: "Hello, I'm Smith"}},
		},
		{name: "blank text", body: envelope("incoming_event", strings.Replace(agentMessage, "Hello, I'm Smith", "  ", 1))},
		{
			name: "agent added",
			body: envelope("user_added_to_chat", agentAdded),
			want: &hitl.ProviderEvent{ConversationID: "PJ0MRSHTDG", Key: "user_added_to_chat/PJ0MRSHTDG/K600PKZON8/smith@example.com",
				Type: hitl.EventAssigned, Agent: &hitl.Agent{ID: "smith@example.com", Name: "Agent Smith",
					AvatarURL: "https://cdn.livechat-files.com/api/file/avatar.png"}},
		},
		{name: "supervisor added", body: envelope("user_added_to_chat", supervisorAdded)},
		{name: "customer added", body: envelope("user_added_to_chat", customerAdded)},
		{
			name: "transferred to the queue",
			body: envelope("chat_transferred", transferredQueued),
			want: &hitl.ProviderEvent{ConversationID: "PJ0MRSHTDG", Key: "chat_transferred/PJ0MRSHTDG/K600PKZON8/manual//7/2019-12-09T12:01:18.909000Z",
				Type: hitl.EventQueued, Queue: &hitl.Queue{Position: 42, EstimatedWaitSeconds: 1337}, OccurredAt: at("2019-12-09T12:01:18.909Z")},
		},
		{
			name: "transferred to an agent",
			body: envelope("chat_transferred", transferredAgent),
			want: &hitl.ProviderEvent{ConversationID: "PJ0MRSHTDG", Key: "chat_transferred/PJ0MRSHTDG/K600PKZON8/manual/smith@example.com/19/",
				Type: hitl.EventTransferred, Agent: &hitl.Agent{ID: "smith@example.com"}},
		},
		{
			name: "closed by the agent",
			body: envelope("chat_deactivated", deactivatedByAgent),
			want: &hitl.ProviderEvent{ConversationID: "PJ0MRSHTDG", Key: "chat_deactivated/PJ0MRSHTDG/K600PKZON8",
				Type: hitl.EventStopped, Reason: hitl.ReasonAgentClosed},
		},
		{
			name: "closed by the router",
			body: envelope("chat_deactivated", deactivatedByRouter),
			want: &hitl.ProviderEvent{ConversationID: "PJ0MRSHTDG", Key: "chat_deactivated/PJ0MRSHTDG/K600PKZON8",
				Type: hitl.EventStopped, Reason: hitl.ReasonTimeout},
		},
		{
			name: "license_id envelope",
			body: strings.Replace(envelope("chat_deactivated", deactivatedByAgent),
				`"organization_id":"390e44e6-f1e6-0368c-z6ddb-74g14508c2ex"`, `"license_id":104130623`, 1),
			want: &hitl.ProviderEvent{ConversationID: "PJ0MRSHTDG", Key: "chat_deactivated/PJ0MRSHTDG/K600PKZON8",
				Type: hitl.EventStopped, Reason: hitl.ReasonAgentClosed},
		},
		{name: "unknown action", body: envelope("thread_tagged", `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","tag":"refund"}`)},
		{name: "incoming_chat is ignored", body: envelope("incoming_chat", `{"chat":{"id":"PJ0MRSHTDG"}}`)},
		{name: "wrong secret", body: strings.Replace(envelope("incoming_event", agentMessage), secret, "guess", 1), wantCode: hitl.CodeUnauthenticated},
		{name: "secret prefix", body: strings.Replace(envelope("incoming_event", agentMessage), secret, secret[:5], 1), wantCode: hitl.CodeUnauthenticated},
		{name: "no secret", body: `{"action":"chat_deactivated","payload":` + deactivatedByAgent + `}`, wantCode: hitl.CodeUnauthenticated},
		{name: "secret of the wrong type", body: `{"secret_key":42,"action":"chat_deactivated"}`, wantCode: hitl.CodeUnauthenticated},
		{name: "wrong secret before malformed payload", body: `{"secret_key":"guess","action":"incoming_event","payload":7}`, wantCode: hitl.CodeUnauthenticated},
		{name: "not JSON", body: `secret_key=` + secret, wantCode: hitl.CodeInvalid},
		{name: "truncated", body: envelope("incoming_event", agentMessage)[:60], wantCode: hitl.CodeInvalid},
		{name: "empty", body: ``, wantCode: hitl.CodeInvalid},
		{name: "action of the wrong type", body: `{"secret_key":"` + secret + `","action":7}`, wantCode: hitl.CodeInvalid},
		{name: "payload missing", body: `{"secret_key":"` + secret + `","action":"chat_deactivated"}`, wantCode: hitl.CodeInvalid},
		{name: "payload not an object", body: envelope("chat_deactivated", `"PJ0MRSHTDG"`), wantCode: hitl.CodeInvalid},
		{name: "chat_id of the wrong type", body: envelope("chat_deactivated", `{"chat_id":42}`), wantCode: hitl.CodeInvalid},
		{name: "chat_id missing", body: envelope("chat_transferred", `{"thread_id":"K600PKZON8"}`), wantCode: hitl.CodeInvalid},
		{name: "event missing", body: envelope("incoming_event", `{"chat_id":"PJ0MRSHTDG"}`), wantCode: hitl.CodeInvalid},
		{name: "event id missing", body: envelope("incoming_event", strings.Replace(agentMessage, `"id":"K600PKZON8_3",`, "", 1)), wantCode: hitl.CodeInvalid},
		{name: "license_id malformed", body: strings.Replace(envelope("chat_deactivated", deactivatedByAgent), `"organization_id":"`+org+`"`, `"license_id":"x1"`, 1), wantCode: hitl.CodeInvalid},
		{name: "license_id too long", body: strings.Replace(envelope("chat_deactivated", deactivatedByAgent), `"organization_id":"`+org+`"`, `"license_id":123456789012345678901`, 1), wantCode: hitl.CodeInvalid},
		// Tolerated: optional fields of another shape are skipped.
		{name: "text of the wrong type", body: envelope("incoming_event", strings.Replace(agentMessage, `"Hello, I'm Smith"`, `["x"]`, 1))},
		{name: "user missing", body: envelope("user_added_to_chat", `{"chat_id":"PJ0MRSHTDG","user_type":"agent"}`)},
		{
			name: "group ids of the wrong type",
			body: envelope("chat_transferred", strings.Replace(transferredAgent, "[19]", `["19"]`, 1)),
			want: &hitl.ProviderEvent{ConversationID: "PJ0MRSHTDG", Key: "chat_transferred/PJ0MRSHTDG/K600PKZON8/manual/smith@example.com//",
				Type: hitl.EventTransferred, Agent: &hitl.Agent{ID: "smith@example.com"}},
		},
		{
			name: "created_at of the wrong type",
			body: envelope("incoming_event", strings.Replace(agentMessage, `"2019-12-09T12:01:18.909000Z"`, `1575892878`, 1)),
			want: &hitl.ProviderEvent{ConversationID: "PJ0MRSHTDG", Key: "event/PJ0MRSHTDG/K600PKZON8_3", Type: hitl.EventMessage,
				Agent: &hitl.Agent{ID: "smith@example.com"}, Message: &hitl.Message{Type: hitl.TypeText, Text: "Hello, I'm Smith"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A parser per case: what one case teaches the agent cache
			// must not show in another.
			events, err := livechat.NewWebhooks(secret, org).Parse([]byte(tt.body))
			if tt.wantCode != "" {
				if hitl.ErrorCode(err) != tt.wantCode || events != nil {
					t.Fatalf("got %v, %v; want code %s", events, err, tt.wantCode)
				}
				if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "guess") {
					t.Errorf("error reveals a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if len(events) != 0 {
					t.Fatalf("got %+v, want no event", events)
				}
				return
			}
			tt.want.Provider = hitl.LiveChat
			if len(events) != 1 {
				t.Fatalf("got %d events", len(events))
			}
			assertEvent(t, events[0], *tt.want)
		})
	}
}

func TestParseRedeliveryKeepsKey(t *testing.T) {
	w := livechat.NewWebhooks(secret, org)
	for _, payload := range []struct{ action, body string }{
		{"incoming_event", agentMessage},
		{"user_added_to_chat", agentAdded},
		{"chat_transferred", transferredQueued},
		{"chat_deactivated", deactivatedByAgent},
	} {
		first, err1 := w.Parse([]byte(envelope(payload.action, payload.body)))
		again, err2 := w.Parse([]byte(envelope(payload.action, payload.body)))
		if err1 != nil || err2 != nil || len(first) != 1 || len(again) != 1 || first[0].Key != again[0].Key {
			t.Errorf("%s: keys %v / %v (%v, %v)", payload.action, first, again, err1, err2)
		}
	}
	// Two transfers of one thread are two happenings.
	a, _ := w.Parse([]byte(envelope("chat_transferred", transferredQueued)))
	b, _ := w.Parse([]byte(envelope("chat_transferred", transferredAgent)))
	if a[0].Key == b[0].Key {
		t.Error("different transfers share a key")
	}
}

func TestEmptySecretAcceptsNothing(t *testing.T) {
	w := livechat.NewWebhooks("", org)
	for _, body := range []string{
		`{"secret_key":"","action":"chat_deactivated","payload":` + deactivatedByAgent + `}`,
		`{"action":"chat_deactivated","payload":` + deactivatedByAgent + `}`,
	} {
		if _, err := w.Parse([]byte(body)); hitl.ErrorCode(err) != hitl.CodeUnauthenticated {
			t.Errorf("err = %v, want unauthenticated", err)
		}
	}
}

// TestSimulatorWebhooks drives a chat through the simulator and parses what
// it delivers, as the webhook endpoint would.
func TestSimulatorWebhooks(t *testing.T) {
	f := newFixture(t)
	w := livechat.NewWebhooks(f.sim.Options().WebhookSecret, f.sim.Options().OrganizationID)
	var mu sync.Mutex
	var got []hitl.ProviderEvent
	receiver := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		events, err := w.Parse(body)
		if err != nil {
			http.Error(rw, hitl.ErrorMessage(err), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, events...)
		mu.Unlock()
	}))
	defer receiver.Close()
	f.sim.SetWebhookURL(receiver.URL)

	s := f.open(t)
	chatID := s.ProviderConversationID
	if _, err := f.client.Send(context.Background(), s, hitl.Message{Type: hitl.TypeText, Text: "anyone?"}); err != nil {
		t.Fatal(err)
	}
	chat := f.chat(t, chatID)
	smith := livechattest.Agent{ID: "smith@example.com", Name: "Agent Smith"}
	steps := []func() (int, error){
		func() (int, error) { return f.sim.Redeliver(chatID, chat.Events[len(chat.Events)-1].ID) }, // our echo: dropped
		func() (int, error) { return f.sim.AgentJoins(chatID, smith) },
		func() (int, error) { return f.sim.AgentSays(chatID, "Hi Ada, Smith here") },
		func() (int, error) { return f.sim.AgentNote(chatID, "VIP customer") }, // dropped
		func() (int, error) {
			return f.sim.AgentSendsFile(chatID, "label.pdf", "application/pdf", []byte("%PDF"))
		},
		func() (int, error) { return f.sim.TransferToQueue(chatID, 9) },
		func() (int, error) {
			return f.sim.AgentJoins(chatID, livechattest.Agent{ID: "jones@example.com", Name: "Jones"})
		},
		func() (int, error) { return f.sim.AgentCloses(chatID) },
	}
	f.sim.SetDeliveries(2) // every webhook twice, as LiveChat retries do
	for i, step := range steps {
		if status, err := step(); err != nil || status != http.StatusOK {
			t.Fatalf("step %d: status %d, %v", i, status, err)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	var types []string
	keys := map[string]int{}
	for _, e := range got {
		types = append(types, string(e.Type))
		keys[e.Key]++
		if e.ConversationID != chatID {
			t.Errorf("event for %s", e.ConversationID)
		}
	}
	want := []string{"hitl.assigned", "hitl.message", "hitl.message", "hitl.queued", "hitl.assigned", "hitl.stopped"}
	if len(types) != 2*len(want) {
		t.Fatalf("types = %q", types)
	}
	for i, typ := range want {
		if types[2*i] != typ || types[2*i+1] != typ || got[2*i].Key != got[2*i+1].Key {
			t.Errorf("event %d: %s/%s, keys %s/%s", i, types[2*i], types[2*i+1], got[2*i].Key, got[2*i+1].Key)
		}
	}
	if len(keys) != len(want) {
		t.Errorf("distinct keys = %d, want %d", len(keys), len(want))
	}
	if m := got[2].Message; m.Text != "Hi Ada, Smith here" || got[2].Agent.ID != smith.ID {
		t.Errorf("agent message = %+v", got[2])
	}
	if m := got[4].Message; m.Type != hitl.TypeFile || m.Title != "label.pdf" || !strings.HasPrefix(m.URL, f.sim.URL()) {
		t.Errorf("agent file = %+v", m)
	}
	if got[6].Queue == nil || got[6].Queue.Position != 1 || got[8].Agent.Name != "Jones" || got[10].Reason != hitl.ReasonAgentClosed {
		t.Errorf("transfer %+v, assignment %+v, stop %+v", got[6], got[8], got[10])
	}
}

func TestSimulatorLicenseEnvelope(t *testing.T) {
	sim := livechattest.New(livechattest.Options{LicenseID: 104130623})
	defer sim.Close()
	w := livechat.NewWebhooks(sim.Options().WebhookSecret, sim.Options().OrganizationID)
	var parsed []hitl.ProviderEvent
	receiver := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), `"license_id":104130623`) {
			http.Error(rw, "no license_id", http.StatusBadRequest)
			return
		}
		events, err := w.Parse(body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
		}
		parsed = events
	}))
	defer receiver.Close()
	sim.SetWebhookURL(receiver.URL)
	if status, err := sim.Deliver("chat_deactivated", map[string]string{"chat_id": "PJ0MRSHTDG", "thread_id": "K600PKZON8"}); err != nil || status != 200 {
		t.Fatalf("status %d, %v", status, err)
	}
	if len(parsed) != 1 || parsed[0].Type != hitl.EventStopped {
		t.Errorf("parsed %+v", parsed)
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []struct{ action, body string }{
		{"incoming_event", agentMessage}, {"incoming_event", agentFile}, {"incoming_event", customerMessage},
		{"incoming_event", echoedMessage}, {"incoming_event", agentNote}, {"incoming_event", systemMessage},
		{"incoming_event", filledForm}, {"user_added_to_chat", agentAdded}, {"user_added_to_chat", customerAdded},
		{"chat_transferred", transferredQueued}, {"chat_transferred", transferredAgent},
		{"chat_deactivated", deactivatedByAgent}, {"chat_deactivated", deactivatedByRouter}, {"thread_tagged", `{}`},
		{"events_marked_as_seen", `{"user_id":"smith@example.com","chat_id":"PJ0MRSHTDG","seen_up_to":"2019-12-09T12:01:18.909000Z"}`},
		{"thread_properties_updated", `{"chat_id":"PJ0MRSHTDG","thread_id":"K600PKZON8","properties":{"rating":{"score":1,"comment":"ok"}}}`},
		{"chat_properties_updated", `{"chat_id":"PJ0MRSHTDG","properties":{"rating":{"score":"1"}}}`},
	} {
		f.Add([]byte(envelope(p.action, p.body)))
	}
	f.Add([]byte(`{"secret_key":"` + secret + `","action":"incoming_event","payload":{"event":null}}`))
	f.Add([]byte(`{"secret_key":42}`))
	f.Add([]byte(`not json`))
	w := livechat.NewWebhooks(secret, org)
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := w.Parse(body)
		if err != nil {
			if code := hitl.ErrorCode(err); code != hitl.CodeInvalid && code != hitl.CodeUnauthenticated {
				t.Fatalf("error code %s: %v", code, err)
			}
			if events != nil {
				t.Fatal("events returned with an error")
			}
			return
		}
		for _, e := range events {
			if e.ConversationID == "" || e.Key == "" || e.Provider != hitl.LiveChat {
				t.Fatalf("incomplete event %+v", e)
			}
		}
	})
}

func assertEvent(t *testing.T, got, want hitl.ProviderEvent) {
	t.Helper()
	same := got.Provider == want.Provider && got.ConversationID == want.ConversationID && got.Key == want.Key &&
		got.Type == want.Type && got.OccurredAt.Equal(want.OccurredAt) && got.Reason == want.Reason && got.Queued == want.Queued &&
		(got.Agent == nil) == (want.Agent == nil) && (got.Message == nil) == (want.Message == nil) &&
		(got.Queue == nil) == (want.Queue == nil) && (got.Rating == nil) == (want.Rating == nil) && got.SeenUpTo.Equal(want.SeenUpTo)
	if same && got.Queue != nil {
		same = *got.Queue == *want.Queue
	}
	if same && got.Rating != nil {
		same = *got.Rating == *want.Rating
	}
	if same && got.Agent != nil {
		same = *got.Agent == *want.Agent
	}
	if same && got.Message != nil {
		same = *got.Message == *want.Message
	}
	if !same {
		t.Errorf("got  %+v (agent %+v, message %+v, queue %+v, rating %+v)\nwant %+v (agent %+v, message %+v, queue %+v, rating %+v)",
			got, got.Agent, got.Message, got.Queue, got.Rating, want, want.Agent, want.Message, want.Queue, want.Rating)
	}
}

func TestDeliveryForAnotherOrganizationIsRefused(t *testing.T) {
	w := livechat.NewWebhooks(secret, org)
	body := strings.Replace(envelope("chat_deactivated", `{"chat_id":"C1","thread_id":"T1"}`), org, "another-org", 1)
	if _, err := w.Parse([]byte(body)); hitl.ErrorCode(err) != hitl.CodeUnauthenticated {
		t.Fatalf("err = %v, want unauthenticated", err)
	}
}

// TestOpenWithRoutingReportsOnlyTheHumanAgent: LiveChat routes the chat
// while transfer_chat runs; of the webhooks that causes, the integration's
// own transfer and its leaving the chat are dropped, the routed agent and
// their greeting reach the bot, and all arrive after the chat was kept.
func TestOpenWithRoutingReportsOnlyTheHumanAgent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		routing livechattest.Routing
		want    []hitl.EventType
	}{
		{"agent available", livechattest.RoutingAssign, []hitl.EventType{hitl.EventAssigned, hitl.EventMessage}},
		{"nobody available", livechattest.RoutingQueue, []hitl.EventType{hitl.EventQueued}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			nora := livechattest.Agent{ID: "nora@example.com", Name: "Nora"}
			f.sim.SetRouting(tc.routing, nora)
			w := livechat.NewWebhooks(f.sim.Options().WebhookSecret, f.sim.Options().OrganizationID).
				WithIntegrationAgent(f.client.IntegrationAgentID)
			var (
				mu     sync.Mutex
				kept   bool
				events []hitl.ProviderEvent
			)
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				got, err := w.Parse(body)
				mu.Lock()
				defer mu.Unlock()
				if err != nil || !kept {
					t.Errorf("delivery: err %v, chat kept before: %v", err, kept)
				}
				events = append(events, got...)
			}))
			defer srv.Close()
			f.sim.SetWebhookURL(srv.URL)
			req := openRequest()
			req.KeepConversation = func(context.Context, ...string) error { mu.Lock(); kept = true; mu.Unlock(); return nil }
			opened, err := f.client.Open(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			var types []hitl.EventType
			for _, e := range events {
				types = append(types, e.Type)
				if e.ConversationID != opened.ConversationID || (e.Agent != nil && e.Agent.ID != nora.ID) {
					t.Errorf("event %+v", e)
				}
			}
			if !slices.Equal(types, tc.want) {
				t.Errorf("events %q, want %q", types, tc.want)
			}
			if tc.routing == livechattest.RoutingQueue && (events[0].Queue == nil || events[0].Queue.Position != 1) {
				t.Errorf("transfer without its queue: %+v", events[0])
			}
		})
	}
}
