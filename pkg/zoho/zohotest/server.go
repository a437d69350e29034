// Package zohotest is an in-memory Zoho for tests and demos. One httptest
// server plays the accounts server (the org authorization page and the
// token endpoint) and the SalesIQ REST API (visitor conversations with
// their customer_info, messages and files; operator close and get; the
// operator list with each operator's availability), and the server's
// methods play the operators, and the visitor's rating, sending signed
// webhooks as SalesIQ does.
//
// It follows Zoho's documented behaviour where there is one: token
// refusals answered with HTTP 200 ({"error":"invalid_code"}, and
// {"error":"Access Denied",...} past 10 tokens per refresh token per 10
// minutes), 15 live access tokens per refresh token (the 16th revokes the
// oldest), tokens valid one hour; API errors as {"error":{"code","message"}}
// with HTTP 200, code 1002 for a bad Authorization header, 1004 for a
// wrong method, 1005 for a wrong screen name, 1006 for an unknown URL and
// 1008 for an invalid or expired token; 1023 (too many requests) through
// FailNext; files up to 50 MB; webhooks signed with RSA SHA-256 in
// x-siqsignature and retried three times on any status ≥ 300, attempt
// counting up, RetrySpacing apart; the envelope's app_id a JSON number above
// 2^53 and conversation ids numeric strings above 2^53 beside a distinct
// visitor_conversation_id (the webhook page,
// https://help.zoho.com/portal/en/kb/salesiq-2-0/admin-guide/webhooks/articles/webhooksinsalesiq);
// conversation state in chat_status{status_key,state_key} and
// end_time/missed_time (get-conversation-details-v2.html); close with
// CloseMethod only, code 1004 "Invalid Request Type." for any other.
// Codes 1300–1303 are the simulator's own: SalesIQ documents none for bad
// input, a missing or ended conversation, or a file too large. The
// operator methods send webhooks, and so does the open call when an
// operator is available (AvailableOperator); other API calls (the
// bridge's own close included) send none.
package zohotest

