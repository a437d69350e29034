// Package livechattest is an in-memory LiveChat for tests and demos. It
// serves, on one httptest server, the accounts server's customer cookie
// grant and account look-up, the Agent and Customer Chat Web API (v3.6)
// actions hitl-bridge uses, and the files uploaded through them; and it
// plays the agents' side by sending webhooks shaped as LiveChat sends them.
//
// It follows the documented behaviour: Basic auth with base64(account:PAT)
// on the Agent API, Bearer customer tokens that expire on the Customer API,
// error bodies {"error":{"type","message"}} (authentication 401,
// authorization 403, not_found 404, validation 400, entity_too_large 413,
// chat_inactive 422, too_many_requests 429, misdirected_request with
// data.region), a customer identity kept in the __lc_cid and __lc_cst
// cookies, and the 10 MB upload limit. transfer_chat routes the chat as
// Options.Routing says, sending the webhooks routing causes before it
// answers; the Agent API's add_user_to_chat and send_event send theirs
// (user_added_to_chat, incoming_event) the same way; Customer API calls
// send none. The agent-side methods (AgentJoins, AgentSays, AgentReads, …)
// and the customer's CustomerRates do.
//
// It also keeps agents' routing statuses (list_routing_statuses), the
// customer's sneak peeks, seen marks and session fields, and bots: the
// Configuration API's create_bot and issue_bot_token, and Agent API calls
// made with a bot's token.
package livechattest

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/simcore"
)

// Options configures a Server; zero fields take the defaults shown.
type Options struct {
	OrganizationID string // "390e44e6-f1e6-0368c-z6ddb-74g14508c2ex"
	ClientID       string // "test-client"
	AccountID      string // "test-account"
	PAT            string // "dal:test-pat"
	// IntegrationAgentID is the PAT owner's agent id; "integration@example.com".
	IntegrationAgentID string
	WebhookSecret      string // "test-webhook-secret"
	// WebhookURL receives the agent-side webhooks; see also SetWebhookURL.
	WebhookURL string
	// LicenseID, when set, makes webhooks carry license_id instead of
	// organization_id, as older registrations do.
	LicenseID int
	TokenTTL  time.Duration // 8 h
	Now       func() time.Time
	// Region is the organization's data centre; API calls sent to another
	// one (X-Region, "dal" when absent) answer misdirected_request naming
	// it. Customer tokens carry it as their prefix. Default "dal".
	Region string
	// Routing is what transfer_chat to a group does; see SetRouting.
	Routing Routing
	// Agents are the agents routing can assign, in order, when Routing is
	// RoutingAssign.
	Agents []Agent
	// WebhookRetryDelay spaces the retries of a webhook answered non-2xx.
	// LiveChat retries up to 3 times within about a minute; zero retries at
	// once, which keeps tests fast.
	WebhookRetryDelay time.Duration
	// QueueWaitPerChat is the wait a queued chat is told per chat in the
	// queue up to and including it (the queue's wait_time); zero by default.
	QueueWaitPerChat time.Duration
}

// Routing is how the simulated router treats a chat transferred to a group
// with ignore_agents_availability.
type Routing int

const (
	// RoutingSilent queues the chat and sends no webhook. Real LiveChat
	// always reports the transfer; this mode keeps the simulator as the
	// existing end-to-end tests know it, the default.
	RoutingSilent Routing = iota
	// RoutingQueue: nobody in the group is available, so the chat waits:
	// chat_transferred with queue {position, wait_time, queued_at} and
	// user_removed_from_chat for the agent who started it are sent before
	// transfer_chat answers.
	RoutingQueue
	// RoutingAssign: the first of Options.Agents takes the chat at once:
	// chat_transferred naming them, user_removed_from_chat for the agent
	// who started the chat, user_added_to_chat for the routed agent and
	// the agent's greeting as incoming_event are sent, in that order,
	// before transfer_chat answers.
	RoutingAssign
)

// Fault is an error answer injected with FailNext.
type Fault struct {
	Status  int
	Type    string
	Message string
}

// Agent is a human agent acting through the agent-side methods.
type Agent struct {
	ID        string // an email, as LiveChat agent ids are
	Name      string
	AvatarURL string
}

