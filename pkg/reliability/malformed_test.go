package reliability

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hitl-bridge/hitl-bridge/pkg/apigw"
	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// route is where malformed bodies go, with the genuine bodies they are
// made from.
type route struct {
	name    string
	path    string
	header  http.Header
	genuine []string
	// sign, when set, signs each body as the provider would, so that the
	// body reaches the parser behind the signature check.
	sign func(body []byte) http.Header
	// webhook is set on provider webhooks, which answer 200 to a
	// well-formed delivery of a type they do not handle.
	webhook bool
}

// malformedResult tallies the answers.
type malformedResult struct {
	sent, fivexx, panics, shapeless int
	unknownRefused                  int // unknown event types on webhooks not answered 200
	statuses                        map[int]int
	bad                             []string
}

func (m *malformedResult) add(label string, status int, body []byte, panicked any, unknownType, webhook bool) {
	m.sent++
	m.statuses[status]++
	fail := func(what string) {
		if len(m.bad) < 20 {
			m.bad = append(m.bad, fmt.Sprintf("%s: %s (%d %.160q)", label, what, status, body))
		}
	}
	switch {
	case panicked != nil:
		m.panics++
		fail(fmt.Sprintf("panic %v", panicked))
		return
	case status >= 500 || status < 200:
		m.fivexx++
		fail("5xx")
	case status >= 400:
		var shape struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(body, &shape) != nil || shape.Error.Code == "" || shape.Error.Message == "" {
			m.shapeless++
			fail("no JSON error object")
		}
	}
	if unknownType && webhook && status != http.StatusOK && status < 500 {
		m.unknownRefused++
		fail("an unknown event type was not answered 200")
	}
}

// TestMalformedInputIsRefusedCleanly sends a corpus of malformed bodies to
// every route, over HTTP and as API Gateway events (plain and base64):
// each is answered 4xx with the JSON error object, or 200 when it is a
// well-formed event of a type the bridge ignores; never 5xx, never a
// panic.
func TestMalformedInputIsRefusedCleanly(t *testing.T) {
	e := apptest.NewBotpress(t, apptest.Bolt(t))
	routes := malformedRoutes(t, e)
	res := &malformedResult{statuses: map[int]int{}}
	handler := e.App.Handler()
	bodies := 0
	for _, r := range routes {
		for _, m := range corpus(r, size(2, len(replacements)), true) {
			bodies++
			header := http.Header{"Content-Type": {"application/json"}}
			for k, v := range r.header {
				header[k] = v
			}
			if r.sign != nil {
				for k, v := range r.sign(m.body) {
					header[k] = v
				}
			}
			status, answer, panicked := serve(handler, r.path, m.body, header)
			res.add(r.name+" "+m.name, status, answer, panicked, m.unknownType, r.webhook)
		}
	}

	// The same through the Lambda functions' adapter, from the sample
	// events: the body as it is, base64-encoded, and badly encoded.
	samples, err := filepath.Glob(filepath.Join(apptest.RepoRoot(t), "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	functions := map[string]lambda.Handler{
		"webhooks": lambda.NewHandler(apigw.New(e.App.Webhooks)),
		"actions":  lambda.NewHandler(apigw.New(e.App.Actions)),
	}
	bigDone := map[string]bool{}
	for _, path := range samples {
		name := filepath.Base(path)
		function := strings.SplitN(name, "-", 2)[0]
		fn, ok := functions[function]
		if !ok {
			continue // scheduled events carry no request
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var sample events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &sample); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Bodies over the limit go through one sample of each function in
		// the short form; they are slow to encode as events.
		variants := corpus(route{genuine: []string{sample.Body}}, size(1, len(replacements)), long || !bigDone[function])
		bigDone[function] = true
		variants = append(variants,
			malformed{name: "invalid base64", body: []byte("!!not base64!!"), raw: true},
			malformed{name: "base64 of invalid UTF-8", body: []byte(base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe, '{'})), raw: true})
		for _, m := range variants {
			for _, encoded := range []bool{false, true} {
				ev := sample
				ev.Body, ev.IsBase64Encoded = string(m.body), encoded || m.raw
				if encoded && !m.raw {
					ev.Body = base64.StdEncoding.EncodeToString(m.body)
				}
				payload, _ := json.Marshal(ev)
				status, answer, panicked := invoke(fn, payload)
				res.add("event "+name+" "+m.name, status, answer, panicked, false, false)
			}
		}
		// API Gateway sends well-formed events only; these lack a request.
		for _, broken := range [][]byte{[]byte(`{"rawPath":"/webhooks/livechat"}`), []byte(`{}`), []byte(`null`)} {
			status, answer, panicked := invoke(fn, broken)
			res.add("broken event "+name, status, answer, panicked, false, false)
		}
	}
	for _, b := range res.bad {
		t.Error(b)
	}
	record(t, "malformed", "", res.fivexx == 0 && res.panics == 0 && res.shapeless == 0 && res.unknownRefused == 0,
		"%d · %d · %d of %d requests (%d bodies on %d routes, and %d sample events as API Gateway events; answers %v)",
		res.fivexx, res.panics, res.shapeless, res.sent, bodies, len(routes), len(samples), res.statuses)
}