import (
	"cmp"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// Options configures a Server; zero fields take the defaults shown.
type Options struct {
	ClientID     string // "test-client-id"
	ClientSecret string // "test-client-secret"
	// RefreshToken is a refresh token the accounts server already issued,
	// as the operator puts in the config secret; "test-refresh-token".
	RefreshToken string
	ScreenName   string // "zylker"
	AppID        string // "40526000000002043"
	DepartmentID string // "40526000000002013"
	OrgID        string // "55778119"
	// Location is the data centre the authorization redirect names; "us".
	Location string
	// WebhookURL receives the operators' webhooks; see also SetWebhookURL.
	WebhookURL string
	TokenTTL   time.Duration // 1 h
	// AnswerIDOnly makes the visitor API answer a new conversation with
	// data.id only, instead of data.conversation_id beside the visitor
	// conversation id in data.id and data.visitor_conversation_id.
	AnswerIDOnly bool
	// AvailableOperator, when set, is free to take chats: SalesIQ routes a
	// new conversation to the first available operator
	// (https://help.zoho.com/portal/en/kb/salesiq-2-0/for-administrators/automation/articles/chat-routing),
	// so the open call assigns it and delivers
	// conversation.attender.updated and the operator's greeting
	// (conversation.operator.replied) before it answers. Nil (the
	// default): no operator is free; the conversation waits. See also
	// SetAvailableOperator.
	AvailableOperator *Operator
	// Operators are the portal's other operators in the department, busy
	// (status_code 3): the operator list answers them beside the
	// available one.
	Operators []Operator
	// Greeting is the available operator's first message; default
	// "Hello, I'm <name>. How can I help?".
	Greeting string
	// CloseMethod is the close endpoint's method; default PUT (see
	// zoho.Client.Close for why). The other method is answered 1004.
	CloseMethod string
	// RetrySpacing is the pause between a failed delivery and its retry;
	// default a minute, as SalesIQ waits. Tests set a few milliseconds.
	RetrySpacing time.Duration
	Now          func() time.Time
}

// Fault is an error answer injected with FailNext. API calls answer
// {"error":{"code":Code,"message":Message}}; the token endpoint answers
// {"error":Message}. Status defaults to 200, as Zoho answers errors.
type Fault struct {
	Status  int
	Code    int
	Message string
}

// Operator is a SalesIQ operator acting through the operator methods.
type Operator struct {
	ID, Name, Email string
}

// Conversation states.
const (
	StatusWaiting  = "waiting"
	StatusAttended = "attended"
	StatusClosed   = "closed"
	StatusMissed   = "missed"
)

// Message is a stored conversation message.
type Message struct {
	ID       string
	Sender   string // "visitor" or "operator"
	SenderID string // the visitor's user_id, or the operator's id
	Text     string // text, or a file's comment
	FileName string
	// ContentType and File are the file's; FileURL serves it.
	ContentType string
	File        []byte
	FileURL     string
	Time        time.Time
}

// Conversation is a conversation as the simulator keeps it.
type Conversation struct {
	ID string
	// VisitorConversationID is the visitor-side id SalesIQ also reports.
	VisitorConversationID string
	Reference             string // reference_id, the portal's chat number
	VisitorID             string // SalesIQ's own id of the visitor, not the user_id
	UserID                string // the visitor's user_id
	VisitorName           string
	VisitorEmail          string
	VisitorPhone          string
	AppID, DepartmentID   string
	Question              string
	// CustomerInfo is the open call's customer_info, shown to operators.
	CustomerInfo      map[string]string
	Status            string
	Attender          *Operator
	EndedBy           string // "agent" or "api" once closed
	Messages          []Message
	OpenedAt, EndedAt time.Time
	AttendedAt        time.Time
}

// Server is the simulator. Its methods are safe for concurrent use.
//
// From simcore.Core it has the clock (Now, Advance), the webhook target
// (SetWebhookURL, SetDeliveries: every webhook delivered n times, with
// attempt 1 to n, as SalesIQ's retries do), the uploaded files (File) and
// the call record: FailNext, Calls and CallLog name calls by op, "token",
// "authorize", "open", "message", "upload", "close", "get", "operators"
// and the webhook API's (webhooks_api.go).
type Server struct {
	simcore.Core[Fault]
	opts Options

	mu        sync.Mutex
	key       *rsa.PrivateKey
	webhookID string
	codes     map[string]string // authorization code → redirect URI
	grants    map[string]*grant // refresh token → what it issued
	access    *simcore.Tokens
	convs     map[string]*Conversation
	seq       int
	// early are the webhooks an API call produced, delivered before its
	// answer is written (see api).
	early []map[string]any
	// stop ends background retries when the server closes.
	stop     chan struct{}
	retrying sync.WaitGroup
	hooks    hookState // webhook API (webhooks_api.go)
}

// grant is a refresh token's history: when it minted tokens, and which
// are live.
type grant struct {
	issued []time.Time
	live   []string
}

// New starts a simulator with a fresh RSA signing key; Close stops it.
func New(opts Options) *Server {
	opts.ClientID = cmp.Or(opts.ClientID, "test-client-id")
	opts.ClientSecret = cmp.Or(opts.ClientSecret, "test-client-secret")
	opts.RefreshToken = cmp.Or(opts.RefreshToken, "test-refresh-token")
	opts.ScreenName = cmp.Or(opts.ScreenName, "zylker")
	opts.AppID = cmp.Or(opts.AppID, "40526000000002043")
	opts.DepartmentID = cmp.Or(opts.DepartmentID, "40526000000002013")
	opts.OrgID = cmp.Or(opts.OrgID, "55778119")
	opts.Location = cmp.Or(opts.Location, "us")
	opts.CloseMethod = cmp.Or(opts.CloseMethod, http.MethodPut)
	if opts.RetrySpacing <= 0 {
		opts.RetrySpacing = time.Minute
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:      opts,
		key:       newKey(),
		webhookID: "40526000000912001",
		codes:     map[string]string{},
		grants:    map[string]*grant{opts.RefreshToken: {}},
		convs:     map[string]*Conversation{},
		stop:      make(chan struct{}),
	}
	s.access = simcore.NewTokens(s.Now)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth/v2/org/auth", s.handleAuthorize)
	mux.HandleFunc("POST /oauth/v2/token", s.handleToken)
	mux.HandleFunc("/api/visitor/v1/{screen}/conversations", s.api("open", http.MethodPost, s.open))
	mux.HandleFunc("/api/visitor/v1/{screen}/conversations/{id}/messages", s.api("message", http.MethodPost, s.message))
	mux.HandleFunc("/api/v2/{screen}/conversations/{id}/close", s.api("close", opts.CloseMethod, s.close))
	mux.HandleFunc("/api/v2/{screen}/conversations/{id}", s.api("get", http.MethodGet, s.get))
	mux.HandleFunc("/api/v2/{screen}/operators", s.api("operators", http.MethodGet, s.operators))
	s.webhookRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusOK, 1006, "Invalid URL")
	})
	s.Start(mux, opts.Now, opts.WebhookURL)
	return s
}

