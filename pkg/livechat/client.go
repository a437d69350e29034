package livechat

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/media"
	"github.com/hitl-bridge/hitl-bridge/pkg/outbound"
)

// Config configures a Client.
type Config struct {
	// APIURL is the versioned API base; default https://api.livechatinc.com/v3.6.
	APIURL string
	// AccountsURL is the accounts server; default https://accounts.livechat.com.
	AccountsURL    string
	OrganizationID string
	// ClientID is the LiveChat app whose cookie grant creates customers.
	ClientID string
	// RedirectURI is one of the app's allowed redirect URLs, sent with the
	// cookie grant; LiveChat otherwise takes it from an Origin header,
	// which a server does not send.
	RedirectURI string
	// GroupID is the group whose agents take the handoffs.
	GroupID int
	// AgentToken is base64("<account id>:<personal access token>").
	AgentToken string
	// BotID is the LiveChat bot whose name bot messages appear under, owned
	// by the app ClientID names and a member of the group; BotSecret is the
	// secret create_bot returned for it. Without them bot messages go as
	// the customer's, marked hitl.BotPrefix.
	BotID, BotSecret string
	HTTPClient       *http.Client
	// Media fetches media URLs for upload; nil sends every media message
	// as its link.
	Media  *media.Fetcher
	Now    func() time.Time
	Logger *slog.Logger
	// Timeout bounds each HTTP attempt; default 10 s.
	Timeout time.Duration
	// RetryDelay is the first retry's backoff; default 250 ms.
	RetryDelay time.Duration
}

// Client is the LiveChat provider. It keeps no per-session state: the
// customer's token and cookies travel in hitl.Session.Visitor, encoded by
// this package (credentials).
type Client struct {
	apiURL, accountsURL     string
	organizationID          string
	clientID, redirectURI   string
	groupID                 int
	agentToken, agentRegion string
	api                     *outbound.Client
	media                   *media.Fetcher
	now                     func() time.Time
	log                     *slog.Logger

	// region is the data centre a misdirected_request named; it overrides
	// the tokens' prefixes for every later call.
	region atomic.Pointer[string]
	// self is the integration's own agent id, learned once.
	selfMu sync.Mutex
	self   string

	botID, botSecret string
	// botToken is the bot's token, used until botTokenUntil.
	botMu         sync.Mutex
	botToken      string
	botTokenUntil time.Time
	// botChats are chats the bot was added to by this container.
	botChats *expirable.LRU[string, struct{}]
}

var (
	_ hitl.Provider         = (*Client)(nil)
	_ hitl.VisitorRefresher = (*Client)(nil)
)

const (
	// maxUploadBytes is LiveChat's upload_file limit.
	maxUploadBytes = 10 << 20
	// maxTranscriptEvents bounds the events start_chat carries; older
	// transcript entries are summarised as a count.
	maxTranscriptEvents = 50
	// customIDPrefix marks every event this package posts, so the webhook
	// parser can recognise and drop their echoes.
	customIDPrefix = "hitl-bridge:"
	// refreshMargin renews a token this long before it expires.
	refreshMargin = time.Minute
)

// NewClient validates cfg and returns a Client.
func NewClient(cfg Config) (*Client, error) {
	c := &Client{
		apiURL:         strings.TrimRight(cmp.Or(cfg.APIURL, "https://api.livechatinc.com/v3.6"), "/"),
		accountsURL:    strings.TrimRight(cmp.Or(cfg.AccountsURL, "https://accounts.livechat.com"), "/"),
		organizationID: cfg.OrganizationID,
		clientID:       cfg.ClientID,
		redirectURI:    cfg.RedirectURI,
		groupID:        cfg.GroupID,
		agentToken:     cfg.AgentToken,
		botID:          cfg.BotID,
		botSecret:      cfg.BotSecret,
		botChats:       expirable.NewLRU[string, struct{}](1000, nil, 12*time.Hour),
		media:          cfg.Media,
		now:            cfg.Now,
		log:            cmp.Or(cfg.Logger, slog.Default()),
	}
	var problems []string
	for _, u := range []struct{ name, value string }{{"API URL", c.apiURL}, {"accounts URL", c.accountsURL}} {
		if !hitl.HTTPURL(u.value) {
			problems = append(problems, u.name+" must be an absolute http(s) URL")
		}
	}
	if c.organizationID == "" {
		problems = append(problems, "organization id is required")
	}
	if c.clientID == "" {
		problems = append(problems, "client id is required")
	}
	if (c.botID == "") != (cfg.BotSecret == "") {
		problems = append(problems, "bot id and bot secret go together")
	}
	if c.groupID < 0 {
		problems = append(problems, "group id must not be negative")
	}
	raw, err := base64.StdEncoding.DecodeString(c.agentToken)
	account, pat, ok := strings.Cut(string(raw), ":")
	if err != nil || !ok || account == "" || pat == "" {
		problems = append(problems, `agent token must be base64 of "<account id>:<personal access token>"`)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("livechat config: %s", strings.Join(problems, "; "))
	}
	c.agentRegion = region(pat)
	c.api = outbound.New(policy, cfg.HTTPClient, c.log, cfg.Timeout, cfg.RetryDelay)
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// event is a LiveChat event this package posts.
type event struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	URL      string `json:"url,omitempty"`
	CustomID string `json:"custom_id,omitempty"`
}