// serve calls the bridge's HTTP handler in process, catching a panic.
func serve(h http.Handler, path string, body []byte, header http.Header) (status int, answer []byte, panicked any) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header = header
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes(), nil
}

// invoke calls a function handler as the Lambda runtime does, catching a
// panic. A handler error counts as a 5xx: API Gateway answers 500.
func invoke(fn lambda.Handler, payload []byte) (status int, answer []byte, panicked any) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	out, err := fn.Invoke(context.Background(), payload)
	if err != nil {
		return 500, []byte(err.Error()), nil
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return 500, out, nil
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		body, _ = base64.StdEncoding.DecodeString(resp.Body)
	}
	return resp.StatusCode, body, nil
}

// malformedRoutes lists every route that takes a body, with genuine
// bodies that act on real sessions.
func malformedRoutes(t *testing.T, e *apptest.BotpressEnv) []route {
	_, u := e.Do(t, "POST", "/v1/users", map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"})
	userID := u["userId"].(string)
	sessionID, chatID := e.HandoffTo(t, "livechat")
	stopID, _ := e.HandoffTo(t, "livechat")
	_, convID := e.HandoffTo(t, "zoho")
	bpSession, bpUser := botpressSession(t, e)

	bot := http.Header{"Authorization": {"Bearer " + apptest.BotKey}, "Content-Type": {"application/json"}}
	admin := http.Header{"Authorization": {"Bearer " + apptest.AdminKey}}
	messages := []string{
		`{"type":"text","payload":{"text":"hello"},"userId":"` + userID + `"}`,
		`{"type":"image","payload":{"imageUrl":"https://example.com/a.png"}}`,
		`{"type":"file","payload":{"fileUrl":"https://example.com/a.pdf","title":"A"}}`,
		`{"type":"location","payload":{"latitude":45.5,"longitude":-73.56,"address":"Montréal","title":"office"}}`,
		`{"type":"card","payload":{"title":"T","subtitle":"S","imageUrl":"https://example.com/a.png","actions":[{"action":"url","label":"L","value":"https://x.test"}]}}`,
		`{"type":"carousel","payload":{"items":[{"title":"T","actions":[{"action":"postback","label":"L","value":"v"}]}]}}`,
		`{"type":"choice","payload":{"text":"Pick","options":[{"label":"A","value":"a"}]}}`,
		`{"type":"bloc","payload":{"items":[{"type":"text","payload":{"text":"x"}},{"type":"markdown","payload":{"markdown":"**x**"}}]}}`,
	}
	lcGenuine := tapped(t, e.Env, func() { liveChatActs(t, e.LiveChat, chatID) })
	zGenuine := tapped(t, e.Env, func() { zohoActs(t, e.Zoho, convID) })
	// One delivery of each kind; the long form takes them all.
	bodiesOf := func(ds []simcore.Delivery) []string {
		var out []string
		seen := map[string]bool{}
		for _, d := range ds {
			var kind struct{ Action, Event string }
			_ = json.Unmarshal(d.Body, &kind)
			if long || !seen[kind.Action+kind.Event] {
				seen[kind.Action+kind.Event] = true
				out = append(out, string(d.Body))
			}
		}
		return out
	}
	return []route{
		{name: "createUser", path: "/v1/users", header: bot, genuine: []string{
			`{"name":"Ada Lovelace","email":"ada@example.com","phone":"+15145550100","pictureUrl":"https://example.com/a.png","externalId":"crm-42"}`}},
		{name: "startHitl", path: "/v1/sessions", header: bot, genuine: []string{
			`{"userId":"` + userID + `","provider":"livechat","title":"T","description":"D","botConversationId":"bc","messageHistory":[{"source":{"type":"user"},"type":"text","payload":{"text":"hi"}},{"source":{"type":"bot"},"type":"choice","payload":{"text":"Pick","options":[{"label":"A","value":"a"}]}}]}`}},
		{name: "sendMessage", path: "/v1/sessions/" + sessionID + "/messages", header: bot, genuine: messages},
		{name: "stopHitl", path: "/v1/sessions/" + stopID + "/stop", header: bot, genuine: []string{`{"reason":"resolved"}`}},
		{name: "replay", path: "/v1/admin/dead-letters/" + sessionID + "/replay", header: admin, genuine: []string{`{}`}},
		{name: "botpress ping", path: "/botpress/" + apptest.BotpressToken + "/ping", genuine: []string{`{}`}},
		{name: "botpress createRemoteUser", path: "/botpress/" + apptest.BotpressToken + "/createRemoteUser", genuine: []string{
			`{"payload":{"name":"Ada","email":"ada@example.com","pictureUrl":"https://example.com/a.png","role":"end-user"}}`}},
		{name: "botpress createRemoteConversation", path: "/botpress/" + apptest.BotpressToken + "/zoho/createRemoteConversation", genuine: []string{
			`{"payload":{"title":"T","description":"D","messages":[{"type":"text","text":"hi"}]}}`}},
		{name: "botpress botSendsMessage", path: "/botpress/" + apptest.BotpressToken + "/botSendsMessage", genuine: []string{
			`{"remoteConversationId":"` + bpSession + `","remoteUserId":"` + bpUser + `","payload":{"type":"text","text":"hi","userId":"bp-1"}}`,
			`{"remoteConversationId":"` + bpSession + `","remoteUserId":"BOT","payload":{"imageUrl":"https://example.com/a.png"}}`}},
		{name: "botpress closeRemoteTicket", path: "/botpress/" + apptest.BotpressToken + "/closeRemoteTicket", genuine: []string{
			`{"payload":{"botpressConversationId":"conv_123"}}`}},
		{name: "livechat webhook", path: "/webhooks/livechat", genuine: bodiesOf(lcGenuine), webhook: true},
		{name: "zoho webhook", path: "/webhooks/zoho", genuine: bodiesOf(zGenuine), webhook: true,
			sign: func(body []byte) http.Header { return http.Header{"X-Siqsignature": {e.Zoho.Sign(body)}} }},
	}
}

// malformed is one body of the corpus.
type malformed struct {
	name        string
	body        []byte
	raw         bool // already base64 (API Gateway variants only)
	unknownType bool // a well-formed body whose type or action is unknown
}

// corpus returns the malformed bodies made from a route's genuine ones:
// generic garbage, each genuine body truncated, with every value replaced
// by a null, another type, a huge or invalid string (perPath of the
// replacements at each value, turning), and with its type fields set to
// types nobody knows. big adds bodies of up to 4 MiB.
func corpus(r route, perPath int, big bool) []malformed {
	out := []malformed{
		{name: "empty", body: nil},
		{name: "spaces", body: []byte("  \n\t ")},
		{name: "null", body: []byte("null")},
		{name: "true", body: []byte("true")},
		{name: "number", body: []byte("-1.5e400")},
		{name: "string", body: []byte(`"text"`)},
		{name: "array", body: []byte(`[{"type":"text"}]`)},
		{name: "empty object", body: []byte(`{}`)},
		{name: "open brace", body: []byte(`{`)},
		{name: "trailing comma", body: []byte(`{"a":1,}`)},
		{name: "two values", body: []byte(`{}{}`)},
		{name: "byte order mark", body: []byte("\xef\xbb\xbf{}")},
		{name: "NUL", body: []byte("\x00")},
		{name: "invalid UTF-8", body: []byte("\xff\xfe\xfd")},
		{name: "invalid UTF-8 in a string", body: []byte("{\"text\":\"\xc3\x28\"}")},
		{name: "deep arrays", body: []byte(strings.Repeat("[", 100000))},
		{name: "deep objects", body: []byte(strings.Repeat(`{"a":`, 50000))},
	}
	if big {
		out = append(out,
			malformed{name: "huge string", body: []byte(`{"name":"` + strings.Repeat("a", 900<<10) + `"}`)},
			malformed{name: "1 MiB", body: bytes.Repeat([]byte(" "), 1<<20)},
			malformed{name: "over 1 MiB", body: []byte(`{"name":"` + strings.Repeat("a", 1<<20) + `"}`)},
			malformed{name: "4 MiB", body: bytes.Repeat([]byte("["), 4<<20)})
	}
	for gi, g := range r.genuine {
		for _, cut := range []int{1, 2, 5, 10, 25, 50, 75, 90, 99} {
			n := len(g) * cut / 100
			out = append(out, malformed{name: fmt.Sprintf("genuine %d cut at %d%%", gi, cut), body: []byte(g[:n])})
		}
		out = append(out, malformed{name: fmt.Sprintf("genuine %d and trailing data", gi), body: []byte(g + `{"x":1}`)})
		var doc any
		dec := json.NewDecoder(strings.NewReader(g))
		dec.UseNumber()
		if dec.Decode(&doc) != nil {
			continue
		}
		for pi, p := range paths(doc, nil) {
			// A few of the replacements at each value, turning, so each kind
			// still meets many fields.
			for vi, v := range replacements {
				if (vi+len(replacements)-pi%len(replacements))%len(replacements) >= perPath {
					continue
				}
				out = append(out, malformed{name: fmt.Sprintf("genuine %d %s=%s", gi, p, v.name), body: replace(doc, p, v.value)})
			}
			k := p[len(p)-1]
			if _, isString := lookupPath(doc, p).(string); isString && (k == "type" || k == "action" || k == "event") {
				out = append(out, malformed{name: fmt.Sprintf("genuine %d %s unknown", gi, p), body: replace(doc, p, "hologram.unknown"), unknownType: true})
			}
		}
	}
	return out
}

// placeholder stands for invalid UTF-8, which encoding/json cannot write.
const placeholder = "\u0001invalid-utf8\u0001"

var replacements = []struct {
	name  string
	value any
}{
	{"null", nil},
	{"zero", 0},
	{"negative", -1.5},
	{"huge number", json.Number("1e308")},
	{"true", true},
	{"empty", ""},
	{"string", "x"},
	{"array", []any{}},
	{"object", map[string]any{}},
	{"long string", strings.Repeat("é", 50<<10)},
	{"invalid UTF-8", placeholder},
	{"NUL", "\x00"},
	{"unknown object", map[string]any{"unknown": []any{1, "2", nil}}},
}

// paths lists the path of every value in doc, root excluded.
func paths(doc any, prefix []string) [][]string {
	var out [][]string
	switch v := doc.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := append(slices.Clone(prefix), k)
			out = append(out, p)
			out = append(out, paths(v[k], p)...)
		}
	case []any:
		for i, x := range v {
			p := append(slices.Clone(prefix), fmt.Sprint(i))
			out = append(out, p)
			out = append(out, paths(x, p)...)
		}
	}
	return out
}

// replace returns doc encoded with the value at path set to value.
func replace(doc any, path []string, value any) []byte {
	copied := deepCopy(doc)
	node := copied
	for i, k := range path {
		last := i == len(path)-1
		switch v := node.(type) {
		case map[string]any:
			if last {
				v[k] = value
			} else {
				node = v[k]
			}
		case []any:
			var idx int
			fmt.Sscan(k, &idx)
			if last {
				v[idx] = value
			} else {
				node = v[idx]
			}
		}
	}
	b, _ := json.Marshal(copied)
	return bytes.ReplaceAll(b, []byte(`\u0001invalid-utf8\u0001`), []byte("\xff\xfe"))
}

// lookupPath returns the value at path in doc.
func lookupPath(doc any, path []string) any {
	for _, k := range path {
		switch v := doc.(type) {
		case map[string]any:
			doc = v[k]
		case []any:
			var idx int
			fmt.Sscan(k, &idx)
			doc = v[idx]
		}
	}
	return doc
}

func deepCopy(doc any) any {
	switch v := doc.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = deepCopy(x)
		}
		return s
	}
	return doc
}