// Close stops the server and its background retries.
func (s *Server) Close() {
	close(s.stop)
	s.Core.Close()
	s.retrying.Wait()
}

// Options returns the options in effect, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// AccountsURL is the accounts server, for the OAuth config's AccountsURL.
func (s *Server) AccountsURL() string { return s.URL() }

// SalesIQURL is the SalesIQ server, for the client config's SalesIQURL.
func (s *Server) SalesIQURL() string { return s.URL() }

// ExpireTokens makes every access token issued so far expire now.
func (s *Server) ExpireTokens() { s.access.ExpireAll() }

// TokenCalls reports how many times the token endpoint was called, every
// grant and fault included.
func (s *Server) TokenCalls() int { return s.Calls("token") }

// Conversation returns a copy of a conversation.
func (s *Server) Conversation(id string) (Conversation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[id]
	if !ok {
		return Conversation{}, false
	}
	return c.copy(), true
}

// Conversations returns copies of every conversation, oldest first.
func (s *Server) Conversations() []Conversation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Conversation, 0, len(s.convs))
	for _, c := range s.convs {
		out = append(out, c.copy())
	}
	slices.SortFunc(out, func(a, b Conversation) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Closed reports whether a conversation has ended, closed or missed.
func (s *Server) Closed(id string) bool {
	c, ok := s.Conversation(id)
	return ok && (c.Status == StatusClosed || c.Status == StatusMissed)
}

func (c *Conversation) copy() Conversation {
	cp := *c
	cp.Messages = slices.Clone(c.Messages)
	cp.CustomerInfo = maps.Clone(c.CustomerInfo)
	if c.Attender != nil {
		a := *c.Attender
		cp.Attender = &a
	}
	return cp
}

func (c *Conversation) ended() bool { return c.Status == StatusClosed || c.Status == StatusMissed }

// record counts a call of op and returns the fault to answer, if any.
func (s *Server) record(op string) (Fault, bool) { return s.Record(op, op) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": message}})
}

// handleAuthorize is the org client's consent page, consented at once: it
// redirects to redirect_uri with a code, the state, and the location and
// accounts-server of this data centre.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.record("authorize"); ok {
		http.Error(w, f.Message, max(f.Status, http.StatusBadRequest))
		return
	}
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case q.Get("response_type") != "code" || q.Get("access_type") != "offline" || q.Get("scope") == "":
		http.Error(w, "invalid authorization request", http.StatusBadRequest)
		return
	case q.Get("client_id") != s.opts.ClientID:
		http.Error(w, "invalid client", http.StatusBadRequest)
		return
	case err != nil || redirect.Host == "":
		http.Error(w, "invalid redirect_uri", http.StatusBadRequest)
		return
	}
	code := "1000." + simcore.RandomHex(16)
	s.codes[code] = q.Get("redirect_uri")
	back := redirect.Query()
	back.Set("code", code)
	back.Set("state", q.Get("state"))
	back.Set("location", s.opts.Location)
	back.Set("accounts-server", s.URL())
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// AuthorizationCode issues a code as the consent page does, for tests that
// skip the browser.
func (s *Server) AuthorizationCode(redirectURI string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := "1000." + simcore.RandomHex(16)
	s.codes[code] = redirectURI
	return code
}

