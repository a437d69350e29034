package zoho

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/media"
	"github.com/hitl-bridge/hitl-bridge/pkg/outbound"
)

// TokenSource hands out the integration's access token; *Tokens is one.
type TokenSource interface {
	AccessToken(ctx context.Context) (string, error)
	// Invalidate reports a token SalesIQ refused and returns a new one.
	Invalidate(ctx context.Context, bad string) (string, error)
}

// Config configures a Client.
type Config struct {
	Region string // us, eu, in, au, cn, jp, ca, sa, uk
	// SalesIQURL overrides the region's SalesIQ server (simulators).
	SalesIQURL   string
	ScreenName   string // the portal's screen name
	AppID        string // the app (brand) visitors chat through
	DepartmentID string // the department whose operators take handoffs
	Tokens       TokenSource
	HTTPClient   *http.Client
	// Media fetches media URLs for upload; nil sends every media message
	// as its link. Give it a MaxBytes of at least 50 MiB to let files up to
	// SalesIQ's limit through.
	Media  *media.Fetcher
	Logger *slog.Logger
	// Timeout bounds each HTTP attempt, uploads excepted (six times as
	// long); default 10 s.
	Timeout time.Duration
	// RetryDelay is the first retry's backoff; default 250 ms.
	RetryDelay time.Duration
}

// Client is the Zoho SalesIQ provider. It keeps no per-session state.
type Client struct {
	baseURL             string
	screen              string
	appID, departmentID string
	tokens              TokenSource
	api                 *outbound.Client
	media               *media.Fetcher
	log                 *slog.Logger
	// closeWithPost is set once SalesIQ refused PUT on the close endpoint
	// and took POST: see Close.
	closeWithPost atomic.Bool
}

var _ hitl.Provider = (*Client)(nil)

const (
	// maxUploadBytes is SalesIQ's file size limit.
	maxUploadBytes = 50 << 20
	// maxTranscriptLines bounds the transcript in the question; older
	// entries are summarised as a count.
	maxTranscriptLines = 50
	// maxQuestionBytes bounds the question. SalesIQ documents no limit;
	// this is the bridge's own text limit.
	maxQuestionBytes = hitl.MaxTextBytes
)

// NewClient validates cfg and returns a Client.
func NewClient(cfg Config) (*Client, error) {
	base, problems := serverURL(cfg.Region, cfg.SalesIQURL, "SalesIQ URL", func(r Region) string { return r.SalesIQURL })
	for _, f := range []struct{ name, value string }{
		{"screen name", cfg.ScreenName}, {"app id", cfg.AppID}, {"department id", cfg.DepartmentID},
	} {
		if strings.TrimSpace(f.value) == "" {
			problems = append(problems, f.name+" is required")
		}
	}
	if cfg.Tokens == nil {
		problems = append(problems, "a token source is required")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("zoho config: %s", strings.Join(problems, "; "))
	}
	c := &Client{
		baseURL:      base,
		screen:       url.PathEscape(cfg.ScreenName),
		appID:        cfg.AppID,
		departmentID: cfg.DepartmentID,
		tokens:       cfg.Tokens,
		media:        cfg.Media,
		log:          cmp.Or(cfg.Logger, slog.Default()),
	}
	c.api = outbound.New(policy, cfg.HTTPClient, c.log, cfg.Timeout, cfg.RetryDelay)
	return c, nil
}

// idAnswer is SalesIQ's success envelope, {"url","object","data":{...}},
// read for the ids of what was created. Each id is read on its own and
// tolerantly (a string or a number, as its literal text; anything else is
// no id), so that no field can fail the decoding.
type idAnswer struct {
	Data map[string]json.RawMessage `json:"data"`
}

// id returns data's key as an id, or "".
func (a idAnswer) id(key string) string {
	var s flexString
	if json.Unmarshal(a.Data[key], &s) != nil {
		return ""
	}
	return strings.TrimSpace(string(s))
}