// Agents the tests share: Ann without an avatar, Nora and Omar with one
// (as the agent's identity reaches the bot).
var (
	Ann  = Agent{ID: "ann@example.com", Name: "Ann"}
	Nora = Agent{ID: "nora@example.com", Name: "Nora Diaz", AvatarURL: "https://cdn.files-text.com/avatars/nora.png"}
	Omar = Agent{ID: "omar@example.com", Name: "Omar Haddad", AvatarURL: "https://cdn.files-text.com/avatars/omar.png"}
)

// User is a chat participant. SeenUpTo is their events_seen_up_to.
type User struct {
	ID, Name, Type, Visibility string
	SeenUpTo                   time.Time
}

// Event is a stored chat event.
type Event struct {
	ID, CustomID, Type, AuthorID, Visibility string
	Text                                     string
	Name, URL, ContentType                   string
	Size                                     int
	CreatedAt                                time.Time
}

// Chat is a chat's state as the simulator keeps it.
type Chat struct {
	ID, ThreadID string
	CreatedAt    time.Time
	GroupID      int
	Active       bool
	Continuous   bool
	Queued       bool
	Users        []User
	Events       []Event
	// SneakPeeks are the customer's sneak peeks, oldest first.
	SneakPeeks []string
	// ThreadProperties are the thread's properties by namespace.
	ThreadProperties map[string]map[string]any
}

// Customer is a customer identity.
type Customer struct {
	ID, Name, Email string
	// SessionFields are the pairs set_customer_session_fields set, in order.
	SessionFields []map[string]string
}

// Server is the simulator. Its methods are safe for concurrent use.
//
// From simcore.Core it has the clock (Now, Advance), the webhook target
// (SetWebhookURL, SetDeliveries: every webhook delivered n times, as
// LiveChat's retries can), the uploaded files (File) and the call record:
// FailNext, Calls and CallLog name calls by their API action
// ("send_event", "start_chat", …) whichever API serves them, and "token"
// and "get_account" for the accounts server; CallLog lists them as
// "agent/start_chat", "customer/send_event", "accounts/token".
type Server struct {
	simcore.Core[Fault]
	opts Options

	mu        sync.Mutex
	customers map[string]*customer
	tokens    *simcore.Tokens // customer tokens, for the customer id
	chats     map[string]*Chat
	routing   Routing
	agents    []Agent
	// directory has every agent the simulator knows, for get_agent.
	directory map[string]Agent
	// statuses are the agents' routing statuses.
	statuses  map[string]routingStatus
	bots      map[string]*bot
	botTokens *simcore.Tokens // for the bot id
	cfg       configState     // Configuration API (config_api.go)
}

type customer struct {
	Customer
	cst string
}

// New starts a simulator; Close stops it.
func New(opts Options) *Server {
	opts.OrganizationID = cmp.Or(opts.OrganizationID, "390e44e6-f1e6-0368c-z6ddb-74g14508c2ex")
	opts.ClientID = cmp.Or(opts.ClientID, "test-client")
	opts.AccountID = cmp.Or(opts.AccountID, "test-account")
	opts.PAT = cmp.Or(opts.PAT, "dal:test-pat")
	opts.IntegrationAgentID = cmp.Or(opts.IntegrationAgentID, "integration@example.com")
	opts.WebhookSecret = cmp.Or(opts.WebhookSecret, "test-webhook-secret")
	opts.Region = cmp.Or(opts.Region, "dal")
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 8 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:      opts,
		customers: map[string]*customer{},
		chats:     map[string]*Chat{},
		routing:   opts.Routing,
		agents:    opts.Agents,
		directory: map[string]Agent{},
		statuses:  map[string]routingStatus{},
		bots:      map[string]*bot{},
	}
	s.tokens, s.botTokens = simcore.NewTokens(s.Now), simcore.NewTokens(s.Now)
	s.know(opts.Agents...)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/customer/token", s.handleToken)
	mux.HandleFunc("GET /v2/accounts/me", s.handleAccount)
	mux.HandleFunc("POST /v3.6/agent/action/{action}", s.handleAgent)
	mux.HandleFunc("POST /v3.6/customer/action/{action}", s.handleCustomer)
	mux.HandleFunc("POST /v3.6/configuration/action/{action}", s.handleConfiguration)
	s.Start(mux, opts.Now, opts.WebhookURL)
	return s
}

