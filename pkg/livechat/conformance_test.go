package livechat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/livechat"
	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// The conformance corpus, testdata/conformance/*.json: one documented
// payload per file, written from the LiveChat docs' samples and field
// tables, each wrapped as {"doc": the page it follows, "body": the
// payload, "expect": what the parser or client must make of it}; API
// answers also give "endpoint", "status" and "headers".
type corpusFile struct {
	Doc      string              `json:"doc"`
	Endpoint string              `json:"endpoint"`
	Status   int                 `json:"status"`
	Headers  map[string][]string `json:"headers"`
	Body     json.RawMessage     `json:"body"`
	Expect   json.RawMessage     `json:"expect"`
}

const (
	conformanceSecret = "conformance-secret"
	conformanceOrg    = "5f2b8c1e-3d4a-4e6b-9c7d-0a1b2c3d4e5f"
	integrationAgent  = "integration@example.com"
	conformanceBot    = "9b1c7d2e4f6a8b0c1d3e5f7a9b2c4d6e"
)

func loadCorpus(t *testing.T, prefix string) map[string]corpusFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "conformance", prefix+"*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no corpus files %s*: %v", prefix, err)
	}
	out := map[string]corpusFile{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var f corpusFile
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !strings.HasPrefix(f.Doc, "https://platform.text.com/docs/") || len(f.Body) == 0 || len(f.Expect) == 0 {
			t.Fatalf("%s: needs doc (a docs page), body and expect", p)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".json")] = f
	}
	return out
}