// conversationIDs lists the distinct ids the open answer carries for the
// conversation: conversation_id, id and visitor_conversation_id, in that
// order. Which of them webhooks and the operator API use the docs do not
// say (the webhook entity's id is numeric beside a visitor_conversation_id),
// so every one is kept.
func (a idAnswer) conversationIDs() []string {
	var ids []string
	for _, key := range []string{"conversation_id", "id", "visitor_conversation_id"} {
		if id := a.id(key); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Open starts a conversation as the end user, through the visitor API:
// the visitor's user_id is the end user's own id, and the question carries
// the title, the description and the transcript.
func (c *Client) Open(ctx context.Context, req hitl.OpenRequest) (hitl.Opened, error) {
	op := "open zoho conversation for session " + req.SessionID
	userID := req.Visitor.ID
	if userID == "" {
		userID = req.User.ID
	}
	if userID == "" {
		return hitl.Opened{}, hitl.Errorf(hitl.CodeInternal, "session %s has no user", req.SessionID)
	}
	visitor := map[string]string{"user_id": userID}
	for k, v := range map[string]string{"name": req.User.Name, "email": req.User.Email, "phone": req.User.Phone} {
		if v != "" {
			visitor[k] = v
		}
	}
	body := map[string]any{
		"visitor":       visitor,
		"app_id":        c.appID,
		"department_id": c.departmentID,
		"question":      question(req),
	}
	if len(req.Context) > 0 {
		// customer_info is shown to the operator beside the chat, as the
		// JS API's visitor.info() is
		// (https://zoho.com/salesiq/help/developer-section/open-conversation-v1.html).
		body["customer_info"] = req.Context
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return hitl.Opened{}, fmt.Errorf("%s: encode: %w", op, err)
	}
	var out idAnswer
	err = c.call(ctx, request{
		op: "open", method: http.MethodPost, path: "/api/visitor/v1/" + c.screen + "/conversations",
		contentType: "application/json", body: [][]byte{payload}, applyOnce: true,
	}, &out)
	ids := out.conversationIDs()
	if err == nil && len(ids) == 0 {
		err = errors.New("zoho open: answer has no data.conversation_id, data.id or data.visitor_conversation_id")
	}
	if err != nil {
		return hitl.Opened{}, publicError(op, err)
	}
	// SalesIQ routes the conversation as the open call creates it, so there
	// is no moment between the two for KeepConversation: webhooks that beat
	// this answer are marked MaybeOpening by the parser instead.
	c.log.LogAttrs(ctx, slog.LevelInfo, "zoho conversation opened",
		slog.String("session_id", req.SessionID), slog.String("conversation_id", ids[0]),
		slog.Any("alt_conversation_ids", ids[1:]), slog.String("visitor_id", userID))
	return hitl.Opened{ConversationID: ids[0], AltConversationIDs: ids[1:], Visitor: hitl.Visitor{ID: userID}}, nil
}

// question renders the handoff as the visitor's first message: a header
// with the title, the description and the context (one "key: value" line
// each, sorted, for operator views that do not show customer_info), then
// the transcript, one line per entry marked with who wrote it. The newest
// entries are kept when it is too long.
func question(req hitl.OpenRequest) string {
	head := req.Heading()
	entries := req.Transcript[max(len(req.Transcript)-maxTranscriptLines, 0):]
	lines := make([]string, len(entries))
	for i, e := range entries {
		lines[i] = e.Line()
	}
	for {
		q := head
		switch omitted := len(req.Transcript) - len(lines); {
		case omitted > 0:
			q += fmt.Sprintf("\n\nConversation so far (last %d of %d messages):\n", len(lines), len(req.Transcript))
		case len(lines) > 0:
			q += "\n\nConversation so far:\n"
		}
		q += strings.Join(lines, "\n")
		if len(q) <= maxQuestionBytes || len(lines) == 0 {
			return hitl.Clip(q, maxQuestionBytes, "…")
		}
		lines = lines[1:]
	}
}

// Send posts m as the visitor: text as a message; image, audio, video and
// file uploaded as a file when they can be fetched (https, at most 50 MB,
// a public address), otherwise as text with the link; other types as
// readable text. A conversation that has ended gives
// hitl.ErrConversationEnded.
func (c *Client) Send(ctx context.Context, s hitl.Session, m hitl.Message) (hitl.Sent, error) {
	id := s.ProviderConversationID
	if id == "" {
		return hitl.Sent{}, hitl.Errorf(hitl.CodeInternal, "session %s has no Zoho conversation", s.ID)
	}
	op := "send to zoho conversation " + id
	if m.IsMedia() {
		sent, ok, err := c.upload(ctx, s, m)
		if err != nil {
			return hitl.Sent{}, c.failure(ctx, op, id, err)
		}
		if ok {
			return sent, nil
		}
	}
	payload, err := json.Marshal(map[string]string{"text": hitl.Clip(m.Readable(), hitl.MaxTextBytes, "…")})
	if err != nil {
		return hitl.Sent{}, fmt.Errorf("%s: encode: %w", op, err)
	}
	var out idAnswer
	err = c.call(ctx, request{
		op: "message", method: http.MethodPost, path: c.messagesPath(id),
		contentType: "application/json", body: [][]byte{payload}, applyOnce: true,
	}, &out)
	if err != nil {
		return hitl.Sent{}, c.failure(ctx, op, id, err)
	}
	return hitl.Sent{MessageID: out.messageID()}, nil
}

func (a idAnswer) messageID() string {
	for _, key := range []string{"message_id", "msgid", "id"} {
		if id := a.id(key); id != "" {
			return id
		}
	}
	return ""
}

func (c *Client) messagesPath(id string) string {
	return "/api/visitor/v1/" + c.screen + "/conversations/" + url.PathEscape(id) + "/messages"
}

// upload fetches m's file and posts it as the visitor. ok is false when
// the file should travel as a link instead.
func (c *Client) upload(ctx context.Context, s hitl.Session, m hitl.Message) (sent hitl.Sent, ok bool, err error) {
	asLink := func(reason string) (hitl.Sent, bool, error) {
		c.log.LogAttrs(ctx, slog.LevelInfo, "zoho media sent as link",
			slog.String("session_id", s.ID), slog.String("type", m.Type), slog.String("reason", reason))
		return hitl.Sent{}, false, nil
	}
	if c.media == nil {
		return asLink("no_fetcher")
	}
	f, err := c.media.Fetch(ctx, m.URL, m.Type, maxUploadBytes)
	switch {
	case ctx.Err() != nil:
		return hitl.Sent{}, false, ctx.Err()
	case err != nil:
		return asLink(media.Reason(err))
	}
	defer f.Close()
	var comment []string
	if m.Title != "" {
		comment = []string{"comment", m.Title}
	}
	form, err := f.Form("file", m.UploadName(), comment...)
	if err != nil {
		return hitl.Sent{}, false, fmt.Errorf("encode zoho upload: %w", err)
	}
	var out idAnswer
	err = c.call(ctx, request{
		op: "upload", method: http.MethodPost, path: c.messagesPath(s.ProviderConversationID),
		contentType: form.ContentType, form: form, applyOnce: true, timeout: 6 * c.api.Timeout(),
	}, &out)
	if refused(err) {
		if c.ended(ctx, s.ProviderConversationID) {
			return hitl.Sent{}, false, fmt.Errorf("%w (%w)", hitl.ErrConversationEnded, err)
		}
		return asLink("upload_refused")
	}
	if err != nil {
		return hitl.Sent{}, false, err
	}
	return hitl.Sent{MessageID: out.messageID()}, true, nil
}

// failure turns a failed send into the Bridge's error, checking whether a
// refusal means the conversation has ended.
func (c *Client) failure(ctx context.Context, op, id string, err error) error {
	if !errors.Is(err, hitl.ErrConversationEnded) && refused(err) && c.ended(ctx, id) {
		err = fmt.Errorf("%w (%w)", hitl.ErrConversationEnded, err)
	}
	return publicError(op, err)
}

// refused reports whether SalesIQ answered err for a reason of the request
// itself, not of the token, the load or the server.
func refused(err error) bool {
	var api *APIError
	return errors.As(err, &api) && !api.rateLimited() && !api.invalidToken() && api.Status < 500
}

// ended reads the conversation back to learn whether it has ended:
// SalesIQ documents no error code for a closed conversation. The state is
// read from what the get and close pages document
// (https://www.zoho.com/salesiq/help/developer-section/get-conversation-details-v2.html,
// https://www.zoho.com/salesiq/help/developer-section/close-chat-v2.html):
// an end_time or a missed_time, or chat_status's status_key / state_key
// naming an ended state (the list API's status values are open, waiting,
// connected, closed, missed and end). The label in "status" is display
// text and is not read.
func (c *Client) ended(ctx context.Context, id string) bool {
	var out struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	err := c.call(ctx, request{op: "get", method: http.MethodGet, path: c.conversationPath(id)}, &out)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "zoho conversation state unknown",
			slog.String("conversation_id", id), slog.String("error", outbound.Brief(err)))
		return false
	}
	return conversationEnded(out.Data)
}