// Open creates (or reuses) the customer, starts a continuous chat in the
// configured group carrying the handoff and transcript with the customer
// in it, records the chat through req.KeepConversation, and transfers the
// chat to the group so it is routed to a human or queued.
//
// The chat is started with the integration's agent token, which makes that
// agent its first assignee; start_chat takes the customer in chat.users
// ("up to 4 additional agents and 1 customer",
// https://platform.text.com/docs/messaging/agent-chat-api#start-chat), so
// no chat of ours ever lacks its customer. The transfer with
// ignore_agents_availability hands it to the group's routing, which assigns
// a human or queues the chat when nobody is available instead of failing
// (https://platform.text.com/docs/messaging/agent-chat-api#transfer-chat);
// routing can send webhooks before transfer_chat answers, which is why the
// chat is recorded first.
//
// An attempt taking over after a crash (req.Visitor set) finds the
// customer's active chat and finishes what is missing: the chat is
// recorded again, and transferred if the integration's agent still holds
// it (the transfer never happened); a chat already handed over is left to
// its routing.
func (c *Client) Open(ctx context.Context, req hitl.OpenRequest) (hitl.Opened, error) {
	op := "open livechat chat for session " + req.SessionID
	v, err := newVisitor(req.Visitor)
	if err != nil {
		return hitl.Opened{}, publicError(op, err)
	}
	if v.ID == "" {
		nc, err := c.grant(ctx, nil)
		if err != nil {
			return hitl.Opened{}, publicError(op+": create customer", err)
		}
		v.customer = nc
		if req.KeepVisitor != nil {
			if err := req.KeepVisitor(ctx, nc.visitor()); err != nil {
				return hitl.Opened{}, fmt.Errorf("%s: keep the new customer: %w", op, err)
			}
		}
	} else if chat, err := c.activeChat(ctx, v); err != nil {
		return hitl.Opened{}, publicError(op+": look for the customer's chat", err)
	} else if chat != nil {
		return c.resume(ctx, op, req, v, *chat)
	}
	if err := c.updateCustomer(ctx, v, req); err != nil {
		return hitl.Opened{}, publicError(op+": update customer", err)
	}
	c.setSessionFields(ctx, v, req)
	var started struct {
		ChatID string `json:"chat_id"`
	}
	err = c.agentCall(ctx, "start_chat", true, map[string]any{
		"chat": map[string]any{
			"access": map[string]any{"group_ids": []int{c.groupID}},
			"users":  []map[string]string{{"id": v.ID, "type": "customer"}},
			"thread": map[string]any{"events": transcript(req)},
		},
		"continuous": true,
	}, &started)
	if err == nil && started.ChatID == "" {
		err = errors.New("livechat start_chat: answer has no chat_id")
	}
	if err != nil {
		return hitl.Opened{}, publicError(op+": start chat", err)
	}
	chatID := started.ChatID
	// A failure to record leaves the chat with the integration's agent; the
	// bot's retry finds it through list_chats and finishes the handoff.
	if err := keep(ctx, req, chatID); err != nil {
		return hitl.Opened{}, fmt.Errorf("%s: keep chat %s: %w", op, chatID, err)
	}
	if err := c.transfer(ctx, chatID); err != nil {
		c.abandon(ctx, req.SessionID, chatID)
		return hitl.Opened{}, publicError(op+": hand chat "+chatID+" to the group", err)
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "livechat chat opened",
		slog.String("session_id", req.SessionID), slog.String("chat_id", chatID),
		slog.String("customer_id", v.ID), slog.Int("group_id", c.groupID))
	return hitl.Opened{ConversationID: chatID, Visitor: v.visitor()}, nil
}

