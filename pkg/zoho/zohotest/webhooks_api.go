package zohotest

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The REST API v2 webhook, department and app calls the bridge's setup and
// self-check make, as SalesIQ documents them:
//   - list: https://www.zoho.com/salesiq/help/developer-section/get-webhooks-list-v2.html
//     (type is mandatory; app_ids filters)
//   - create: https://www.zoho.com/salesiq/help/developer-section/create-webhook-v2.html
//     (a HEAD request to the URL must answer 200, or the webhook is not created)
//   - details: https://www.zoho.com/salesiq/help/developer-section/get-details-webhook-v2.html
//     (public_keys listed without their key)
//   - generate a key: https://www.zoho.com/salesiq/help/developer-section/generate-public-key-webhook-v2.html
//     (two keys at most; the oldest one is in use; the answer carries the new key)
//   - delete a key: https://www.zoho.com/salesiq/help/developer-section/delete-public-key-webhook-v2.html
//     (the last key cannot be deleted)
//   - department: https://www.zoho.com/salesiq/help/developer-section/rest-api-department-details.html
//   - apps: the Apps section of https://www.zoho.com/salesiq/help/developer-section/rest-api-v2.html
//
// Each call needs its documented OAuth scope (…webhooks.READ, CREATE,
// DELETE, departments.READ, Apps.READ; a module's ALL covers them); tokens
// carry the scopes set with SetScopes, all of them by default. SalesIQ
// documents no error code for a missing scope, an unknown webhook, key or
// department, a failed HEAD check or the key limit: the simulator answers
// its own codes for them, 1304 (not found), 1305 (scope), 1306 (HEAD check)
// and 1307 (key limit or last key).

// Simulator's own error codes (see above).
const (
	codeNotFound  = 1304
	codeScope     = 1305
	codeHeadCheck = 1306
	codeKeyLimit  = 1307
)

// Webhook is a SalesIQ webhook as the simulator keeps it.
type Webhook struct {
	ID, URL, Type, Status string
	Secured               bool
	AppIDs, Events        []string
	Version               int
	Keys                  []WebhookKey // oldest first; the first signs
}

// WebhookKey is a webhook's key pair.
type WebhookKey struct {
	ID      string
	Private *rsa.PrivateKey
	Created time.Time
}

// hookState is the webhook API's state.
type hookState struct {
	webhooks []*Webhook
	scopes   []string // nil: every scope
}

// SetScopes limits what access tokens may do to scopes (e.g.
// "SalesIQ.webhooks.READ"); with none, tokens may do everything.
func (s *Server) SetScopes(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.scopes = scopes
}

// Webhooks returns copies of the webhooks, oldest first.
func (s *Server) Webhooks() []Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Webhook, len(s.hooks.webhooks))
	for i, w := range s.hooks.webhooks {
		out[i] = *w
		out[i].Keys = slices.Clone(w.Keys)
	}
	return out
}

// DisableWebhook sets a webhook's status to disabled, as SalesIQ does after
// repeated failures or an admin in the UI.
func (s *Server) DisableWebhook(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.webhook(id); w != nil {
		w.Status = "disabled"
	}
}

// signingKey is the key deliveries are signed with: the oldest key of the
// first webhook that has one, else the simulator's own key (the one
// PublicKeyPEM shows, for keys pasted into the config). Callers hold s.mu.
func (s *Server) signingKey() *rsa.PrivateKey {
	for _, w := range s.hooks.webhooks {
		if len(w.Keys) > 0 {
			return w.Keys[0].Private
		}
	}
	return s.key
}

func (s *Server) webhook(id string) *Webhook {
	i := slices.IndexFunc(s.hooks.webhooks, func(w *Webhook) bool { return w.ID == id })
	if i < 0 {
		return nil
	}
	return s.hooks.webhooks[i]
}

// hasScope reports whether tokens may use scope; a module's ALL covers its
// operations, and Zoho compares scopes without regard to case.
func (s *Server) hasScope(scope string) bool {
	if s.hooks.scopes == nil {
		return true
	}
	module := scope[:strings.LastIndex(scope, ".")]
	return slices.ContainsFunc(s.hooks.scopes, func(have string) bool {
		return strings.EqualFold(have, scope) || strings.EqualFold(have, module+".ALL")
	})
}

