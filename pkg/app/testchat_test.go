package app_test

// testchat is a third live-agent platform that exists only in these tests:
// a simulator on httptest and its integration, composed into the bridge
// the way pkg/app composes LiveChat and Zoho SalesIQ (one Integration
// value; apptest.WithPlatform adds it to the list). Nothing outside this
// file knows it: it shows that the integration seam is all a platform
// needs.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
)

const (
	testchatName      = "testchat"
	testchatAPIKey    = "testchat-api-key-0123456789"
	testchatHookKey   = "testchat-webhook-key-0123456789"
	testchatSignature = "X-Testchat-Signature"
)

// ---------------------------------------------------------------- simulator

// testchatSim is the platform: conversations opened through its API with
// the API key, an agent side that acts on them, and signed webhooks to the
// one URL registered with PUT /v1/webhook.
type testchatSim struct {
	srv *httptest.Server

	mu         sync.Mutex
	convs      map[string]*testchatConv
	webhookURL string
	renewals   int
	events     int
}

// testchatConv is a conversation as the agent sees it.
type testchatConv struct {
	Visitor string   // the end user's name
	Subject string   // title and description
	Lines   []string // transcript, then every message, in order
	Closed  bool
}

func newTestchatSim() *testchatSim {
	s := &testchatSim{convs: map[string]*testchatConv{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/conversations", s.open)
	mux.HandleFunc("POST /v1/conversations/{id}/messages", s.message)
	mux.HandleFunc("POST /v1/conversations/{id}/close", s.close)
	mux.HandleFunc("PUT /v1/webhook", s.putWebhook)
	mux.HandleFunc("GET /v1/webhook", s.getWebhook)
	mux.HandleFunc("POST /v1/keys/renew", s.renew)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testchatAPIKey {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	return s
}

func (s *testchatSim) open(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Visitor string   `json:"visitor"`
		Subject string   `json:"subject"`
		Lines   []string `json:"lines"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil || in.Visitor == "" {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	id := fmt.Sprintf("tc-%d", len(s.convs)+1)
	s.convs[id] = &testchatConv{Visitor: in.Visitor, Subject: in.Subject, Lines: in.Lines}
	s.mu.Unlock()
	writeTestchat(w, http.StatusCreated, map[string]string{"id": id})
}

func (s *testchatSim) message(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Text string `json:"text"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[r.PathValue("id")]
	switch {
	case !ok:
		http.Error(w, `{"error":"no such conversation"}`, http.StatusNotFound)
	case c.Closed:
		http.Error(w, `{"error":"closed"}`, http.StatusConflict)
	default:
		c.Lines = append(c.Lines, "visitor: "+in.Text)
		writeTestchat(w, http.StatusCreated, map[string]string{"id": fmt.Sprintf("m-%d", len(c.Lines))})
	}
}

func (s *testchatSim) close(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[r.PathValue("id")]
	if !ok {
		http.Error(w, `{"error":"no such conversation"}`, http.StatusNotFound)
		return
	}
	c.Closed = true
	w.WriteHeader(http.StatusNoContent)
}

func (s *testchatSim) putWebhook(w http.ResponseWriter, r *http.Request) {
	var in struct {
		URL string `json:"url"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil || in.URL == "" {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.webhookURL = in.URL
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *testchatSim) getWebhook(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	writeTestchat(w, http.StatusOK, map[string]string{"url": s.webhookURL})
}

func (s *testchatSim) renew(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.renewals++
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func writeTestchat(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// conversation returns a copy of conversation id.
func (s *testchatSim) conversation(id string) (testchatConv, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[id]
	if !ok {
		return testchatConv{}, false
	}
	cp := *c
	cp.Lines = append([]string(nil), c.Lines...)
	return cp, true
}

// deliver sends one signed webhook about conversation id to the
// registered URL, twice (the platform retries), and returns the first
// answer's status.
func (s *testchatSim) deliver(id, typ string, fields map[string]any) (int, error) {
	s.mu.Lock()
	s.events++
	body := map[string]any{"id": fmt.Sprintf("ev-%d", s.events), "type": typ, "conversation": id}
	for k, v := range fields {
		body[k] = v
	}
	url := s.webhookURL
	s.mu.Unlock()
	if url == "" {
		return 0, errors.New("testchat: no webhook registered")
	}
	raw, _ := json.Marshal(body)
	mac := hmac.New(sha256.New, []byte(testchatHookKey))
	mac.Write(raw)
	status := 0
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(raw))
		req.Header.Set(testchatSignature, hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		if status == 0 {
			status = resp.StatusCode
		}
	}
	return status, nil
}

func (s *testchatSim) agentJoins(id, agentID, name string) (int, error) {
	return s.deliver(id, "agent.joined", map[string]any{"agent": map[string]string{"id": agentID, "name": name}})
}

func (s *testchatSim) agentSays(id, agentID, text string) (int, error) {
	s.mu.Lock()
	if c, ok := s.convs[id]; ok {
		c.Lines = append(c.Lines, "agent: "+text)
	}
	s.mu.Unlock()
	return s.deliver(id, "agent.message", map[string]any{"agent": map[string]string{"id": agentID}, "text": text})
}

func (s *testchatSim) agentCloses(id string) (int, error) {
	s.mu.Lock()
	if c, ok := s.convs[id]; ok {
		c.Closed = true
	}
	s.mu.Unlock()
	return s.deliver(id, "conversation.closed", nil)
}

// ---------------------------------------------------------------- integration

// testchatIntegration is testchat as the bridge composes it: turned on by
// TESTCHAT_API_URL, with a "testchat" block of the config secret.
func testchatIntegration() integration.Integration {
	return integration.Integration{Name: testchatName, EnabledBy: "TESTCHAT_API_URL", Configure: func(env integration.Env) (integration.Platform, error) {
		s := &testchatSettings{apiURL: env.Getenv("TESTCHAT_API_URL")}
		return s, integration.CheckURL("TESTCHAT_API_URL", s.apiURL, env.AllowPrivateURLs)
	}}
}

type testchatSettings struct{ apiURL string }

// testchatSecret is the "testchat" block.
type testchatSecret struct {
	APIKey        string `json:"apiKey"`
	WebhookSecret string `json:"webhookSecret"`
}

func (s *testchatSettings) CheckSecret(block json.RawMessage, ingress bool) error {
	sec, err := integration.DecodeBlock[testchatSecret](testchatName, block)
	switch {
	case err != nil:
		return err
	case sec.WebhookSecret == "":
		return errors.New("config secret: testchat.webhookSecret is required")
	case sec.APIKey == "" && !ingress:
		return errors.New("config secret: testchat.apiKey is required")
	}
	return nil
}

func (s *testchatSettings) Wire(block json.RawMessage, rt integration.Runtime) (integration.Parts, error) {
	sec, err := integration.DecodeBlock[testchatSecret](testchatName, block)
	if err != nil {
		return integration.Parts{}, err
	}
	parts := integration.Parts{Webhooks: testchatWebhooks{secret: []byte(sec.WebhookSecret)}}
	parts.Ingress = func(_ context.Context, block json.RawMessage) (json.RawMessage, error) {
		full, err := integration.DecodeBlock[testchatSecret](testchatName, block)
		if err != nil {
			return nil, err
		}
		return json.Marshal(testchatSecret{WebhookSecret: full.WebhookSecret})
	}
	if rt.Ingress {
		return parts, nil
	}
	c := &testchatClient{url: s.apiURL, key: sec.APIKey, http: rt.Client}
	parts.Provider = c
	parts.Refresh = func(ctx context.Context) error { return c.call(ctx, http.MethodPost, "/v1/keys/renew", nil, nil) }
	parts.Setup = func(ctx context.Context, webhookURL string) (any, []health.Check, error) {
		if err := c.call(ctx, http.MethodPut, "/v1/webhook", map[string]string{"url": webhookURL}, nil); err != nil {
			return nil, nil, err
		}
		return map[string]string{"webhook": webhookURL}, nil, nil
	}
	parts.Inspect = func(ctx context.Context, webhookURL string) []health.Check {
		var hook struct {
			URL string `json:"url"`
		}
		if err := c.call(ctx, http.MethodGet, "/v1/webhook", nil, &hook); err != nil {
			return []health.Check{health.Failed("api", "testchat did not answer", "check apiKey")}
		}
		if hook.URL != webhookURL {
			return []health.Check{health.Failed("webhook", "the webhook goes elsewhere", "run the setup")}
		}
		return []health.Check{health.Passed("webhook", "registered")}
	}
	return parts, nil
}

// testchatClient is the provider: open, send, close over the API.
type testchatClient struct {
	url, key string
	http     *http.Client
}

func (c *testchatClient) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, _ := json.Marshal(in)
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return hitl.Wrap(hitl.CodeProvider, err, "testchat did not answer")
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusConflict:
		return hitl.ErrConversationEnded
	case resp.StatusCode/100 != 2:
		return hitl.Errorf(hitl.CodeProvider, "testchat answered %d", resp.StatusCode)
	case out != nil:
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func (c *testchatClient) Open(ctx context.Context, req hitl.OpenRequest) (hitl.Opened, error) {
	var lines []string
	for _, e := range req.Transcript {
		lines = append(lines, e.From+": "+e.Message.Readable())
	}
	var out struct {
		ID string `json:"id"`
	}
	in := map[string]any{"visitor": req.User.Name, "subject": req.Title + " — " + req.Description, "lines": lines}
	if err := c.call(ctx, http.MethodPost, "/v1/conversations", in, &out); err != nil {
		return hitl.Opened{}, err
	}
	return hitl.Opened{ConversationID: out.ID, Visitor: hitl.Visitor{ID: req.User.ID}}, nil
}

func (c *testchatClient) Send(ctx context.Context, s hitl.Session, m hitl.Message) (hitl.Sent, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := c.call(ctx, http.MethodPost, "/v1/conversations/"+s.ProviderConversationID+"/messages", map[string]string{"text": m.Readable()}, &out)
	return hitl.Sent{MessageID: out.ID}, err
}

func (c *testchatClient) Close(ctx context.Context, s hitl.Session) error {
	return c.call(ctx, http.MethodPost, "/v1/conversations/"+s.ProviderConversationID+"/close", nil, nil)
}

// testchatWebhooks verifies the signature and maps the three events.
type testchatWebhooks struct{ secret []byte }

func (w testchatWebhooks) Parse(h http.Header, body []byte) ([]hitl.ProviderEvent, error) {
	mac := hmac.New(sha256.New, w.secret)
	mac.Write(body)
	if got, err := hex.DecodeString(h.Get(testchatSignature)); err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return nil, hitl.Errorf(hitl.CodeUnauthenticated, "bad testchat signature")
	}
	var d struct {
		ID           string      `json:"id"`
		Type         string      `json:"type"`
		Conversation string      `json:"conversation"`
		Agent        *hitl.Agent `json:"agent"`
		Text         string      `json:"text"`
	}
	if err := json.Unmarshal(body, &d); err != nil || d.ID == "" || d.Conversation == "" {
		return nil, hitl.Errorf(hitl.CodeInvalid, "malformed testchat delivery")
	}
	pe := hitl.ProviderEvent{Provider: testchatName, ConversationID: d.Conversation, Key: d.ID, OccurredAt: time.Now(), Agent: d.Agent}
	switch d.Type {
	case "agent.joined":
		pe.Type = hitl.EventAssigned
	case "agent.message":
		pe.Type, pe.Message = hitl.EventMessage, &hitl.Message{Type: hitl.TypeText, Text: d.Text}
	case "conversation.closed":
		pe.Type, pe.Reason = hitl.EventStopped, hitl.ReasonAgentClosed
	default:
		return nil, nil
	}
	return []hitl.ProviderEvent{pe}, nil
}

// testchatAgents is testchat's agent side for the shared end-to-end test.
type testchatAgents struct{ sim *testchatSim }

func (a testchatAgents) sees(id string) string {
	c, _ := a.sim.conversation(id)
	return c.Visitor + "\n" + c.Subject + "\n" + strings.Join(c.Lines, "\n")
}

func (a testchatAgents) takes(id, agentID, name string) (int, error) {
	return a.sim.agentJoins(id, agentID, name)
}

func (a testchatAgents) says(id, agentID, text string) (int, error) {
	return a.sim.agentSays(id, agentID, text)
}

func (a testchatAgents) closes(id string) (int, error) { return a.sim.agentCloses(id) }

func (a testchatAgents) closed(id string) bool {
	c, _ := a.sim.conversation(id)
	return c.Closed
}