// resume finishes a handoff an earlier attempt started and died in.
func (c *Client) resume(ctx context.Context, op string, req hitl.OpenRequest, v *visitor, chat chatSummary) (hitl.Opened, error) {
	if err := keep(ctx, req, chat.ID); err != nil {
		return hitl.Opened{}, fmt.Errorf("%s: keep chat %s: %w", op, chat.ID, err)
	}
	outcome := "handed_over"
	held := false
	if len(chat.agents) > 0 {
		self, err := c.IntegrationAgentID(ctx)
		if err != nil {
			return hitl.Opened{}, publicError(op+": learn the integration's agent id", err)
		}
		held = slices.ContainsFunc(chat.agents, func(id string) bool { return strings.EqualFold(id, self) })
	}
	if held {
		// Still held by the integration's agent: the transfer never ran.
		if err := c.transfer(ctx, chat.ID); err != nil {
			return hitl.Opened{}, publicError(op+": hand chat "+chat.ID+" to the group", err)
		}
		outcome = "transferred"
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "livechat chat resumed",
		slog.String("session_id", req.SessionID), slog.String("chat_id", chat.ID),
		slog.String("customer_id", v.ID), slog.String("outcome", outcome))
	return hitl.Opened{ConversationID: chat.ID, Visitor: v.visitor()}, nil
}

// keep records the chat before anything routes it.
func keep(ctx context.Context, req hitl.OpenRequest, chatID string) error {
	if req.KeepConversation == nil {
		return nil
	}
	return req.KeepConversation(ctx, chatID)
}

// transfer hands the chat to the group's routing.
func (c *Client) transfer(ctx context.Context, chatID string) error {
	return c.agentCall(ctx, "transfer_chat", false, map[string]any{
		"id":                         chatID,
		"target":                     map[string]any{"type": "group", "ids": []int{c.groupID}},
		"ignore_agents_availability": true,
		"ignore_requester_presence":  true,
	}, nil)
}

// chatSummary is what Open reads of a Customer Chat API chat summary.
type chatSummary struct {
	ID     string
	agents []string
}

// activeChat returns the customer's active chat, nil if none. A customer is
// created per session, so an active chat of theirs is this session's.
//
// The Customer Chat API's chat summary has "active" at its top level and
// "users" beside it (https://platform.text.com/docs/messaging/customer-chat-api#list-chats,
// https://platform.text.com/docs/messaging/customer-chat-api/data-structures#chat-summaries);
// last_thread_summary is the Agent API's shape. Summaries of another shape
// are skipped.
func (c *Client) activeChat(ctx context.Context, v *visitor) (*chatSummary, error) {
	var list struct {
		Chats []json.RawMessage `json:"chats_summary"`
	}
	if err := c.asCustomer(ctx, v, "list_chats", false, map[string]any{"limit": 25}, &list); err != nil {
		return nil, err
	}
	for _, raw := range list.Chats {
		var chat struct {
			ID     string `json:"id"`
			Active bool   `json:"active"`
		}
		if json.Unmarshal(raw, &chat) != nil || !chat.Active || chat.ID == "" {
			continue
		}
		// users is read apart so that one odd user entry costs only itself.
		var users struct {
			Users []json.RawMessage `json:"users"`
		}
		_ = json.Unmarshal(raw, &users)
		out := &chatSummary{ID: chat.ID}
		for _, u := range users.Users {
			var user struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			}
			if json.Unmarshal(u, &user) == nil && user.Type == "agent" && user.ID != "" {
				out.agents = append(out.agents, user.ID)
			}
		}
		return out, nil
	}
	return nil, nil
}

// IntegrationAgentID returns the agent id (an email) of the account whose
// personal access token the client uses: the agent that starts every chat,
// is its first assignee and asks for its transfer. It is read once from the
// Global Accounts API's GET /v2/accounts/me, which takes the PAT as Basic
// auth and answers the account with its email
// (https://platform.text.com/docs/authorization/global-accounts-api, "Get
// an account": "The ID can be replaced with me"); LiveChat agent ids are
// those emails. Failures are not remembered, so a later call tries again.
func (c *Client) IntegrationAgentID(ctx context.Context) (string, error) {
	c.selfMu.Lock()
	defer c.selfMu.Unlock()
	if c.self != "" {
		return c.self, nil
	}
	_, body, err := c.api.Do(ctx, outbound.Request{Op: "get_account", Build: func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.accountsURL+"/v2/accounts/me", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Basic "+c.agentToken)
		return req, nil
	}})
	if err != nil {
		return "", err
	}
	var account struct {
		Email string `json:"email"`
	}
	if err := json.Unmarshal(body, &account); err != nil || !strings.Contains(account.Email, "@") {
		return "", errors.New("livechat get_account: answer has no email")
	}
	c.self = account.Email
	return c.self, nil
}