// webhookRoutes mounts the calls on mux.
func (s *Server) webhookRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v2/{screen}/webhooks", s.v2("list_webhooks", "SalesIQ.webhooks.READ", s.listWebhooks))
	mux.HandleFunc("POST /api/v2/{screen}/webhooks", s.v2("create_webhook", "SalesIQ.webhooks.CREATE", s.createWebhook))
	mux.HandleFunc("GET /api/v2/{screen}/webhooks/{id}", s.v2("get_webhook", "SalesIQ.webhooks.READ", s.getWebhook))
	mux.HandleFunc("DELETE /api/v2/{screen}/webhooks/{id}", s.v2("delete_webhook", "SalesIQ.webhooks.DELETE", s.deleteWebhook))
	mux.HandleFunc("POST /api/v2/{screen}/webhooks/{id}/keys", s.v2("create_webhook_key", "SalesIQ.webhooks.CREATE", s.createKey))
	mux.HandleFunc("DELETE /api/v2/{screen}/webhooks/{id}/keys/{key}", s.v2("delete_webhook_key", "SalesIQ.webhooks.DELETE", s.deleteKey))
	mux.HandleFunc("GET /api/v2/{screen}/departments/{id}", s.v2("get_department", "SalesIQ.departments.READ", s.getDepartment))
	mux.HandleFunc("GET /api/v2/{screen}/apps", s.v2("list_apps", "SalesIQ.Apps.READ", s.listApps))
}

// v2 wraps a call: injected faults, the token and screen name, the scope,
// then handle under the lock. A create first checks the URL with HEAD,
// outside the lock, as the receiver may call the API meanwhile.
func (s *Server) v2(op, scope string, handle func(r *http.Request, body []byte) (object string, data any, e *apiError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		headOK := true
		if op == "create_webhook" {
			headOK = headCheck(body)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if f, ok := s.record(op); ok {
			writeAPIError(w, max(f.Status, http.StatusOK), f.Code, f.Message)
			return
		}
		if e := s.authorize(r, r.Method); e != nil {
			writeAPIError(w, http.StatusOK, e.code, e.message)
			return
		}
		if !s.hasScope(scope) {
			writeAPIError(w, http.StatusOK, codeScope, "OAuth scope mismatch: "+scope+" is required")
			return
		}
		if !headOK {
			writeAPIError(w, http.StatusOK, codeHeadCheck, "The webhook URL did not answer the HEAD request with HTTP 200")
			return
		}
		object, data, e := handle(r, body)
		if e != nil {
			writeAPIError(w, http.StatusOK, e.code, e.message)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"url": r.URL.Path, "object": object, "data": data})
	}
}

var headClient = &http.Client{Timeout: 5 * time.Second}