const (
	tokenWindow   = 10 * time.Minute
	tokensPerSpan = 10
	liveTokens    = 15
)

// handleToken is POST /oauth/v2/token: the authorization_code and
// refresh_token grants, client credentials in the form.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	refuse := func(code, description string) {
		body := map[string]string{"error": code}
		if description != "" {
			body["error_description"] = description
		}
		writeJSON(w, http.StatusOK, body)
	}
	if f, ok := s.record("token"); ok {
		writeJSON(w, max(f.Status, http.StatusOK), map[string]string{"error": f.Message})
		return
	}
	if err := r.ParseForm(); err != nil {
		refuse("invalid_request", "")
		return
	}
	if r.PostForm.Get("client_id") != s.opts.ClientID || r.PostForm.Get("client_secret") != s.opts.ClientSecret {
		refuse("invalid_client", "")
		return
	}
	out := map[string]any{}
	var refresh string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		redirect, ok := s.codes[code]
		if !ok || redirect != r.PostForm.Get("redirect_uri") {
			refuse("invalid_code", "")
			return
		}
		delete(s.codes, code)
		refresh = "1000." + simcore.RandomHex(24)
		s.grants[refresh] = &grant{}
		out["refresh_token"] = refresh
	case "refresh_token":
		refresh = r.PostForm.Get("refresh_token")
		if s.grants[refresh] == nil {
			refuse("invalid_code", "")
			return
		}
	default:
		refuse("unsupported_grant_type", "")
		return
	}
	g, now := s.grants[refresh], s.Now()
	g.issued = slices.DeleteFunc(g.issued, func(t time.Time) bool { return !t.After(now.Add(-tokenWindow)) })
	if len(g.issued) >= tokensPerSpan {
		refuse("Access Denied", "You have made too many requests continuously. Please try again after some time.")
		return
	}
	g.issued = append(g.issued, now)
	tok := "1000." + simcore.RandomHex(16)
	s.access.Issue(tok, "", s.opts.TokenTTL)
	g.live = append(g.live, tok)
	if len(g.live) > liveTokens {
		s.access.Revoke(g.live[0])
		g.live = g.live[1:]
	}
	out["access_token"] = tok
	out["api_domain"] = "https://www.zohoapis.com"
	out["token_type"] = "Bearer"
	out["expires_in"] = int(s.opts.TokenTTL / time.Second)
	writeJSON(w, http.StatusOK, out)
}

// apiError is an error answer of the SalesIQ API, HTTP 200 as SalesIQ
// answers them.
type apiError struct {
	code    int
	message string
}