// eventView is what the corpus expects of a ProviderEvent.
type eventView struct {
	Type        string `json:"type"`
	Key         string `json:"key,omitempty"`
	Agent       string `json:"agent,omitempty"`
	AgentName   string `json:"agent_name,omitempty"`
	AgentAvatar string `json:"agent_avatar,omitempty"`
	Text        string `json:"text,omitempty"`
	FileURL     string `json:"file_url,omitempty"`
	Title       string `json:"title,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	// Queue is "position/wait seconds"; Rating "score/out of comment".
	Queue    string `json:"queue,omitempty"`
	SeenUpTo string `json:"seen_up_to,omitempty"`
	Rating   string `json:"rating,omitempty"`
	Reason   string `json:"reason,omitempty"`
	At       string `json:"at,omitempty"`
}

func viewOf(e hitl.ProviderEvent) eventView {
	v := eventView{Type: string(e.Type), Key: e.Key, Reason: e.Reason}
	if e.Agent != nil {
		v.Agent, v.AgentName, v.AgentAvatar = e.Agent.ID, e.Agent.Name, e.Agent.AvatarURL
	}
	if q := e.Queue; q != nil {
		v.Queue = fmt.Sprintf("%d/%d", q.Position, q.EstimatedWaitSeconds)
	}
	if r := e.Rating; r != nil {
		v.Rating = strings.TrimSpace(fmt.Sprintf("%d/%d %s", r.Score, r.OutOf, r.Comment))
	}
	if !e.SeenUpTo.IsZero() {
		v.SeenUpTo = e.SeenUpTo.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	if m := e.Message; m != nil {
		v.Text, v.FileURL, v.Title, v.ContentType = m.Text, m.URL, m.Title, m.ContentType
	}
	if !e.OccurredAt.IsZero() {
		v.At = e.OccurredAt.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	return v
}

func TestConformanceWebhooks(t *testing.T) {
	for name, f := range loadCorpus(t, "webhook_") {
		var want struct {
			Events []eventView `json:"events"`
		}
		if err := json.Unmarshal(f.Expect, &want); err != nil {
			t.Fatalf("%s: expect: %v", name, err)
		}
		for variant, body := range simcore.WithUnknownFields(t, f.Body) {
			t.Run(name+"/"+variant, func(t *testing.T) {
				// A parser per delivery: the agents one delivery describes
				// must not show in another's expectation.
				w := livechat.NewWebhooks(conformanceSecret, conformanceOrg).WithBot(conformanceBot).
					WithIntegrationAgent(func(context.Context) (string, error) { return integrationAgent, nil })
				events, err := w.Parse(body)
				if err != nil {
					t.Fatalf("%s (%s): %v", name, f.Doc, err)
				}
				got := []eventView{}
				for _, e := range events {
					if e.Provider != hitl.LiveChat || e.ConversationID != "QX7B2K9LMA" {
						t.Errorf("event %+v", e)
					}
					got = append(got, viewOf(e))
				}
				if want.Events == nil {
					want.Events = []eventView{}
				}
				if !slices.Equal(got, want.Events) {
					t.Errorf("%s:\n got %+v\nwant %+v", name, got, want.Events)
				}
			})
		}
	}
}

// fakeLiveChat answers each endpoint with a corpus body, others with {}.
type fakeLiveChat struct {
	mu      sync.Mutex
	answers map[string]corpusFile
	calls   []string
	regions []string
	srv     *httptest.Server
}

func newFakeLiveChat(t *testing.T, answers ...corpusFile) *fakeLiveChat {
	f := &fakeLiveChat{answers: map[string]corpusFile{}}
	for _, a := range answers {
		f.answers[a.Endpoint] = a
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		key := r.Method + " " + r.URL.Path
		f.mu.Lock()
		f.calls = append(f.calls, key)
		f.regions = append(f.regions, r.Header.Get("X-Region"))
		a, ok := f.answers[key]
		if ok && a.Status != 200 && r.Header.Get("X-Region") == "fra" {
			ok = false // the misdirected call, sent to the right region
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.Write([]byte(`{}`))
			return
		}
		for k, vs := range a.Headers {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(a.Status)
		w.Write(a.Body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeLiveChat) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == key {
			n++
		}
	}
	return n
}

func (f *fakeLiveChat) client(t *testing.T) *livechat.Client {
	c, err := livechat.NewClient(livechat.Config{
		APIURL: f.srv.URL + "/v3.6", AccountsURL: f.srv.URL, OrganizationID: conformanceOrg, ClientID: "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
		GroupID: 3, AgentToken: "YWNjb3VudDpkYWw6cGF0", RetryDelay: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// botClient is client with the conformance bot configured.
func (f *fakeLiveChat) botClient(t *testing.T) *livechat.Client {
	c, err := livechat.NewClient(livechat.Config{
		APIURL: f.srv.URL + "/v3.6", AccountsURL: f.srv.URL, OrganizationID: conformanceOrg, ClientID: "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
		GroupID: 3, AgentToken: "YWNjb3VudDpkYWw6cGF0", RetryDelay: time.Millisecond, BotID: conformanceBot, BotSecret: "bot-secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformanceAPIAnswers(t *testing.T) {
	corpus := loadCorpus(t, "api_")
	grant := corpus["api_customer_token_grant"]
	visitor := livechat.WithCredentials(hitl.Visitor{ID: "6d1f2a8e-5b3c-4e7d-9a0b-2c4d6e8f1a3b", CredentialsExpireAt: time.Now().Add(time.Hour)},
		"dal:conformance-customer-token", []string{"__lc_cid=6d1f2a8e-5b3c-4e7d-9a0b-2c4d6e8f1a3b", "__lc_cst=x"})
	accountsMe := corpus["api_accounts_me"]
	for name, f := range corpus {
		for variant, body := range simcore.WithUnknownFields(t, f.Body) {
			f := f
			f.Body = body
			t.Run(name+"/"+variant, func(t *testing.T) {
				var want map[string]any
				_ = json.Unmarshal(f.Expect, &want)
				ctx := context.Background()
				switch {
				case name == "api_customer_list_chats":
					lc := newFakeLiveChat(t, f, accountsMe)
					req := openRequest()
					req.Visitor = visitor
					var kept []string
					req.KeepConversation = func(_ context.Context, ids ...string) error { kept = ids; return nil }
					opened, err := lc.client(t).Open(ctx, req)
					if err != nil || opened.ConversationID != want["active_chat"] || !slices.Equal(kept, []string{opened.ConversationID}) {
						t.Fatalf("opened %+v, kept %q, err %v", opened, kept, err)
					}
					if lc.count("POST /v3.6/agent/action/transfer_chat") != 1 || lc.count("POST /v3.6/agent/action/start_chat") != 0 {
						t.Errorf("calls %q", lc.calls)
					}
				case name == "api_customer_token_grant":
					lc := newFakeLiveChat(t, f)
					v, err := lc.client(t).RefreshVisitor(ctx, visitor)
					if tok, cookies := credentials(t, v); err != nil || v.ID != want["visitor"] || tok == "" || len(cookies) != 2 {
						t.Fatalf("visitor %+v, err %v", v, err)
					}
				case name == "api_customer_token_error":
					lc := newFakeLiveChat(t, f)
					_, err := lc.client(t).RefreshVisitor(ctx, visitor)
					var api *livechat.APIError
					if !errors.As(err, &api) || api.Type != want["error_type"] || string(hitl.ErrorCode(err)) != want["code"] {
						t.Fatalf("err %v", err)
					}
				case name == "api_agent_start_chat":
					lc := newFakeLiveChat(t, f, grant)
					opened, err := lc.client(t).Open(ctx, openRequest())
					if err != nil || opened.ConversationID != want["chat_id"] {
						t.Fatalf("opened %+v, err %v", opened, err)
					}
				case strings.HasPrefix(name, "api_agent_error_"):
					lc := newFakeLiveChat(t, f)
					err := lc.client(t).Close(ctx, hitl.Session{ID: "ses_conf", ProviderConversationID: "QX7B2K9LMA"})
					if want["code"] == "" && err != nil || want["code"] != "" && string(hitl.ErrorCode(err)) != want["code"] {
						t.Fatalf("err %v (code %s), want code %q", err, hitl.ErrorCode(err), want["code"])
					}
					var api *livechat.APIError
					if err != nil && (!errors.As(err, &api) || api.Type != want["error_type"]) {
						t.Errorf("err %v, want type %s", err, want["error_type"])
					}
					if region, ok := want["region"]; ok && (len(lc.regions) != 2 || lc.regions[1] != region) {
						t.Errorf("X-Region of the calls: %q, want the second sent to %s", lc.regions, region)
					}
				case name == "api_accounts_me":
					lc := newFakeLiveChat(t, f)
					id, err := lc.client(t).IntegrationAgentID(ctx)
					if err != nil || id != want["agent_id"] {
						t.Fatalf("id %q, err %v", id, err)
					}
				case name == "api_agent_list_routing_statuses":
					lc := newFakeLiveChat(t, f, accountsMe)
					a, err := lc.client(t).Availability(ctx)
					if err != nil || a.Accepting != want["accepting"] || float64(a.Agents) != want["agents"] {
						t.Fatalf("availability %+v, err %v", a, err)
					}
				case name == "api_configuration_get_agent":
					lc := newFakeLiveChat(t, f)
					a, err := lc.client(t).Agent(ctx, "nora@example.com")
					if err != nil || a.ID != "nora@example.com" || a.Name != want["name"] || a.AvatarURL != want["avatar"] {
						t.Fatalf("agent %+v, err %v", a, err)
					}
				case name == "api_configuration_issue_bot_token":
					lc := newFakeLiveChat(t, f)
					s := hitl.Session{ID: "ses_conf", ProviderConversationID: "QX7B2K9LMA", Status: hitl.StatusAssigned, Visitor: visitor}
					if _, err := lc.botClient(t).SendAsBot(ctx, s, hitl.Message{Type: hitl.TypeText, Text: "an order number is 8 digits"}); err != nil {
						t.Fatal(err)
					}
					var calls []string
					for _, c := range want["calls"].([]any) {
						calls = append(calls, c.(string))
					}
					if !slices.Equal(lc.calls, calls) {
						t.Fatalf("calls %q, want %q", lc.calls, calls)
					}
				default:
					t.Fatalf("no test for corpus file %s", name)
				}
			})
		}
	}
}

// TestUnknownIntegrationAgentForwardsMessagesAndWarnsOnce: while the
// integration's agent cannot be looked up (the ingress secret does not
// carry it yet), agent messages still reach the bot, and the warning is
// logged once per parser, not once per message.
func TestUnknownIntegrationAgentForwardsMessagesAndWarnsOnce(t *testing.T) {
	body := loadCorpus(t, "webhook_incoming_event_message")["webhook_incoming_event_message"].Body
	logs := &simcore.Logs{}
	known := false
	w := livechat.NewWebhooks(conformanceSecret, conformanceOrg).WithLogger(logs.Logger()).
		WithIntegrationAgent(func(context.Context) (string, error) {
			if known {
				return integrationAgent, nil
			}
			return "", errors.New("not in the ingress secret yet")
		})
	deliver := func(n int) {
		t.Helper()
		for i := range n {
			events, err := w.Parse(body)
			if err != nil || len(events) != 1 || events[0].Type != hitl.EventMessage {
				t.Fatalf("delivery %d: %+v, %v; want the message forwarded", i, events, err)
			}
		}
	}
	warnings := func() int { return strings.Count(logs.String(), "integration agent unknown") }
	deliver(3)
	if n := warnings(); n != 1 {
		t.Fatalf("warned %d times over 3 messages, want once:\n%s", n, logs.String())
	}
	// Once a look-up works, a later failure is warned about again.
	known = true
	deliver(1)
	known = false
	deliver(2)
	if n := warnings(); n != 2 {
		t.Fatalf("warned %d times, want a second warning after the look-up worked in between", n)
	}
}