// headCheck sends the HEAD request SalesIQ makes to a new webhook's URL.
func headCheck(body []byte) bool {
	var in struct {
		URL string `json:"url"`
	}
	if json.Unmarshal(body, &in) != nil || in.URL == "" {
		return true // the create itself refuses it
	}
	resp, err := headClient.Head(in.URL)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (s *Server) webhookJSON(w *Webhook, newKey string) map[string]any {
	keys := []map[string]any{}
	for _, k := range w.Keys {
		key := ""
		if k.ID == newKey {
			der, _ := x509.MarshalPKIXPublicKey(&k.Private.PublicKey)
			key = base64.StdEncoding.EncodeToString(der)
		}
		keys = append(keys, map[string]any{"key": key, "id": k.ID, "created_time": millis(k.Created), "creator": map[string]any{"id": "1"}})
	}
	return map[string]any{
		"id": w.ID, "url": w.URL, "type": w.Type, "status": w.Status, "secured": w.Secured,
		"app_ids": w.AppIDs, "events": w.Events, "version": w.Version, "public_keys": keys,
		"failures_count": "0", "expiry_time_for_executions_data": "5184000000",
	}
}

func (s *Server) listWebhooks(r *http.Request, _ []byte) (string, any, *apiError) {
	typ := r.URL.Query().Get("type")
	if typ != "data" && typ != "administration" {
		return "", nil, &apiError{1300, "type is mandatory: data or administration"}
	}
	out := []map[string]any{}
	for _, w := range s.hooks.webhooks {
		if w.Type == typ {
			out = append(out, s.webhookJSON(w, ""))
		}
	}
	return "list", out, nil
}

func (s *Server) createWebhook(_ *http.Request, body []byte) (string, any, *apiError) {
	var in struct {
		Type    string   `json:"type"`
		URL     string   `json:"url"`
		Events  []string `json:"events"`
		AppIDs  []string `json:"app_ids"`
		Secured bool     `json:"secured"`
		Version int      `json:"version"`
	}
	if json.Unmarshal(body, &in) != nil || (in.Type != "data" && in.Type != "administration") || in.URL == "" || len(in.Events) == 0 {
		return "", nil, &apiError{1300, "Invalid input: type, url and events are required"}
	}
	for _, id := range in.AppIDs {
		if id != s.opts.AppID {
			return "", nil, &apiError{codeNotFound, "No such app " + id}
		}
	}
	s.seq++
	w := &Webhook{ID: "40526000001" + strconv.Itoa(100000+s.seq), URL: in.URL, Type: in.Type, Status: "enabled",
		Secured: in.Secured, AppIDs: in.AppIDs, Events: in.Events, Version: max(in.Version, 1)}
	s.hooks.webhooks = append(s.hooks.webhooks, w)
	return "webhook", s.webhookJSON(w, ""), nil
}

func (s *Server) getWebhook(r *http.Request, _ []byte) (string, any, *apiError) {
	w := s.webhook(r.PathValue("id"))
	if w == nil {
		return "", nil, &apiError{codeNotFound, "No such webhook"}
	}
	return "webhook", s.webhookJSON(w, ""), nil
}

func (s *Server) deleteWebhook(r *http.Request, _ []byte) (string, any, *apiError) {
	if s.webhook(r.PathValue("id")) == nil {
		return "", nil, &apiError{codeNotFound, "No such webhook"}
	}
	s.hooks.webhooks = slices.DeleteFunc(s.hooks.webhooks, func(w *Webhook) bool { return w.ID == r.PathValue("id") })
	return "webhook", map[string]any{}, nil
}

func (s *Server) createKey(r *http.Request, _ []byte) (string, any, *apiError) {
	w := s.webhook(r.PathValue("id"))
	switch {
	case w == nil:
		return "", nil, &apiError{codeNotFound, "No such webhook"}
	case len(w.Keys) >= 2:
		return "", nil, &apiError{codeKeyLimit, "A webhook has at most two public keys"}
	}
	now := s.Now()
	id := strconv.FormatInt(now.UnixMilli(), 10)
	for slices.ContainsFunc(w.Keys, func(k WebhookKey) bool { return k.ID == id }) {
		now = now.Add(time.Millisecond)
		id = strconv.FormatInt(now.UnixMilli(), 10)
	}
	w.Keys = append(w.Keys, WebhookKey{ID: id, Private: newKey(), Created: now})
	return "webhook", s.webhookJSON(w, id), nil
}

func (s *Server) deleteKey(r *http.Request, _ []byte) (string, any, *apiError) {
	w := s.webhook(r.PathValue("id"))
	if w == nil {
		return "", nil, &apiError{codeNotFound, "No such webhook"}
	}
	i := slices.IndexFunc(w.Keys, func(k WebhookKey) bool { return k.ID == r.PathValue("key") })
	switch {
	case i < 0:
		return "", nil, &apiError{codeNotFound, "No such public key"}
	case len(w.Keys) == 1:
		return "", nil, &apiError{codeKeyLimit, "The last public key of a webhook cannot be deleted"}
	}
	w.Keys = slices.Delete(w.Keys, i, i+1)
	return "webhook", map[string]any{}, nil
}

func (s *Server) getDepartment(r *http.Request, _ []byte) (string, any, *apiError) {
	if r.PathValue("id") != s.opts.DepartmentID {
		return "", nil, &apiError{codeNotFound, "No such department"}
	}
	return "department", map[string]any{"id": s.opts.DepartmentID, "name": "Support", "is_enabled": "true"}, nil
}

func (s *Server) listApps(*http.Request, []byte) (string, any, *apiError) {
	return "list", []map[string]any{{"id": s.opts.AppID, "name": "Zylker"}}, nil
}