// api wraps an API operation: it records the call, answers injected
// faults, and checks the method, the token and the screen name, in that
// order.
func (s *Server) api(op, method string, handle func(*http.Request) (any, *apiError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		op := op // per request: a file upload must not rename later messages
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if op == "message" && ct == "multipart/form-data" {
			op = "upload"
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if f, ok := s.record(op); ok {
			writeAPIError(w, max(f.Status, http.StatusOK), f.Code, f.Message)
			return
		}
		if e := s.authorize(r, method); e != nil {
			writeAPIError(w, http.StatusOK, e.code, e.message)
			return
		}
		out, e := handle(r)
		early := s.early
		s.early = nil
		if e != nil {
			writeAPIError(w, http.StatusOK, e.code, e.message)
			return
		}
		// Webhooks the call caused leave before its answer; SalesIQ's
		// retries of them do not hold the answer up.
		s.mu.Unlock()
		for _, env := range early {
			s.deliverEarly(env)
		}
		s.mu.Lock()
		object := "conversations"
		if op == "operators" {
			object = "list"
		}
		writeJSON(w, http.StatusOK, map[string]any{"url": r.URL.Path, "object": object, "data": out})
	}
}

func (s *Server) authorize(r *http.Request, method string) *apiError {
	if r.Method != method {
		return &apiError{1004, "Invalid Request Type."}
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Zoho-oauthtoken ")
	if !ok {
		tok, ok = strings.CutPrefix(auth, "Bearer ")
	}
	if !ok || tok == "" {
		return &apiError{1002, "Invalid authorization header."}
	}
	if _, good := s.access.Subject(tok); !good {
		return &apiError{1008, "Invalid OAuth token."}
	}
	if r.PathValue("screen") != s.opts.ScreenName {
		return &apiError{1005, "Invalid portal or wrong screen name."}
	}
	return nil
}

func decodeBody(r *http.Request, v any) *apiError {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(body, v) != nil {
		return &apiError{1300, "Invalid input"}
	}
	return nil
}

func (s *Server) open(r *http.Request) (any, *apiError) {
	var in struct {
		Visitor struct {
			UserID string `json:"user_id"`
			Name   string `json:"name"`
			Email  string `json:"email"`
			Phone  string `json:"phone"`
		} `json:"visitor"`
		AppID        string            `json:"app_id"`
		DepartmentID string            `json:"department_id"`
		Question     string            `json:"question"`
		CustomerInfo map[string]string `json:"customer_info"`
	}
	if e := decodeBody(r, &in); e != nil {
		return nil, e
	}
	switch {
	case in.Visitor.UserID == "":
		return nil, &apiError{1300, "visitor.user_id is mandatory"}
	case in.AppID != s.opts.AppID:
		return nil, &apiError{1300, "Invalid app_id"}
	case in.DepartmentID != s.opts.DepartmentID:
		return nil, &apiError{1300, "Invalid department_id"}
	case strings.TrimSpace(in.Question) == "":
		return nil, &apiError{1300, "question is mandatory"}
	}
	s.seq++
	c := &Conversation{
		// Above 2^53, as SalesIQ's ids are: a float64 would change them.
		ID:                    strconv.FormatUint(firstConversationID+uint64(s.seq), 10),
		Reference:             strconv.Itoa(s.seq),
		VisitorID:             strconv.FormatUint(firstVisitorID+uint64(s.seq), 10),
		VisitorConversationID: simcore.RandomHex(24),
		UserID:                in.Visitor.UserID,
		VisitorName:           in.Visitor.Name,
		VisitorEmail:          in.Visitor.Email,
		VisitorPhone:          in.Visitor.Phone,
		AppID:                 in.AppID,
		DepartmentID:          in.DepartmentID,
		Question:              in.Question,
		CustomerInfo:          in.CustomerInfo,
		Status:                StatusWaiting,
		OpenedAt:              s.Now(),
	}
	s.convs[c.ID] = c
	if op := s.opts.AvailableOperator; op != nil {
		s.assignOnOpen(c, *op)
	}
	out := s.conversationJSON(c)
	if s.opts.AnswerIDOnly {
		out["id"] = c.ID
		delete(out, "conversation_id")
		delete(out, "visitor_conversation_id")
	} else {
		out["id"] = c.VisitorConversationID
	}
	return out, nil
}

// SalesIQ's ids are above 2^53 (9007199254740992).
const (
	firstConversationID uint64 = 40526000001808000
	firstVisitorID      uint64 = 40526000000969000
)

// assignOnOpen routes a new conversation to the available operator and
// queues conversation.attender.updated and the greeting's
// conversation.operator.replied for delivery before the open answer.
// Callers hold s.mu.
func (s *Server) assignOnOpen(c *Conversation, op Operator) {
	c.Attender, c.Status, c.AttendedAt = &op, StatusAttended, s.Now()
	s.early = append(s.early, s.envelope("conversation.attender.updated", c.ID, s.conversationJSON(c), s.Now(), 1))
	greeting := s.opts.Greeting
	if greeting == "" {
		greeting = "Hello, I'm " + op.Name + ". How can I help?"
	}
	event, entity := s.replyEntity(c, Message{Text: greeting})
	s.early = append(s.early, s.envelope(event, c.ID, entity, s.Now(), 1))
}

// openConversation finds a conversation that must not have ended.
func (s *Server) openConversation(id string) (*Conversation, *apiError) {
	c, ok := s.convs[id]
	if !ok {
		return nil, &apiError{1301, "Conversation not found"}
	}
	if c.ended() {
		return nil, &apiError{1302, "Conversation has already ended"}
	}
	return c, nil
}

const maxUpload = 50 << 20

func (s *Server) message(r *http.Request) (any, *apiError) {
	c, e := s.openConversation(r.PathValue("id"))
	if e != nil {
		return nil, e
	}
	m := Message{Sender: "visitor", SenderID: c.UserID}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
		r.Body = http.MaxBytesReader(nil, r.Body, maxUpload+1<<20)
		f, h, err := r.FormFile("file")
		if err != nil {
			if strings.Contains(err.Error(), "too large") {
				return nil, &apiError{1303, "File size exceeds the limit of 50 MB"}
			}
			return nil, &apiError{1300, "file is mandatory"}
		}
		defer f.Close()
		body, err := io.ReadAll(f)
		if err != nil || len(body) > maxUpload {
			return nil, &apiError{1303, "File size exceeds the limit of 50 MB"}
		}
		m.FileName, m.ContentType, m.File = h.Filename, h.Header.Get("Content-Type"), body
		m.FileURL = s.StoreFile(h.Filename, m.ContentType, body)
		m.Text = r.FormValue("comment")
	} else {
		var in struct {
			Text string `json:"text"`
		}
		if e := decodeBody(r, &in); e != nil {
			return nil, e
		}
		if strings.TrimSpace(in.Text) == "" {
			return nil, &apiError{1300, "text is mandatory"}
		}
		m.Text = in.Text
	}
	m = s.appendMessage(c, m)
	return map[string]any{
		"id": m.ID, "msgid": m.ID, "text": m.Text, "time": strconv.FormatInt(m.Time.UnixMilli(), 10),
		"sender": map[string]any{"type": "visitor", "id": c.UserID, "name": c.VisitorName},
	}, nil
}

// close is the operator API's close
// (https://www.zoho.com/salesiq/help/developer-section/close-chat-v2.html):
// it answers the closed conversation.
func (s *Server) close(r *http.Request) (any, *apiError) {
	c, e := s.openConversation(r.PathValue("id"))
	if e != nil {
		return nil, e
	}
	c.Status, c.EndedBy, c.EndedAt = StatusClosed, "api", s.Now()
	return s.conversationJSON(c), nil
}

func (s *Server) get(r *http.Request) (any, *apiError) {
	c, ok := s.convs[r.PathValue("id")]
	if !ok {
		return nil, &apiError{1301, "Conversation not found"}
	}
	return s.conversationJSON(c), nil
}

// operatorsPerPage is the operator list's page size: "limited to 20 per
// fetch", the next ones at index 2, 3, …
const operatorsPerPage = 20

// operators is the operator list
// (https://www.zoho.com/salesiq/help/developer-section/rest-api-operator-list.html):
// the available operator with status_code "1" (Available) and the others
// with "3" (Busy), each in the department, with the page's flags as
// strings and image_url as a download path on this server, 20 a page by
// index (1 when absent).
func (s *Server) operators(r *http.Request) (any, *apiError) {
	index := 1
	if v := r.URL.Query().Get("index"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, &apiError{1300, "Invalid index"}
		}
		index = n
	}
	roster := []map[string]any{}
	add := func(o Operator, available bool) {
		status, label := "3", "Busy"
		if available {
			status, label = "1", "Available"
		}
		roster = append(roster, map[string]any{
			"id": o.ID, "first_name": o.Name, "nick_name": o.Name, "email_id": o.Email,
			"status_code": status, "status_message": label,
			"is_chat_enabled": "true", "is_enabled": "true", "is_deleted": "false",
			"departments": []string{s.opts.DepartmentID}, "role": "Associate",
			"image_url": "/api/v2/" + s.opts.ScreenName + "/downloads/" + o.ID + "?purpose=operator_image",
		})
	}
	if a := s.opts.AvailableOperator; a != nil {
		add(*a, true)
	}
	for _, o := range s.opts.Operators {
		if a := s.opts.AvailableOperator; a == nil || a.ID != o.ID {
			add(o, false)
		}
	}
	from := min((index-1)*operatorsPerPage, len(roster))
	return roster[from:min(from+operatorsPerPage, len(roster))], nil
}