// updateCustomer gives the customer the end user's name and email. An
// address LiveChat rejects does not stop the handoff.
func (c *Client) updateCustomer(ctx context.Context, v *visitor, req hitl.OpenRequest) error {
	in := map[string]string{}
	if req.User.Name != "" {
		in["name"] = req.User.Name
	}
	if req.User.Email != "" {
		in["email"] = req.User.Email
	}
	if len(in) == 0 {
		return nil
	}
	err := c.asCustomer(ctx, v, "update_customer", false, in, nil)
	var api *APIError
	if errors.As(err, &api) && api.Type == "validation" {
		c.log.LogAttrs(ctx, slog.LevelWarn, "livechat kept customer without name or email",
			slog.String("session_id", req.SessionID), slog.String("error", "validation"))
		return nil
	}
	return err
}

// abandon deactivates a chat that could not be handed to the group, so no
// half-open chat is left behind.
func (c *Client) abandon(ctx context.Context, sessionID, chatID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.api.Timeout())
	defer cancel()
	err := c.agentCall(ctx, "deactivate_chat", false, map[string]any{"id": chatID, "ignore_requester_presence": true}, nil)
	outcome := "deactivated"
	if err != nil {
		outcome = outbound.Brief(err)
	}
	c.log.LogAttrs(ctx, slog.LevelWarn, "livechat abandoned half-open chat",
		slog.String("session_id", sessionID), slog.String("chat_id", chatID), slog.String("outcome", outcome))
}

// transcript renders the handoff as the chat's first events: a header with
// the title, description and context pairs (in key order), then one event
// per transcript entry marked with who wrote it.
func transcript(req hitl.OpenRequest) []event {
	entries := req.Transcript
	omitted := max(len(entries)-(maxTranscriptEvents-1), 0)
	entries = entries[omitted:]

	var b strings.Builder
	b.WriteString(req.Heading())
	switch {
	case omitted > 0:
		fmt.Fprintf(&b, "\n\nConversation so far (last %d of %d messages):", len(entries), len(req.Transcript))
	case len(entries) > 0:
		b.WriteString("\n\nConversation so far:")
	}
	customID := customIDPrefix + req.SessionID
	events := []event{{Type: "message", Text: truncate(b.String()), CustomID: customID}}
	for _, e := range entries {
		events = append(events, event{Type: "message", Text: truncate(e.Line()), CustomID: customID})
	}
	return events
}

// truncate cuts s to LiveChat's text limit on a rune boundary.
func truncate(s string) string { return hitl.Clip(s, hitl.MaxTextBytes, "…") }

// Send posts m as the visitor: text as a message; image, audio, video and
// file re-uploaded as a file event when they can be fetched (https, at most
// 10 MB, a public address), otherwise as text with the link; other types as
// readable text. An expired token is renewed once and the call repeated;
// the renewed visitor is in Sent.Visitor, even when the send then fails.
func (c *Client) Send(ctx context.Context, s hitl.Session, m hitl.Message) (hitl.Sent, error) {
	op := "send to livechat chat " + s.ProviderConversationID
	v, err := newVisitor(s.Visitor)
	if err != nil {
		return hitl.Sent{}, publicError(op, err)
	}
	ev, err := c.eventFor(ctx, v, s, m)
	var sent struct {
		EventID string `json:"event_id"`
	}
	if err == nil {
		err = c.asCustomer(ctx, v, "send_event", true, map[string]any{"chat_id": s.ProviderConversationID, "event": ev}, &sent)
	}
	out := hitl.Sent{MessageID: sent.EventID}
	if v.refreshed {
		nv := v.visitor()
		out.Visitor = &nv
	}
	if err != nil {
		return out, publicError(op, err)
	}
	return out, nil
}

