package zoho_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

// receive makes the simulator deliver its webhooks to a new receiver.
func (f *fixture) receive(t *testing.T) *simcore.Receiver {
	t.Helper()
	r := simcore.NewReceiver(t)
	f.sim.SetWebhookURL(r.URL)
	return r
}

func (f *fixture) webhooks(t *testing.T, keys ...string) *zoho.Webhooks {
	t.Helper()
	if len(keys) == 0 {
		keys = []string{f.sim.PublicKeyPEM()}
	}
	o := f.sim.Options()
	w, err := zoho.NewWebhooks(zoho.WebhookConfig{PublicKeys: keys, AppID: o.AppID, OrgID: o.OrgID, Now: f.clock.Now, Logger: f.logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// parseOne parses the only delivery r received.
func parseOne(t *testing.T, w *zoho.Webhooks, r *simcore.Receiver) []hitl.ProviderEvent {
	t.Helper()
	got := r.Take()
	if len(got) != 1 {
		t.Fatalf("%d deliveries", len(got))
	}
	evs, err := w.Parse(got[0].Header, got[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestParseEvents(t *testing.T) {
	f := newFixture(t)
	r := f.receive(t)
	w := f.webhooks(t)
	s := f.open(t)
	conv := s.ProviderConversationID
	ada := zohotest.Operator{ID: "40526000000002001", Name: "Patricia", Email: "patricia@zylker.com"}
	bob := zohotest.Operator{ID: "40526000000002002", Name: "Bob", Email: "bob@zylker.com"}

	check := func(name string, act func() (int, error), want ...hitl.ProviderEvent) {
		t.Helper()
		if status, err := act(); err != nil || status != http.StatusOK {
			t.Fatalf("%s: status %d, %v", name, status, err)
		}
		got := parseOne(t, w, r)
		if len(got) != len(want) {
			t.Fatalf("%s: events %+v", name, got)
		}
		for i := range want {
			g := got[i]
			if g.Provider != hitl.Zoho || g.ConversationID != conv || g.Key == "" || g.OccurredAt.IsZero() {
				t.Errorf("%s: event %+v", name, g)
			}
			if g.Type != want[i].Type || g.Reason != want[i].Reason || !sameAgent(g.Agent, want[i].Agent) || !sameMessage(g.Message, want[i].Message) {
				t.Errorf("%s: got %+v agent %+v message %+v, want %+v", name, g, g.Agent, g.Message, want[i])
			}
		}
	}
	check("accepted", func() (int, error) { return f.sim.OperatorAccepts(conv, ada) },
		hitl.ProviderEvent{Type: hitl.EventAssigned, Agent: &hitl.Agent{ID: ada.ID, Name: "Patricia"}})
	check("replied", func() (int, error) { return f.sim.OperatorReplies(conv, "Hello Ada, how can I help?") },
		hitl.ProviderEvent{Type: hitl.EventMessage, Agent: &hitl.Agent{ID: ada.ID, Name: "Patricia"},
			Message: &hitl.Message{Type: hitl.TypeText, Text: "Hello Ada, how can I help?"}})

	if _, err := f.sim.OperatorSendsFile(conv, "label.pdf", "application/pdf", []byte("%PDF label"), "Your return label"); err != nil {
		t.Fatal(err)
	}
	evs := parseOne(t, w, r)
	if len(evs) != 2 || evs[0].Message.Type != hitl.TypeFile || evs[0].Message.Title != "label.pdf" ||
		evs[0].Message.ContentType != "application/pdf" || evs[1].Message.Text != "Your return label" || evs[0].Key == evs[1].Key {
		t.Fatalf("file events = %+v", evs)
	}
	resp, err := http.Get(evs[0].Message.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "%PDF label" {
		t.Errorf("file served %q", body)
	}

	check("transferred", func() (int, error) { return f.sim.TransferAccepted(conv, bob) },
		hitl.ProviderEvent{Type: hitl.EventTransferred, Agent: &hitl.Agent{ID: bob.ID, Name: "Bob"}})
	check("completed", func() (int, error) { return f.sim.Completes(conv) },
		hitl.ProviderEvent{Type: hitl.EventStopped, Reason: hitl.ReasonAgentClosed})

	s2 := f.open(t)
	conv = s2.ProviderConversationID
	check("missed", func() (int, error) { return f.sim.Missed(conv) },
		hitl.ProviderEvent{Type: hitl.EventStopped, Reason: hitl.ReasonMissed})
}

func sameAgent(a, b *hitl.Agent) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func sameMessage(a, b *hitl.Message) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func TestParseRetriedDeliveryKeepsKey(t *testing.T) {
	f := newFixture(t)
	r := f.receive(t)
	w := f.webhooks(t)
	conv := f.open(t).ProviderConversationID
	f.sim.SetDeliveries(3)
	if _, err := f.sim.OperatorAccepts(conv, zohotest.Operator{ID: "7", Name: "Pat"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sim.OperatorReplies(conv, "hi"); err != nil {
		t.Fatal(err)
	}
	got := r.Take()
	if len(got) != 6 {
		t.Fatalf("%d deliveries", len(got))
	}
	for i := range got {
		var env struct{ Attempt int }
		json.Unmarshal(got[i].Body, &env)
		evs, err := w.Parse(got[i].Header, got[i].Body)
		if err != nil || len(evs) != 1 || env.Attempt != i%3+1 {
			t.Fatalf("delivery %d (attempt %d): %+v, %v", i, env.Attempt, evs, err)
		}
		first, _ := w.Parse(got[i-i%3].Header, got[i-i%3].Body)
		if evs[0].Key != first[0].Key || (i%3 > 0 && bytes.Equal(got[i].Body, got[i-1].Body)) {
			t.Errorf("delivery %d: key %q, first %q", i, evs[0].Key, first[0].Key)
		}
	}
}

func TestSimulatorRetriesFailedDeliveries(t *testing.T) {
	f := newFixture(t)
	r := f.receive(t)
	r.SetStatus(http.StatusServiceUnavailable)
	conv := f.open(t).ProviderConversationID
	if status, err := f.sim.Missed(conv); err != nil || status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, %v", status, err)
	}
	if n := len(r.Take()); n != 4 {
		t.Errorf("%d attempts, want 4 (one and three retries)", n)
	}
}

func TestParseRefuses(t *testing.T) {
	f := newFixture(t)
	f.receive(t)
	conv := f.open(t).ProviderConversationID
	if _, err := f.sim.OperatorAccepts(conv, zohotest.Operator{ID: "7", Name: "Pat"}); err != nil {
		t.Fatal(err)
	}
	body, err := f.sim.Envelope("conversation.attender.updated", conv, 1)
	if err != nil {
		t.Fatal(err)
	}
	signed := f.sim.Sign(body)
	oldKey := f.sim.PublicKeyPEM()
	otherKey := pemOf(t, testKey())
	signedByOther := sign(t, testKey(), body)
	tampered := bytes.Replace(body, []byte(`"name":"Pat"`), []byte(`"name":"Mallory"`), 1)
	if bytes.Equal(tampered, body) {
		t.Fatal("tampering changed nothing")
	}
	header := func(sig string) http.Header {
		h := http.Header{}
		if sig != "" {
			h.Set("x-siqsignature", sig)
		}
		return h
	}
	o := f.sim.Options()
	tests := []struct {
		name   string
		w      *zoho.Webhooks
		header http.Header
		body   []byte
		want   hitl.Code // "" for success
	}{
		{"valid", f.webhooks(t), header(signed), body, ""},
		{"unsigned", f.webhooks(t), header(""), body, hitl.CodeUnauthenticated},
		{"forged", f.webhooks(t), header(signedByOther), body, hitl.CodeUnauthenticated},
		{"tampered", f.webhooks(t), header(signed), tampered, hitl.CodeUnauthenticated},
		{"garbage signature", f.webhooks(t), header("not base64!"), body, hitl.CodeUnauthenticated},
		{"wrong key configured", f.webhooks(t, otherKey), header(signed), body, hitl.CodeUnauthenticated},
		{"second key valid", f.webhooks(t, otherKey, oldKey), header(signed), body, ""},
		{"wrong app", mustWebhooks(t, zoho.WebhookConfig{PublicKeys: []string{oldKey}, AppID: "other", OrgID: o.OrgID}), header(signed), body, hitl.CodeUnauthenticated},
		{"wrong org", mustWebhooks(t, zoho.WebhookConfig{PublicKeys: []string{oldKey}, AppID: o.AppID, OrgID: "other"}), header(signed), body, hitl.CodeUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := tt.w.Parse(tt.header, tt.body)
			if tt.want == "" {
				if err != nil || len(evs) != 1 {
					t.Fatalf("%+v, %v", evs, err)
				}
				return
			}
			if hitl.ErrorCode(err) != tt.want || evs != nil {
				t.Fatalf("events %+v, err %v, want %s", evs, err, tt.want)
			}
		})
	}

	// After a key rotation both keys verify while both are configured.
	newKey := f.sim.RotateKey()
	both := f.webhooks(t, oldKey, newKey)
	fresh, _ := f.sim.Envelope("conversation.attender.updated", conv, 1)
	for _, d := range []simcore.Delivery{{Header: header(signed), Body: body}, {Header: header(f.sim.Sign(fresh)), Body: fresh}} {
		if _, err := both.Parse(d.Header, d.Body); err != nil {
			t.Errorf("rotation: %v", err)
		}
	}
	if _, err := f.webhooks(t, oldKey).Parse(header(f.sim.Sign(fresh)), fresh); hitl.ErrorCode(err) != hitl.CodeUnauthenticated {
		t.Errorf("new key without its public key: %v", err)
	}
}

// eventAt is the event_time of the hand-written deliveries below.
var eventAt = time.UnixMilli(1612943810186)

// bodyParser is a parser whose clock reads eventAt, for hand-written
// deliveries.
func bodyParser(t *testing.T, f *fixture, at time.Time) *zoho.Webhooks {
	t.Helper()
	o := f.sim.Options()
	return mustWebhooks(t, zoho.WebhookConfig{PublicKeys: []string{f.sim.PublicKeyPEM()}, AppID: o.AppID, OrgID: o.OrgID,
		Now: func() time.Time { return at }, Logger: f.logs.Logger()})
}

func envelopeOf(o zohotest.Options, event, entity string) string {
	return `{"entity_type":"conversation","webhook":{"id":"1"},"org_id":"` + o.OrgID + `","event":"` + event +
		`","entity_id":"19000000033103","attempt":1,"version":"1","app_id":"` + o.AppID + `","event_time":"1612943810186","entity":` + entity + `}`
}

func TestParseBodies(t *testing.T) {
	f := newFixture(t)
	w := bodyParser(t, f, eventAt)
	o := f.sim.Options()
	envelope := func(event, entity string) string { return envelopeOf(o, event, entity) }
	tests := []struct {
		name string
		body string
		want hitl.Code // "" for success
		n    int       // events on success
	}{
		{"malformed", `{"event":`, hitl.CodeInvalid, 0},
		{"not an object", `[1,2]`, hitl.CodeInvalid, 0},
		{"event name not a string", strings.Replace(envelope("conversation.completed", `{"id":"1"}`), `"event":"conversation.completed"`, `"event":7`, 1), hitl.CodeInvalid, 0},
		{"conversation id unreadable", envelope("conversation.completed", `{"id":{"value":"1"}}`), hitl.CodeInvalid, 0},
		{"unknown event", envelope("conversation.created", `{"id":"1"}`), "", 0},
		{"rating", envelope("conversation.rated", `{"rating":4,"feedback":"Good"}`), "", 1},
		{"rating with neither score nor feedback", envelope("conversation.rated", `{"rating":null,"feedback":""}`), "", 0},
		{"visitor reply ignored", envelope("conversation.visitor.replied", `{"message":{"msgid":"1","text":"hi"}}`), "", 0},
		{"entity missing", envelope("conversation.completed", `null`), hitl.CodeInvalid, 0},
		{"entity_id only", envelope("conversation.completed", `{}`), "", 1},
		{"reply without msgid", envelope("conversation.operator.replied", `{"message":{"sender":{"id":"5"},"text":"hi"}}`), "", 1},
		{"assignment without operator", envelope("conversation.attender.updated", `{"id":"19000000033103"}`), "", 0},
		{"numeric ids", strings.Replace(envelope("conversation.operator.replied",
			`{"id":19000000033103,"message":{"sender":{"id":466756000000002001,"name":"Pat","type":"operator"},"msgid":1612943810,"text":"hi"}}`),
			`"app_id":"`+o.AppID+`"`, `"app_id":`+o.AppID, 1), "", 1},
		{"owner when no attender", envelope("conversation.attender.updated", `{"owner":{"id":"5","name":"Pat","email_id":"p@x"}}`), "", 1},
		{"attachments array", envelope("conversation.operator.replied",
			`{"message":{"sender":{"id":"5","type":"operator"},"msgid":"9","attachments":[{"file_name":"a.png","url":"https://files.example.com/a.png"},{"url":"javascript:alert(1)"}]}}`), "", 1},
		{"empty reply", envelope("conversation.operator.replied", `{"message":{"sender":{"id":"5"},"msgid":"9","text":"  "}}`), "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("x-siqsignature", f.sim.Sign([]byte(tt.body)))
			evs, err := w.Parse(h, []byte(tt.body))
			if tt.want != "" {
				if hitl.ErrorCode(err) != tt.want {
					t.Fatalf("err = %v, want %s", err, tt.want)
				}
				if strings.Contains(err.Error(), "19000000033103") {
					t.Errorf("error echoes the body: %v", err)
				}
				return
			}
			if err != nil || len(evs) != tt.n {
				t.Fatalf("events %+v, err %v", evs, err)
			}
			for _, e := range evs {
				if e.ConversationID != "19000000033103" || e.OccurredAt.UnixMilli() != 1612943810186 {
					t.Errorf("event %+v", e)
				}
			}
		})
	}
}

// TestParseToleratesOptionalShapes: an operator reply whose attachment
// (or another optional field) has a shape nobody foresaw keeps its text,
// and its file when a URL can be found; the oddity is logged by field name,
// never with the body.
func TestParseToleratesOptionalShapes(t *testing.T) {
	f := newFixture(t)
	w := bodyParser(t, f, eventAt)
	o := f.sim.Options()
	const secretText = "Your code is 4242"
	reply := func(extra string) string {
		return envelopeOf(o, "conversation.operator.replied",
			`{"id":"19000000033103","message":{"sender":{"id":"5","name":"Pat","type":"operator"},"msgid":"77","text":"`+secretText+`"`+extra+`}}`)
	}
	tests := []struct {
		name  string
		extra string
		files []string // URLs forwarded as files
		odd   string   // field logged as skipped; "" for none
	}{
		{"attachment object", `,"attachment":{"name":"a.pdf","url":"https://f.example.com/a.pdf"}`, []string{"https://f.example.com/a.pdf"}, ""},
		{"attachment array", `,"attachment":[{"url":"https://f.example.com/a.pdf"},{"download_url":"https://f.example.com/b.pdf"}]`,
			[]string{"https://f.example.com/a.pdf", "https://f.example.com/b.pdf"}, ""},
		{"attachment string URL", `,"attachment":"https://f.example.com/c.png"`, []string{"https://f.example.com/c.png"}, ""},
		{"attachment string, no URL", `,"attachment":"c.png"`, nil, "entity.message.attachment (string)"},
		{"attachment null", `,"attachment":null`, nil, ""},
		{"attachment number", `,"attachment":12`, nil, "entity.message.attachment (number)"},
		{"attachment object without URL", `,"attachment":{"name":"x"}`, nil, "entity.message.attachment (object)"},
		{"file array of junk", `,"file":[true,{"url":"ftp://x"}]`, nil, "entity.message.file[0] (boolean)"},
		{"sender a string", `,"meta":[1],"sender":"Pat"`, nil, "entity.message.sender (string)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := reply(tt.extra)
			if tt.name == "sender a string" {
				body = strings.Replace(body, `"sender":{"id":"5","name":"Pat","type":"operator"},`, ``, 1)
			}
			h := http.Header{"X-Siqsignature": {f.sim.Sign([]byte(body))}}
			evs, err := w.Parse(h, []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != len(tt.files)+1 || evs[len(evs)-1].Message.Text != secretText {
				t.Fatalf("events %+v", evs)
			}
			for i, u := range tt.files {
				if evs[i].Message.Type != hitl.TypeFile || evs[i].Message.URL != u {
					t.Errorf("file %d: %+v", i, evs[i].Message)
				}
			}
			logs := f.logs.String()
			if tt.odd != "" && !strings.Contains(logs, tt.odd) {
				t.Errorf("%q not logged: %s", tt.odd, logs)
			}
			if strings.Contains(logs, secretText) || strings.Contains(logs, "f.example.com") {
				t.Errorf("the body reached the logs: %s", logs)
			}
		})
	}
}

// TestParseRefusesReplays: a signed delivery older than SalesIQ's retry
// span, or from too far in the future, is refused as unauthenticated.
func TestParseRefusesReplays(t *testing.T) {
	f := newFixture(t)
	body := envelopeOf(f.sim.Options(), "conversation.completed", `{"id":"19000000033103"}`)
	h := http.Header{"X-Siqsignature": {f.sim.Sign([]byte(body))}}
	for _, tt := range []struct {
		name string
		now  time.Time
		want hitl.Code
	}{
		{"fresh", eventAt.Add(time.Second), ""},
		{"after SalesIQ's last retry", eventAt.Add(4 * time.Minute), ""},
		{"at the window's end", eventAt.Add(10 * time.Minute), ""},
		{"replayed later", eventAt.Add(10*time.Minute + time.Second), hitl.CodeUnauthenticated},
		{"replayed a day later", eventAt.Add(24 * time.Hour), hitl.CodeUnauthenticated},
		{"small clock skew", eventAt.Add(-30 * time.Second), ""},
		{"from the future", eventAt.Add(-2 * time.Minute), hitl.CodeUnauthenticated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := bodyParser(t, f, tt.now).Parse(h, []byte(body))
			if hitl.ErrorCode(err) != tt.want && !(tt.want == "" && err == nil) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.want != "" && (evs != nil || strings.Contains(err.Error(), "19000000033103")) {
				t.Errorf("events %+v, err %v", evs, err)
			}
		})
	}
	// Without event_time the signature still holds; the gap is logged.
	bare := strings.Replace(body, `"event_time":"1612943810186",`, "", 1)
	evs, err := bodyParser(t, f, eventAt.Add(24*time.Hour)).Parse(http.Header{"X-Siqsignature": {f.sim.Sign([]byte(bare))}}, []byte(bare))
	if err != nil || len(evs) != 1 || !strings.Contains(f.logs.String(), "event_time (missing)") {
		t.Errorf("no event_time: %+v, %v", evs, err)
	}
}

// TestParseIDs: the conversation id is entity.id, every other id the
// delivery carries is an alias, and ids above 2^53 keep every digit.
func TestParseIDs(t *testing.T) {
	f := newFixture(t)
	w := bodyParser(t, f, eventAt)
	o := f.sim.Options()
	body := strings.Replace(envelopeOf(o, "conversation.completed",
		`{"id":40526000001808033,"conversation_id":"40526000001808033","visitor_conversation_id":"ad433hjdid546f8n"}`),
		`"entity_id":"19000000033103"`, `"entity_id":40526000001808033`, 1)
	evs, err := w.Parse(http.Header{"X-Siqsignature": {f.sim.Sign([]byte(body))}}, []byte(body))
	if err != nil || len(evs) != 1 {
		t.Fatalf("%+v, %v", evs, err)
	}
	if e := evs[0]; e.ConversationID != "40526000001808033" || len(e.AltConversationIDs) != 1 || e.AltConversationIDs[0] != "ad433hjdid546f8n" {
		t.Errorf("ids %q %q", e.ConversationID, e.AltConversationIDs)
	}
}

// TestParseMaybeOpening: assignments, replies and transfers of a
// conversation that started within two minutes may precede the open
// call's answer; older conversations, and other events, are not held.
func TestParseMaybeOpening(t *testing.T) {
	f := newFixture(t)
	w := bodyParser(t, f, eventAt)
	o := f.sim.Options()
	ms := func(d time.Duration) string { return strconv.FormatInt(eventAt.Add(-d).UnixMilli(), 10) }
	assigned := func(started string) string {
		return `{"id":"19000000033103",` + started + `"attender":{"id":"5","name":"Pat"}}`
	}
	tests := []struct {
		name, event, entity string
		want                bool
	}{
		{"assigned as it opened", "conversation.attender.updated", assigned(`"opened_time":"` + ms(3*time.Second) + `",`), true},
		{"assigned, start_time", "conversation.attender.updated", assigned(`"start_time":` + ms(time.Minute) + `,`), true},
		{"assigned, start unknown", "conversation.attender.updated", assigned(""), true},
		{"assigned long after it opened", "conversation.attender.updated", assigned(`"opened_time":"` + ms(10*time.Minute) + `",`), false},
		{"greeting", "conversation.operator.replied",
			`{"id":"19000000033103","opened_time":"` + ms(2*time.Second) + `","message":{"sender":{"id":"5"},"msgid":"1","text":"Hi"}}`, true},
		{"transfer soon after", "conversation.transfer.accepted", assigned(`"opened_time":"` + ms(90*time.Second) + `",`), true},
		{"completed", "conversation.completed", `{"id":"19000000033103","opened_time":"` + ms(time.Second) + `"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := envelopeOf(o, tt.event, tt.entity)
			evs, err := w.Parse(http.Header{"X-Siqsignature": {f.sim.Sign([]byte(body))}}, []byte(body))
			if err != nil || len(evs) != 1 || evs[0].MaybeOpening != tt.want {
				t.Fatalf("%+v, %v", evs, err)
			}
		})
	}
}

func TestNewWebhooksValidates(t *testing.T) {
	good := pemOf(t, testKey())
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&testKey().PublicKey)
	tests := []struct {
		name string
		cfg  zoho.WebhookConfig
		ok   bool
	}{
		{"PEM", zoho.WebhookConfig{PublicKeys: []string{good}, AppID: "a", OrgID: "o"}, true},
		{"bare base64", zoho.WebhookConfig{PublicKeys: []string{base64.StdEncoding.EncodeToString(der)}, AppID: "a", OrgID: "o"}, true},
		{"PKCS #1", zoho.WebhookConfig{PublicKeys: []string{string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&testKey().PublicKey)}))}, AppID: "a", OrgID: "o"}, true},
		{"no key", zoho.WebhookConfig{AppID: "a", OrgID: "o"}, false},
		{"three keys", zoho.WebhookConfig{PublicKeys: []string{good, good, good}, AppID: "a", OrgID: "o"}, false},
		{"not a key", zoho.WebhookConfig{PublicKeys: []string{"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}, AppID: "a", OrgID: "o"}, false},
		{"short key", zoho.WebhookConfig{PublicKeys: []string{pemOf(t, small)}, AppID: "a", OrgID: "o"}, false},
		{"no app", zoho.WebhookConfig{PublicKeys: []string{good}, OrgID: "o"}, false},
		{"no org", zoho.WebhookConfig{PublicKeys: []string{good}, AppID: "a"}, false},
	}
	for _, tt := range tests {
		if _, err := zoho.NewWebhooks(tt.cfg); (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	key := testKey()
	w, err := zoho.NewWebhooks(zoho.WebhookConfig{PublicKeys: []string{pemOf(f, key)}, AppID: "40526000000002043", OrgID: "55778119"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"entity_type":"conversation","org_id":"55778119","app_id":"40526000000002043","event":"conversation.operator.replied","entity_id":"1","event_time":"1","entity":{"message":{"sender":{"id":"5"},"msgid":"9","text":"hi","file":{"url":"https://x.example/a"}}}}`))
	f.Add([]byte(`{"org_id":55778119,"app_id":40526000000002043,"event":"conversation.attender.updated","entity":{"attender":{"id":1}}}`))
	f.Add([]byte(`{"org_id":"55778119","app_id":"40526000000002043","event":"conversation.missed","entity":{"id":"2"}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h := http.Header{}
		if _, err := w.Parse(h, body); hitl.ErrorCode(err) != hitl.CodeUnauthenticated {
			t.Fatalf("unsigned body: %v", err)
		}
		h.Set("x-siqsignature", sign(t, key, body))
		evs, err := w.Parse(h, body)
		if err != nil {
			if c := hitl.ErrorCode(err); c != hitl.CodeInvalid && c != hitl.CodeUnauthenticated {
				t.Fatalf("error of code %s: %v", c, err)
			}
			return
		}
		for _, e := range evs {
			if e.Provider != hitl.Zoho || e.ConversationID == "" || e.Key == "" || e.Type == "" {
				t.Fatalf("incomplete event %+v", e)
			}
		}
	})
}

// testKey is a key that is not the simulator's, one for the whole test
// binary: generating keys is slow.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func pemOf(t testing.TB, k *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func sign(t testing.TB, k *rsa.PrivateKey, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func mustWebhooks(t *testing.T, cfg zoho.WebhookConfig) *zoho.Webhooks {
	t.Helper()
	w, err := zoho.NewWebhooks(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestSimulatorSpacesRetries: SalesIQ's retries come RetrySpacing apart
// (a minute in SalesIQ).
func TestSimulatorSpacesRetries(t *testing.T) {
	f := newFixture(t, withSim(zohotest.Options{RetrySpacing: 40 * time.Millisecond}))
	r := f.receive(t)
	r.SetStatus(http.StatusInternalServerError)
	conv := f.open(t).ProviderConversationID
	start := time.Now()
	if status, err := f.sim.Missed(conv); err != nil || status != http.StatusInternalServerError {
		t.Fatalf("status %d, %v", status, err)
	}
	if d, n := time.Since(start), len(r.Take()); n != 4 || d < 120*time.Millisecond {
		t.Errorf("%d attempts in %s, want 4 at least 3 × 40 ms apart", n, d)
	}
}