// SetAvailableOperator makes op the operator free to take chats (nil: none
// is), as Options.AvailableOperator.
func (s *Server) SetAvailableOperator(op *Operator) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op != nil {
		cp := *op
		op = &cp
	}
	s.opts.AvailableOperator = op
}

func (s *Server) appendMessage(c *Conversation, m Message) Message {
	m.ID = fmt.Sprintf("%s_%d", c.ID, len(c.Messages)+1)
	m.Time = s.Now().UTC()
	c.Messages = append(c.Messages, m)
	return m
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// chatStatus is a state's chat_status keys and label, as the get page
// shows them (status_key "open" with state_key "connected" for an attended
// conversation; the list API's status values are open, waiting,
// connected, closed, missed and end).
var chatStatus = map[string]struct{ statusKey, stateKey, label string }{
	StatusWaiting:  {"open", "waiting", "Waiting"},
	StatusAttended: {"open", "connected", "Connected"},
	StatusClosed:   {"closed", "closed", "Closed"},
	StatusMissed:   {"missed", "missed", "Missed"},
}

// conversationJSON renders a conversation as the operator API and the
// webhooks do: the webhook page's entity (id, visitor_conversation_id,
// reference_id, opened_time, …, owner, visitor without our user_id) with
// the REST API's additions (conversation_id, start_time, attender,
// chat_status keys). Callers hold s.mu.
func (s *Server) conversationJSON(c *Conversation) map[string]any {
	st := chatStatus[c.Status]
	out := map[string]any{
		"id":                      c.ID,
		"conversation_id":         c.ID,
		"visitor_conversation_id": c.VisitorConversationID,
		"reference_id":            c.Reference,
		"app_id":                  c.AppID,
		"department_id":           c.DepartmentID,
		"question":                c.Question,
		"status":                  st.label,
		"chat_status":             map[string]any{"status_key": st.statusKey, "state_key": st.stateKey, "label": st.label},
		"opened_time":             millis(c.OpenedAt),
		"start_time":              millis(c.OpenedAt),
		"visitor": map[string]any{
			"id": c.VisitorID, "name": c.VisitorName, "email_id": c.VisitorEmail,
			"phone": c.VisitorPhone, "channel": "website", "type": "lead",
		},
	}
	if len(c.CustomerInfo) > 0 {
		out["customer_info"] = maps.Clone(c.CustomerInfo)
	}
	if c.Attender != nil {
		out["attender"] = operatorJSON(*c.Attender)
		out["owner"] = operatorJSON(*c.Attender)
		out["attended_time"] = millis(c.AttendedAt)
	}
	switch c.Status {
	case StatusClosed:
		out["end_time"] = millis(c.EndedAt)
	case StatusMissed:
		out["missed_time"] = millis(c.EndedAt)
	}
	return out
}

func operatorJSON(o Operator) map[string]any {
	return map[string]any{"id": o.ID, "name": o.Name, "email": o.Email, "email_id": o.Email, "type": "operator", "is_bot": false}
}