// endedKeys are the chat_status keys of a conversation that has ended.
var endedKeys = map[string]bool{"closed": true, "missed": true, "end": true, "ended": true}

// conversationEnded reads a conversation object's state.
func conversationEnded(data map[string]json.RawMessage) bool {
	answer := idAnswer{Data: data}
	for _, key := range []string{"end_time", "missed_time"} {
		if t := answer.id(key); t != "" && t != "0" {
			return true
		}
	}
	var status struct {
		StatusKey json.RawMessage `json:"status_key"`
		StateKey  json.RawMessage `json:"state_key"`
	}
	if json.Unmarshal(data["chat_status"], &status) != nil {
		return false
	}
	keys := idAnswer{Data: map[string]json.RawMessage{"status": status.StatusKey, "state": status.StateKey}}
	return endedKeys[strings.ToLower(keys.id("status"))] || endedKeys[strings.ToLower(keys.id("state"))]
}

func (c *Client) conversationPath(id string) string {
	return "/api/v2/" + c.screen + "/conversations/" + url.PathEscape(id)
}

// Close ends the conversation through the operator API
// (https://www.zoho.com/salesiq/help/developer-section/close-chat-v2.html,
// /api/v2/{screen}/conversations/{id}/close, scope
// SalesIQ.conversations.UPDATE). The page shows no method; PUT is what
// SalesIQ documents for the other UPDATE calls on a conversation
// (rest-api-transfer-chat-v2.html: "Method: PUT"), so PUT goes first. If
// SalesIQ answers that the method is wrong (code 1004 or HTTP 405), POST
// is tried once, and when it works this client uses it from then on. A
// conversation that has already ended counts as closed.
func (c *Client) Close(ctx context.Context, s hitl.Session) error {
	id := s.ProviderConversationID
	if id == "" {
		return hitl.Errorf(hitl.CodeInternal, "session %s has no Zoho conversation", s.ID)
	}
	method, other := http.MethodPut, http.MethodPost
	if c.closeWithPost.Load() {
		method, other = other, method
	}
	r := request{op: "close", method: method, path: c.conversationPath(id) + "/close"}
	err := c.call(ctx, r, nil)
	var api *APIError
	if errors.As(err, &api) && api.wrongMethod() {
		c.log.LogAttrs(ctx, slog.LevelWarn, "zoho close method refused",
			slog.String("conversation_id", id), slog.String("method", method), slog.String("next", other))
		r.method = other
		if err = c.call(ctx, r, nil); err == nil {
			c.closeWithPost.Store(other == http.MethodPost)
		}
	}
	outcome := "closed"
	if err != nil {
		if !refused(err) || !c.ended(ctx, id) {
			return publicError("close zoho conversation "+id, err)
		}
		outcome = "already_ended"
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "zoho conversation closed",
		slog.String("session_id", s.ID), slog.String("conversation_id", id), slog.String("outcome", outcome))
	return nil
}