// eventFor builds the event for m, uploading its file when it can.
func (c *Client) eventFor(ctx context.Context, v *visitor, s hitl.Session, m hitl.Message) (event, error) {
	customID := customIDPrefix + s.ID
	if m.IsMedia() {
		fileURL, err := c.upload(ctx, v, s, m)
		if err != nil {
			return event{}, err
		}
		if fileURL != "" {
			return event{Type: "file", URL: fileURL, CustomID: customID}, nil
		}
	}
	return event{Type: "message", Text: truncate(m.Readable()), CustomID: customID}, nil
}

// upload fetches m's file and uploads it as the visitor. It returns "" when
// the file should travel as a link instead.
func (c *Client) upload(ctx context.Context, v *visitor, s hitl.Session, m hitl.Message) (string, error) {
	asLink := func(reason string) (string, error) {
		c.log.LogAttrs(ctx, slog.LevelInfo, "livechat media sent as link",
			slog.String("session_id", s.ID), slog.String("type", m.Type), slog.String("reason", reason))
		return "", nil
	}
	if c.media == nil {
		return asLink("no_fetcher")
	}
	f, err := c.media.Fetch(ctx, m.URL, m.Type, maxUploadBytes)
	switch {
	case ctx.Err() != nil:
		return "", ctx.Err()
	case err != nil:
		return asLink(media.Reason(err))
	}
	defer f.Close()
	form, err := f.Form("file", m.UploadName())
	if err != nil {
		return "", fmt.Errorf("encode livechat upload: %w", err)
	}
	var uploaded struct {
		URL string `json:"url"`
	}
	err = c.asCustomer(ctx, v, "upload_file", false, form, &uploaded)
	var api *APIError
	if errors.As(err, &api) && (api.Status == http.StatusRequestEntityTooLarge || api.Type == "entity_too_large" || api.Type == "validation") {
		return asLink("upload_refused")
	}
	if err != nil {
		return "", err
	}
	if uploaded.URL == "" {
		return "", errors.New("livechat upload_file: answer has no url")
	}
	return uploaded.URL, nil
}

// Close deactivates the chat. A chat that is already inactive counts as
// closed.
func (c *Client) Close(ctx context.Context, s hitl.Session) error {
	if s.ProviderConversationID == "" {
		return hitl.Errorf(hitl.CodeInternal, "session %s has no LiveChat chat", s.ID)
	}
	err := c.agentCall(ctx, "deactivate_chat", false, map[string]any{"id": s.ProviderConversationID, "ignore_requester_presence": true}, nil)
	var api *APIError
	if errors.As(err, &api) && api.Type == "chat_inactive" {
		return nil
	}
	if err != nil {
		return publicError("close livechat chat "+s.ProviderConversationID, err)
	}
	return nil
}

// RefreshVisitor renews the visitor's token through the cookie grant; the
// customer stays the same.
func (c *Client) RefreshVisitor(ctx context.Context, v hitl.Visitor) (hitl.Visitor, error) {
	op := "refresh livechat customer " + v.ID
	cust, err := customerOf(v)
	if err == nil {
		cust, err = c.renew(ctx, cust)
	}
	if err != nil {
		return hitl.Visitor{}, publicError(op, err)
	}
	return cust.visitor(), nil
}

func (c *Client) renew(ctx context.Context, cust customer) (customer, error) {
	if len(cust.Cookies) == 0 {
		return customer{}, hitl.Errorf(hitl.CodeProvider, "the LiveChat customer has no identity cookies to renew its token")
	}
	nc, err := c.grant(ctx, cust.Cookies)
	if err != nil {
		return customer{}, err
	}
	if nc.ID != cust.ID {
		// Unrecognised cookies make the accounts server create a new
		// customer; messages must not continue under another identity.
		return customer{}, hitl.Errorf(hitl.CodeProvider, "LiveChat did not recognise the customer's identity cookies")
	}
	return nc, nil
}

// visitor is the end user's identity during one operation. Its token is
// renewed at most once per operation.
type visitor struct {
	customer
	refreshed bool
}

func newVisitor(v hitl.Visitor) (*visitor, error) {
	cust, err := customerOf(v)
	if err != nil {
		return nil, err
	}
	return &visitor{customer: cust}, nil
}

func (c *Client) refresh(ctx context.Context, v *visitor) error {
	nc, err := c.renew(ctx, v.customer)
	if err != nil {
		return err
	}
	v.customer, v.refreshed = nc, true
	c.log.LogAttrs(ctx, slog.LevelInfo, "livechat customer token renewed", slog.String("customer_id", nc.ID))
	return nil
}