// Options returns the options in effect, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// APIURL is the versioned API base, for livechat.Config.APIURL.
func (s *Server) APIURL() string { return s.URL() + "/v3.6" }

// AccountsURL is the accounts server, for livechat.Config.AccountsURL.
func (s *Server) AccountsURL() string { return s.URL() }

// AgentToken is base64("account:PAT"), for livechat.Config.AgentToken.
func (s *Server) AgentToken() string {
	return base64.StdEncoding.EncodeToString([]byte(s.opts.AccountID + ":" + s.opts.PAT))
}

// SetRouting changes what transfer_chat does; agents are the ones
// RoutingAssign can route to.
func (s *Server) SetRouting(r Routing, agents ...Agent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routing, s.agents = r, agents
	s.know(agents...)
}

// ExpireTokens makes every customer token issued so far expire now.
func (s *Server) ExpireTokens() { s.tokens.ExpireAll() }

// Chat returns a copy of a chat.
func (s *Server) Chat(id string) (Chat, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.chats[id]
	if !ok {
		return Chat{}, false
	}
	cp := *c
	cp.Users, cp.Events, cp.SneakPeeks = slices.Clone(c.Users), slices.Clone(c.Events), slices.Clone(c.SneakPeeks)
	cp.ThreadProperties = map[string]map[string]any{}
	for ns, props := range c.ThreadProperties {
		cp.ThreadProperties[ns] = maps.Clone(props)
	}
	return cp, true
}

// Chats returns copies of every chat, oldest first.
func (s *Server) Chats() []Chat {
	s.mu.Lock()
	ids := make([]string, 0, len(s.chats))
	for id := range s.chats {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var out []Chat
	for _, id := range ids {
		if c, ok := s.Chat(id); ok {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Chat) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out
}

// Customer returns a customer.
func (s *Server) Customer(id string) (Customer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[id]
	if !ok {
		return Customer{}, false
	}
	cp := c.Customer
	cp.SessionFields = slices.Clone(c.SessionFields)
	return cp, true
}

// record counts a call of action made through api ("agent",
// "customer", "accounts", "configuration") and returns the fault to
// answer, if any.
func (s *Server) record(api, action string) (Fault, bool) { return s.Record(api+"/"+action, action) }

// fault records a call of an action API ("agent", "customer",
// "configuration") and returns the queued fault as that API's error
// answer, or nil.
func (s *Server) fault(api, action string) *apiError {
	if f, ok := s.record(api, action); ok {
		return errorf(f.Status, f.Type, "%s", f.Message)
	}
	return nil
}

// apiError is an error answer of the Agent and Customer APIs.
type apiError struct {
	status       int
	typ, message string
	region       string // data.region of misdirected_request
}

func errorf(status int, typ, format string, args ...any) *apiError {
	return &apiError{status: status, typ: typ, message: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{"type": e.typ, "message": e.message}
	if e.region != "" {
		body["data"] = map[string]string{"region": e.region}
	}
	writeJSON(w, e.status, map[string]any{"error": body})
}

// misdirected answers a call sent to the wrong data centre with the
// documented error and the right region in data.region
// (https://platform.text.com/docs/messaging/agent-chat-api#errors). The
// docs give no HTTP status for it; 421 Misdirected Request is HTTP's own.
// A call without X-Region goes to dal, the default centre (livechat-public-docs
// before commit c91d789, "Data centers"). Callers hold s.mu.
func (s *Server) misdirected(r *http.Request) *apiError {
	region := r.Header.Get("X-Region")
	if region == "" {
		region = "dal"
	}
	if region == s.opts.Region {
		return nil
	}
	return &apiError{status: http.StatusMisdirectedRequest, typ: "misdirected_request", message: "Wrong region", region: s.opts.Region}
}

func decodeBody(r *http.Request, v any) *apiError {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(body, v) != nil {
		return errorf(http.StatusBadRequest, "validation", "Invalid request body")
	}
	return nil
}

func newUUID() string {
	h := simcore.RandomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newChatID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 10)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// handleToken is the cookie grant at accounts.livechat.com/v2/customer/token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.record("accounts", "token"); ok {
		writeJSON(w, f.Status, map[string]string{"error": f.Type, "error_description": f.Message})
		return
	}
	var in struct {
		GrantType      string `json:"grant_type"`
		ClientID       string `json:"client_id"`
		ResponseType   string `json:"response_type"`
		OrganizationID string `json:"organization_id"`
	}
	if decodeBody(r, &in) != nil || in.GrantType != "cookie" || in.ResponseType != "token" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "unsupported grant"})
		return
	}
	if in.ClientID != s.opts.ClientID || in.OrganizationID != s.opts.OrganizationID {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client", "error_description": "unknown client or organization"})
		return
	}
	var c *customer
	if cid, err := r.Cookie("__lc_cid"); err == nil {
		if cst, err := r.Cookie("__lc_cst"); err == nil {
			if known := s.customers[cid.Value]; known != nil && known.cst == cst.Value {
				c = known
			}
		}
	}
	if c == nil { // unknown or no cookies: a new identity, as LiveChat does
		c = &customer{Customer: Customer{ID: newUUID()}, cst: simcore.RandomHex(32)}
		s.customers[c.ID] = c
	}
	tok := s.opts.Region + ":" + simcore.RandomHex(16)
	s.tokens.Issue(tok, c.ID, s.opts.TokenTTL)
	for name, value := range map[string]string{"__lc_cid": c.ID, "__lc_cst": c.cst} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/v2/customer", MaxAge: 63072000,
			HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":    tok,
		"entity_id":       c.ID,
		"expires_in":      int(s.opts.TokenTTL / time.Second),
		"token_type":      "Bearer",
		"organization_id": s.opts.OrganizationID,
	})
}

