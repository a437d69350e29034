package zoho_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho"
	"github.com/hitl-bridge/hitl-bridge/pkg/zoho/zohotest"
)

func TestParseRated(t *testing.T) {
	f := newFixture(t)
	w := bodyParser(t, f, eventAt)
	o := f.sim.Options()
	tests := []struct {
		name   string
		entity string
		want   *hitl.Rating // nil: no event
	}{
		{"number, as the page's sample", `{"rating":4,"feedback":"Good support"}`, &hitl.Rating{Score: 4, OutOf: 5, Comment: "Good support"}},
		{"number as text", `{"rating":"2"}`, &hitl.Rating{Score: 2, OutOf: 5}},
		{"three-level smiley", `{"rating":"Happy"}`, &hitl.Rating{Score: 3, OutOf: 3}},
		{"sad", `{"rating":"sad","feedback":"slow"}`, &hitl.Rating{Score: 1, OutOf: 3, Comment: "slow"}},
		{"five-level smiley", `{"rating":"excited"}`, &hitl.Rating{Score: 5, OutOf: 5}},
		{"feedback list's object", `{"rating":{"type":"smiley","value":"neutral"}}`, &hitl.Rating{Score: 2, OutOf: 3}},
		{"feedback only, as the page's second sample", `{"id":"19000000033103","feedback":"Awesome support","status":"Ended"}`, &hitl.Rating{Comment: "Awesome support"}},
		{"rating out of range keeps the feedback", `{"rating":11,"feedback":"ok"}`, &hitl.Rating{Comment: "ok"}},
		{"rating of another shape keeps the feedback", `{"rating":[4],"feedback":"ok"}`, &hitl.Rating{Comment: "ok"}},
		{"feedback of another shape keeps the rating", `{"rating":5,"feedback":{"text":"x"}}`, &hitl.Rating{Score: 5, OutOf: 5}},
		{"neither", `{"rating":0}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := envelopeOf(o, "conversation.rated", tt.entity)
			evs, err := w.Parse(http.Header{zoho.SignatureHeader: {f.sim.Sign([]byte(body))}}, []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if len(evs) != 0 {
					t.Fatalf("events %+v", evs)
				}
				return
			}
			if len(evs) != 1 || evs[0].Type != hitl.EventRated || evs[0].Rating == nil || *evs[0].Rating != *tt.want ||
				evs[0].ConversationID != "19000000033103" || evs[0].MaybeOpening {
				t.Fatalf("events %+v (rating %+v), want %+v", evs, evs[0].Rating, tt.want)
			}
			if !strings.HasPrefix(evs[0].Key, "rated/19000000033103/") {
				t.Errorf("key %q", evs[0].Key)
			}
		})
	}
	if logs := f.logs.String(); !strings.Contains(logs, "entity.rating (array)") || !strings.Contains(logs, "entity.feedback (object)") ||
		strings.Contains(logs, "Good support") {
		t.Errorf("odd fields are logged by name only: %s", logs)
	}
}

// TestVisitorRatesThroughTheSimulator: the rating, and later the feedback,
// are two events; a retried delivery keeps its key.
func TestVisitorRatesThroughTheSimulator(t *testing.T) {
	f := newFixture(t)
	r := f.receive(t)
	w := f.webhooks(t)
	conv := f.open(t).ProviderConversationID
	if _, err := f.sim.OperatorAccepts(conv, zohotest.Operator{ID: "7", Name: "Patricia"}); err != nil {
		t.Fatal(err)
	}
	r.Take()
	if _, err := f.sim.VisitorRates(conv, 4, ""); err != nil {
		t.Fatal(err)
	}
	rating := parseOne(t, w, r)
	f.sim.SetDeliveries(2)
	if _, err := f.sim.VisitorRates(conv, 0, "Quick answer"); err != nil {
		t.Fatal(err)
	}
	got := r.Take()
	if len(got) != 2 {
		t.Fatalf("%d deliveries", len(got))
	}
	var feedback []hitl.ProviderEvent
	for _, d := range got {
		evs, err := w.Parse(d.Header, d.Body)
		if err != nil || len(evs) != 1 {
			t.Fatalf("%+v, %v", evs, err)
		}
		feedback = append(feedback, evs...)
	}
	if len(rating) != 1 || *rating[0].Rating != (hitl.Rating{Score: 4, OutOf: 5}) || rating[0].ConversationID != conv ||
		*feedback[0].Rating != (hitl.Rating{Comment: "Quick answer"}) || feedback[0].Key != feedback[1].Key || feedback[0].Key == rating[0].Key {
		t.Fatalf("rating %+v, feedback %+v", rating, feedback)
	}
	if _, err := f.sim.VisitorRates(conv, 0, ""); err == nil {
		t.Error("an empty rating was sent")
	}
}

// TestParseAgentIdentity: name always; the picture only as an absolute URL
// (the REST API's image_url paths need the org token to download).
func TestParseAgentIdentity(t *testing.T) {
	f := newFixture(t)
	w := bodyParser(t, f, eventAt)
	o := f.sim.Options()
	for entity, want := range map[string]hitl.Agent{
		`{"attender":{"id":"5","name":"Pat","image_url":"https://img.example.com/pat.png"}}`:              {ID: "5", Name: "Pat", AvatarURL: "https://img.example.com/pat.png"},
		`{"attender":{"id":"5","name":"Pat","image_url":"/api/v2/x/downloads/5?purpose=operator_image"}}`: {ID: "5", Name: "Pat"},
		`{"attender":{"id":"5","name":"Pat","image_url":7}}`:                                              {ID: "5", Name: "Pat"},
	} {
		body := envelopeOf(o, "conversation.attender.updated", entity)
		evs, err := w.Parse(http.Header{zoho.SignatureHeader: {f.sim.Sign([]byte(body))}}, []byte(body))
		if err != nil || len(evs) != 1 || evs[0].Agent == nil || *evs[0].Agent != want {
			t.Errorf("%s: %+v, %v", entity, evs, err)
		}
	}
	body := envelopeOf(o, "conversation.operator.replied",
		`{"message":{"sender":{"id":"5","name":"Pat","type":"operator","image_url":"https://img.example.com/pat.png"},"msgid":"1","text":"hi"}}`)
	evs, err := w.Parse(http.Header{zoho.SignatureHeader: {f.sim.Sign([]byte(body))}}, []byte(body))
	if err != nil || len(evs) != 1 || evs[0].Agent.AvatarURL != "https://img.example.com/pat.png" || evs[0].Agent.Name != "Pat" {
		t.Errorf("reply %+v, %v", evs, err)
	}
}

func TestAvailability(t *testing.T) {
	pat := zohotest.Operator{ID: "40526000000002001", Name: "Patricia", Email: "patricia@zylker.com"}
	var busy []zohotest.Operator
	for i := range 45 { // three pages
		busy = append(busy, zohotest.Operator{ID: strconv.Itoa(40526000000003000 + i), Name: "Op " + strconv.Itoa(i)})
	}
	f := newFixture(t, withSim(zohotest.Options{Operators: busy}))
	a, err := f.client.Availability(context.Background())
	if err != nil || a.Accepting || a.Agents != 0 {
		t.Fatalf("nobody available: %+v, %v", a, err)
	}
	if n := f.sim.Calls("operators"); n != 3 {
		t.Errorf("%d operator pages read for 45 operators, want 3", n)
	}
	f.sim.SetAvailableOperator(&pat)
	a, err = f.client.Availability(context.Background())
	if err != nil || !a.Accepting || a.Agents != 1 {
		t.Fatalf("Patricia available: %+v, %v", a, err)
	}
	f.clock.Advance(5 * time.Minute)
	f.sim.ExpireTokens() // Zoho refuses the token our clock still trusts
	if _, err := f.client.Availability(context.Background()); err != nil {
		t.Fatalf("a refused token is renewed: %v", err)
	}
	f.sim.FailNext("operators", 3, zohotest.Fault{Status: http.StatusServiceUnavailable, Code: 1500, Message: "down"})
	if _, err := f.client.Availability(context.Background()); hitl.ErrorCode(err) != hitl.CodeProvider {
		t.Fatalf("SalesIQ down: %v, want a provider error", err)
	}
}

// TestAvailabilityReadsEachOperator: only operators available, in the
// department, and not disabled count; odd entries are skipped; a server
// that ignores the index is read once.
func TestAvailabilityReadsEachOperator(t *testing.T) {
	const dept = "71230000000002017"
	op := func(id, status string, more string) string {
		return `{"id":"` + id + `","status_code":"` + status + `","departments":["` + dept + `"]` + more + `}`
	}
	entries := []string{
		op("1", "1", ""),
		op("2", "1", `,"is_chat_enabled":"true","is_enabled":true,"is_deleted":"false"`),
		op("3", "3", ""), // busy
		op("4", "1", `,"is_chat_enabled":"false"`),       // chat off
		op("5", "1", `,"is_enabled":false`),              // disabled
		op("6", "1", `,"is_deleted":"true"`),             // deleted
		`{"id":"7","status_code":1,"departments":["9"]}`, // another department
		`{"id":"8","status_code":1,"departments":[71230000000002017],"is_chat_enabled":null}`,
		`{"id":"9","status_code":"1","departments":"` + dept + `"}`, // departments of another shape
		`"not an operator"`,
		op("1", "1", ""), // a repeat
	}
	for len(entries) < 20 {
		entries = append(entries, op("busy"+strconv.Itoa(len(entries)), "3", ""))
	}
	page := `{"url":"/api/v2/northwind/operators","object":"list","data":[` + strings.Join(entries, ",") + `]}`
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if r.Method != http.MethodGet || r.URL.Path != "/api/v2/northwind/operators" {
			t.Errorf("%s %s", r.Method, r.URL)
		}
		w.Write([]byte(page)) // the same page whatever the index
	}))
	defer srv.Close()
	c, err := zoho.NewClient(zoho.Config{Region: "us", SalesIQURL: srv.URL, ScreenName: "northwind", AppID: "1",
		DepartmentID: dept, Tokens: staticToken{}, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Availability(context.Background())
	if err != nil || !a.Accepting || a.Agents != 3 {
		t.Fatalf("availability %+v, %v; want operators 1, 2 and 8", a, err)
	}
	if calls != 2 {
		t.Errorf("%d pages read, want 2 (the second brings nobody new)", calls)
	}
}

func TestOpenShowsContext(t *testing.T) {
	f := newFixture(t)
	req := openRequest()
	req.Context = map[string]string{"plan": "Gold", "order": "1042"}
	o, err := f.client.Open(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	c := f.conversation(t, o.ConversationID)
	if c.CustomerInfo["plan"] != "Gold" || c.CustomerInfo["order"] != "1042" || len(c.CustomerInfo) != 2 {
		t.Errorf("customer_info %v", c.CustomerInfo)
	}
	if !strings.Contains(c.Question, "Context:\norder: 1042\nplan: Gold") {
		t.Errorf("question %q", c.Question)
	}
	// Without context, no customer_info is sent.
	o, err = f.client.Open(context.Background(), openRequest())
	if err != nil {
		t.Fatal(err)
	}
	if c := f.conversation(t, o.ConversationID); c.CustomerInfo != nil || strings.Contains(c.Question, "Context:") {
		t.Errorf("conversation without context: %v %q", c.CustomerInfo, c.Question)
	}
	var answer map[string]any
	body, _ := f.sim.Envelope("conversation.attender.updated", o.ConversationID, 1)
	json.Unmarshal(body, &answer)
	if _, ok := answer["entity"].(map[string]any)["customer_info"]; ok {
		t.Error("customer_info on a conversation that has none")
	}
}