// handleAccount is the Global Accounts API's GET /v2/accounts/me with the
// PAT as Basic auth: the account behind the token, whose email is its
// agent id (https://platform.text.com/docs/authorization/global-accounts-api,
// "Get an account").
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.record("accounts", "get_account"); ok {
		writeJSON(w, f.Status, map[string]string{"error": f.Type, "error_description": f.Message})
		return
	}
	if r.Header.Get("Authorization") != "Basic "+s.AgentToken() {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "error_description": "Invalid credentials"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"account_id":              s.opts.AccountID,
		"email":                   s.opts.IntegrationAgentID,
		"name":                    "Integration",
		"email_verified":          true,
		"default_product":         "LiveChat",
		"default_organization_id": s.opts.OrganizationID,
	})
}

// handleAgent serves the Agent Chat API. Webhooks an action causes are
// delivered after the lock is released and before the answer is written,
// as LiveChat's routing reports a transfer before transfer_chat answers.
func (s *Server) handleAgent(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	action := r.PathValue("action")
	var (
		out      any
		err      *apiError
		webhooks [][]byte
	)
	requester, botID := s.requester(r)
	if err = s.fault("agent", action); err == nil && requester == "" {
		err = errorf(http.StatusUnauthorized, "authentication", "Invalid access token")
	} else if err == nil {
		err = s.misdirected(r)
	}
	if err == nil && botID != "" && action != "send_event" && action != "add_user_to_chat" {
		err = errorf(http.StatusForbidden, "authorization", "Only send_event and add_user_to_chat are simulated for bots")
	} else if err == nil {
		switch action {
		case "start_chat":
			out, err = s.startChat(r)
		case "add_user_to_chat":
			out, webhooks, err = s.addUserToChat(r, requester)
		case "send_event":
			out, webhooks, err = s.agentSendEvent(r, requester)
		case "list_routing_statuses":
			out, err = s.listRoutingStatuses(r)
		case "transfer_chat":
			out, webhooks, err = s.transferChat(r, requester)
		case "deactivate_chat":
			out, err = s.deactivateChat(r, requester)
		case "upload_file":
			out, err = s.uploadFile(r)
		case "list_chats":
			out, err = s.agentListChats()
		default:
			err = errorf(http.StatusNotFound, "not_found", "Unknown action %s", action)
		}
	}
	s.mu.Unlock()
	if target, _ := s.Webhook(); target != "" {
		for _, body := range webhooks {
			_, _ = s.deliver(body)
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleCustomer(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	action := r.PathValue("action")
	if err := s.fault("customer", action); err != nil {
		writeError(w, err)
		return
	}
	if r.URL.Query().Get("organization_id") != s.opts.OrganizationID {
		writeError(w, errorf(http.StatusBadRequest, "validation", "organization_id is missing or unknown"))
		return
	}
	if err := s.misdirected(r); err != nil {
		writeError(w, err)
		return
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	customerID, known := s.tokens.Subject(bearer)
	if !ok || !known {
		writeError(w, errorf(http.StatusUnauthorized, "authentication", "Invalid access token"))
		return
	}
	c := s.customers[customerID]
	var (
		out any
		err *apiError
	)
	switch action {
	case "update_customer":
		out, err = s.updateCustomer(r, c)
	case "send_event":
		out, err = s.sendEvent(r, c)
	case "upload_file":
		out, err = s.uploadFile(r)
	case "list_chats":
		out = s.listChats(c)
	case "send_sneak_peek":
		out, err = s.sneakPeek(r, c)
	case "mark_events_as_seen":
		out, err = s.customerSeen(r, c)
	case "set_customer_session_fields":
		out, err = s.setSessionFields(r, c)
	default:
		err = errorf(http.StatusNotFound, "not_found", "Unknown action %s", action)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type eventIn struct {
	Type       string `json:"type"`
	Text       string `json:"text"`
	URL        string `json:"url"`
	CustomID   string `json:"custom_id"`
	Visibility string `json:"visibility"`
}

const maxText = 16 * 1024

// startChat is the Agent API's start_chat: the requester is the chat's
// first user and assignee; chat.users may add up to 4 agents and 1
// existing customer (https://platform.text.com/docs/messaging/agent-chat-api#start-chat).
func (s *Server) startChat(r *http.Request) (any, *apiError) {
	var in struct {
		Chat struct {
			Access struct {
				GroupIDs []int `json:"group_ids"`
			} `json:"access"`
			Users []struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			} `json:"users"`
			Thread struct {
				Events []eventIn `json:"events"`
			} `json:"thread"`
		} `json:"chat"`
		Continuous bool `json:"continuous"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	c := &Chat{ID: newChatID(), ThreadID: newChatID(), CreatedAt: s.Now().UTC(), Active: true, Continuous: in.Continuous,
		Users: []User{{ID: s.opts.IntegrationAgentID, Type: "agent", Visibility: "all"}}}
	if len(in.Chat.Access.GroupIDs) > 0 {
		c.GroupID = in.Chat.Access.GroupIDs[0]
	}
	customers, agents := 0, 0
	for _, u := range in.Chat.Users {
		switch {
		case u.Type == "customer" && s.customers[u.ID] != nil:
			customers++
		case u.Type == "agent" && u.ID != "":
			agents++
		default:
			return nil, errorf(http.StatusBadRequest, "validation", "Invalid user")
		}
		if customers > 1 || agents > 4 {
			return nil, errorf(http.StatusBadRequest, "validation", "Too many users")
		}
		c.Users = append(c.Users, User{ID: u.ID, Type: u.Type, Visibility: "all"})
	}
	var ids []string
	for _, e := range in.Chat.Thread.Events {
		if e.Type != "message" || e.Text == "" || len(e.Text) > maxText {
			return nil, errorf(http.StatusBadRequest, "validation", "Invalid initial event")
		}
		ev := s.appendEvent(c, Event{Type: "message", Text: e.Text, CustomID: e.CustomID, AuthorID: s.opts.IntegrationAgentID, Visibility: "all"})
		ids = append(ids, ev.ID)
	}
	s.chats[c.ID] = c
	out := map[string]any{"chat_id": c.ID, "thread_id": c.ThreadID}
	if len(ids) > 0 {
		out["event_ids"] = ids
	}
	return out, nil
}

// activeChat finds a chat that must be active.
func (s *Server) activeChat(id string) (*Chat, *apiError) {
	c, ok := s.chats[id]
	if !ok {
		return nil, errorf(http.StatusNotFound, "not_found", "Chat not found")
	}
	if !c.Active {
		return nil, errorf(http.StatusUnprocessableEntity, "chat_inactive", "Chat is inactive")
	}
	return c, nil
}

// requesterChat finds an active chat the requester is in; ignore
// (ignore_requester_presence) skips the presence check.
func (s *Server) requesterChat(id, requester string, ignore bool) (*Chat, *apiError) {
	c, err := s.activeChat(id)
	if err != nil {
		return nil, err
	}
	if !ignore && !slices.ContainsFunc(c.Users, func(u User) bool { return u.ID == requester }) {
		return nil, errorf(http.StatusBadRequest, "validation", "Requester is not present in the chat")
	}
	return c, nil
}

// addUserToChat is the Agent API's add_user_to_chat
// (https://platform.text.com/docs/messaging/agent-chat-api#add-user-to-chat):
// the requester must be in the chat unless ignore_requester_presence, one
// customer at most, added with visibility all, and an added agent (a bot
// included) must have access to the chat's group. It causes
// user_added_to_chat (https://platform.text.com/docs/management/webhooks#user_added_to_chat).
// Callers hold s.mu.
func (s *Server) addUserToChat(r *http.Request, requester string) (any, [][]byte, *apiError) {
	var in struct {
		ChatID                  string `json:"chat_id"`
		UserID                  string `json:"user_id"`
		UserType                string `json:"user_type"`
		Visibility              string `json:"visibility"`
		IgnoreRequesterPresence bool   `json:"ignore_requester_presence"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, nil, err
	}
	c, err := s.requesterChat(in.ChatID, requester, in.IgnoreRequesterPresence)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case in.UserType == "customer" && in.Visibility != "all":
		return nil, nil, errorf(http.StatusBadRequest, "validation", "Customer must be added with visibility all")
	case in.UserType == "customer" && s.customers[in.UserID] == nil:
		return nil, nil, errorf(http.StatusNotFound, "not_found", "Customer not found")
	case in.UserType != "customer" && in.UserType != "agent":
		return nil, nil, errorf(http.StatusBadRequest, "validation", "Invalid user_type")
	case in.Visibility != "all" && in.Visibility != "agents":
		return nil, nil, errorf(http.StatusBadRequest, "validation", "Invalid visibility")
	}
	if b := s.bots[in.UserID]; in.UserType == "agent" && b != nil && !slices.Contains(b.groups, c.GroupID) {
		return nil, nil, errorf(http.StatusForbidden, "authorization", "Agent has no access to the chat")
	}
	for _, u := range c.Users {
		if u.ID == in.UserID {
			return map[string]any{}, nil, nil
		}
		if in.UserType == "customer" && u.Type == "customer" {
			return nil, nil, errorf(http.StatusBadRequest, "validation", "Chat already has a customer")
		}
	}
	user := User{ID: in.UserID, Type: in.UserType, Visibility: in.Visibility}
	if b := s.bots[in.UserID]; b != nil {
		user.Name = b.name
	}
	c.Users = append(c.Users, user)
	if in.UserType != "agent" {
		return map[string]any{}, nil, nil
	}
	a := s.directory[in.UserID]
	if b := s.bots[in.UserID]; b != nil {
		a = Agent{ID: b.id, Name: b.name, AvatarURL: b.avatar}
	}
	payload := s.userAdded(c, a, "manual", requester)
	payload["user"].(map[string]any)["visibility"] = in.Visibility
	body, _ := s.envelope("user_added_to_chat", payload)
	return map[string]any{}, [][]byte{body}, nil
}

// transferChat is the Agent API's transfer_chat to a group
// (https://platform.text.com/docs/messaging/agent-chat-api#transfer-chat):
// the agents in the chat, the requester who started it among them, leave
// it, and the group's routing assigns an available agent at once or, with
// ignore_agents_availability, queues the chat. It returns the webhooks the
// transfer causes (https://platform.text.com/docs/management/webhooks#chat_transferred,
// #user_removed_from_chat, #user_added_to_chat, #incoming_event), which
// the caller delivers before answering. Callers hold s.mu.
func (s *Server) transferChat(r *http.Request, requester string) (any, [][]byte, *apiError) {
	var in struct {
		ID     string `json:"id"`
		Target *struct {
			Type string `json:"type"`
			IDs  []int  `json:"ids"`
		} `json:"target"`
		IgnoreAgentsAvailability bool `json:"ignore_agents_availability"`
		IgnoreRequesterPresence  bool `json:"ignore_requester_presence"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, nil, err
	}
	c, err := s.requesterChat(in.ID, requester, in.IgnoreRequesterPresence)
	if err != nil {
		return nil, nil, err
	}
	if in.Target != nil && (in.Target.Type != "group" || len(in.Target.IDs) == 0) {
		return nil, nil, errorf(http.StatusBadRequest, "validation", "Only group targets are simulated")
	}
	routed := s.routing == RoutingAssign && len(s.agents) > 0
	if !routed && !in.IgnoreAgentsAvailability {
		return nil, nil, errorf(http.StatusBadRequest, "validation", "Cannot assign any agent from requested groups")
	}
	if in.Target != nil {
		c.GroupID = in.Target.IDs[0]
	}
	var left []string
	for _, u := range c.Users {
		if u.Type == "agent" {
			left = append(left, u.ID)
		}
	}
	c.Users = slices.DeleteFunc(c.Users, func(u User) bool { return u.Type == "agent" })
	c.Queued = !routed
	if s.routing == RoutingSilent {
		return map[string]any{}, nil, nil
	}
	var webhooks [][]byte
	add := func(action string, payload any) {
		if body, err := s.envelope(action, payload); err == nil {
			webhooks = append(webhooks, body)
		}
	}
	transferred := map[string]any{
		"chat_id":        c.ID,
		"thread_id":      c.ThreadID,
		"requester_id":   requester,
		"reason":         "manual",
		"transferred_to": map[string]any{"group_ids": []int{c.GroupID}},
	}
	var agent Agent
	if routed {
		agent = s.agents[0]
		transferred["transferred_to"] = map[string]any{"group_ids": []int{c.GroupID}, "agent_ids": []string{agent.ID}}
	} else {
		transferred["queue"] = s.queue(c)
	}
	add("chat_transferred", transferred)
	for _, id := range left {
		add("user_removed_from_chat", map[string]any{"chat_id": c.ID, "thread_id": c.ThreadID, "user_id": id,
			"user_type": "agent", "reason": "manual", "requester_id": requester})
	}
	if routed {
		c.Users = append(c.Users, User{ID: agent.ID, Name: agent.Name, Type: "agent", Visibility: "all"})
		add("user_added_to_chat", s.userAdded(c, agent, "assigned", requester))
		greeting := s.appendEvent(c, Event{Type: "message", Text: "Hi, I'm " + agent.Name + ". How can I help?", AuthorID: agent.ID, Visibility: "all"})
		add("incoming_event", map[string]any{"chat_id": c.ID, "thread_id": c.ThreadID, "event": eventJSON(greeting)})
	}
	return map[string]any{}, webhooks, nil
}

func (s *Server) deactivateChat(r *http.Request, requester string) (any, *apiError) {
	var in struct {
		ID                      string `json:"id"`
		IgnoreRequesterPresence bool   `json:"ignore_requester_presence"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	c, err := s.requesterChat(in.ID, requester, in.IgnoreRequesterPresence)
	if err != nil {
		return nil, err
	}
	c.Active, c.Queued = false, false
	return map[string]any{}, nil
}

const maxUpload = 10 << 20

func (s *Server) uploadFile(r *http.Request) (any, *apiError) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxUpload+64<<10)
	f, h, err := r.FormFile("file")
	if err != nil {
		if strings.Contains(err.Error(), "too large") {
			return nil, errorf(http.StatusRequestEntityTooLarge, "entity_too_large", "Upload too large")
		}
		return nil, errorf(http.StatusBadRequest, "validation", "Missing file")
	}
	defer f.Close()
	body, err := io.ReadAll(f)
	if err != nil || len(body) > maxUpload {
		return nil, errorf(http.StatusRequestEntityTooLarge, "entity_too_large", "Upload too large")
	}
	return map[string]string{"url": s.StoreFile(h.Filename, h.Header.Get("Content-Type"), body)}, nil
}

// listChats is the customer's list_chats: summaries of the chats they take
// part in, newest first, with "active" at the top level and the chat's
// users (https://platform.text.com/docs/messaging/customer-chat-api#list-chats,
// https://platform.text.com/docs/messaging/customer-chat-api/data-structures#chat-summaries).
// Callers hold s.mu.
func (s *Server) listChats(c *customer) any {
	var chats []*Chat
	for _, chat := range s.chats {
		if slices.ContainsFunc(chat.Users, func(u User) bool { return u.ID == c.ID }) {
			chats = append(chats, chat)
		}
	}
	slices.SortFunc(chats, func(a, b *Chat) int { return b.CreatedAt.Compare(a.CreatedAt) })
	summaries := []map[string]any{}
	for _, chat := range chats {
		users := []map[string]any{}
		for _, u := range chat.Users {
			user := map[string]any{"id": u.ID, "type": u.Type, "present": true}
			if u.Name != "" {
				user["name"] = u.Name
			}
			users = append(users, user)
		}
		summary := map[string]any{
			"id":                     chat.ID,
			"last_thread_id":         chat.ThreadID,
			"last_thread_created_at": chat.CreatedAt.Format(timeFormat),
			"users":                  users,
			"access":                 map[string]any{"group_ids": []int{chat.GroupID}},
			"properties":             map[string]any{},
			"active":                 chat.Active,
		}
		for i := len(chat.Events) - 1; i >= 0; i-- {
			if e := chat.Events[i]; e.Type == "message" {
				summary["last_event_per_type"] = map[string]any{"message": map[string]any{
					"thread_id": chat.ThreadID, "thread_created_at": chat.CreatedAt.Format(timeFormat), "event": eventJSON(e)}}
				break
			}
		}
		summaries = append(summaries, summary)
	}
	return map[string]any{"chats_summary": summaries, "total_chats": len(summaries)}
}

func (s *Server) updateCustomer(r *http.Request, c *customer) (any, *apiError) {
	var in struct {
		Name  *string `json:"name"`
		Email *string `json:"email"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	if in.Email != nil && !strings.Contains(*in.Email, "@") {
		return nil, errorf(http.StatusBadRequest, "validation", "Invalid email")
	}
	if in.Name != nil {
		c.Name = *in.Name
	}
	if in.Email != nil {
		c.Email = *in.Email
	}
	return map[string]any{}, nil
}

func (s *Server) sendEvent(r *http.Request, c *customer) (any, *apiError) {
	var in struct {
		ChatID string  `json:"chat_id"`
		Event  eventIn `json:"event"`
	}
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	chat, err := s.customerChat(in.ChatID, c)
	if err != nil {
		return nil, err
	}
	if !chat.Active {
		return nil, errorf(http.StatusUnprocessableEntity, "chat_inactive", "Chat is inactive")
	}
	ev := Event{Type: in.Event.Type, CustomID: in.Event.CustomID, AuthorID: c.ID, Visibility: "all"}
	switch in.Event.Type {
	case "message":
		if strings.TrimSpace(in.Event.Text) == "" || len(in.Event.Text) > maxText {
			return nil, errorf(http.StatusBadRequest, "validation", "Invalid text")
		}
		ev.Text = in.Event.Text
	case "file":
		body, contentType, ok := s.File(in.Event.URL)
		if !ok {
			return nil, errorf(http.StatusBadRequest, "validation", "File URL must come from upload_file")
		}
		ev.URL, ev.ContentType, ev.Size = in.Event.URL, contentType, len(body)
		ev.Name, _ = url.PathUnescape(in.Event.URL[strings.LastIndex(in.Event.URL, "/")+1:])
	default:
		return nil, errorf(http.StatusBadRequest, "validation", "Unsupported event type")
	}
	ev = s.appendEvent(chat, ev)
	return map[string]string{"event_id": ev.ID}, nil
}

func (s *Server) appendEvent(c *Chat, e Event) Event {
	e.ID = fmt.Sprintf("%s_%d", c.ThreadID, len(c.Events)+1)
	e.CreatedAt = s.Now().UTC()
	c.Events = append(c.Events, e)
	return e
}
