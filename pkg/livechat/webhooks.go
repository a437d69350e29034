package livechat

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/outbound"
)

// Webhooks verifies and parses LiveChat webhook deliveries
// (https://platform.text.com/docs/management/webhooks). LiveChat puts the
// webhook's secret in the body (secret_key), not in a header.
//
// Parsing is strict only where it guards: the secret, the organization (or
// license) id, the action, chat ids and event ids. Any other field of an
// unexpected shape is logged by name and skipped, and what can still be
// read is forwarded.
//
// Authorship: an incoming_event carries the author's id only. Agents' ids
// are their emails, customers' are UUIDs. The end user's own messages come
// back as incoming_event too; those this package posted carry its custom_id
// and are dropped here. As a second guard, message events put the author id
// in ProviderEvent.Agent.ID, and the Bridge must drop an event whose
// Agent.ID equals the session's Visitor.ID (the customer's id).
//
// The integration's own agent (the owner of the personal access token,
// which starts every chat and transfers it to the group) and the bridge's
// bot are never reported as agents of the conversation: see
// WithIntegrationAgent and WithBot.
//
// Agents are reported with their name and avatar: learned from the user
// objects of user_added_to_chat, kept in a bounded cache, and otherwise
// looked up (see WithAgentLookup), since incoming_event, chat_transferred
// and events_marked_as_seen name agents by id only.
type Webhooks struct {
	secret       [sha256.Size]byte
	empty        bool
	organization string
	self         func(context.Context) (string, error)
	bot          string
	lookup       func(context.Context, string) (hitl.Agent, error)
	agents       *expirable.LRU[string, hitl.Agent]
	// misses are agents whose look-up failed lately; they are reported by
	// id until it is tried again.
	misses *expirable.LRU[string, struct{}]
	// warnedSelf is set once a failed look-up of the integration's agent
	// has been logged, until a look-up works.
	warnedSelf atomic.Bool
	log        *slog.Logger
}

// Bounds of the agent cache: agents are few, names and avatars change
// rarely, and a failed look-up is not repeated for every message.
const (
	agentCacheSize = 1000
	agentCacheTTL  = time.Hour
	agentMissTTL   = 5 * time.Minute
)

// selfLookupBudget bounds the one-time look-up of the integration's agent
// id inside a delivery, well within LiveChat's ~10 s webhook timeout.
const selfLookupBudget = 2 * time.Second

// NewWebhooks returns a parser that accepts deliveries carrying secret and
// addressed to organization. An empty secret accepts none. Envelopes of
// older registrations carry license_id instead of organization_id; the
// secret alone guards those.
func NewWebhooks(secret, organization string) *Webhooks {
	return &Webhooks{
		secret: sha256.Sum256([]byte(secret)), empty: secret == "", organization: organization, log: slog.Default(),
		agents: expirable.NewLRU[string, hitl.Agent](agentCacheSize, nil, agentCacheTTL),
		misses: expirable.NewLRU[string, struct{}](agentCacheSize, nil, agentMissTTL),
	}
}

// WithBot makes the parser drop what the bridge's own bot (Config.BotID)
// does or undergoes, as for the integration's agent.
func (w *Webhooks) WithBot(id string) *Webhooks {
	w.bot = id
	return w
}

// WithAgentLookup sets how an agent that no webhook described yet is
// looked up; Client.Agent is meant. A look-up gets a short budget and its
// failure only leaves the agent reported by id.
func (w *Webhooks) WithAgentLookup(lookup func(context.Context, string) (hitl.Agent, error)) *Webhooks {
	w.lookup = lookup
	return w
}

// WithIntegrationAgent makes the parser drop what the integration's own
// agent does or undergoes: its events, its being added to or removed from a
// chat, a transfer naming it, and the transfer it requests when it hands a
// chat to the group (unless that queues the chat). self returns that
// agent's id; Client.IntegrationAgentID is meant, which asks LiveChat once
// and remembers the answer. When self fails, a delivery naming an agent is
// refused with hitl.CodeUnavailable so that LiveChat retries it, except an
// incoming_event, which is forwarded (this package's own events are already
// recognised by their custom_id).
func (w *Webhooks) WithIntegrationAgent(self func(context.Context) (string, error)) *Webhooks {
	w.self = self
	return w
}

// WithLogger sets where skipped fields are reported; slog.Default()
// otherwise.
func (w *Webhooks) WithLogger(log *slog.Logger) *Webhooks {
	if log != nil {
		w.log = log
	}
	return w
}

// isLicenseID reports whether s is a license number: 1 to 20 digits.
func isLicenseID(s string) bool {
	return s != "" && len(s) <= 20 && strings.Trim(s, "0123456789") == ""
}

// Parse verifies a delivery's secret, then maps it to the events that
// concern a conversation. Errors are *hitl.Error: CodeUnauthenticated for a
// wrong or missing secret or another organization, CodeInvalid for a body
// whose guarding fields are malformed, CodeUnavailable when the
// integration's agent id cannot be learned. Actions and events of no
// interest give no events and no error, so the caller answers 200 and
// LiveChat does not retry.
func (w *Webhooks) Parse(body []byte) ([]hitl.ProviderEvent, error) {
	if !json.Valid(body) {
		return nil, hitl.Errorf(hitl.CodeInvalid, "livechat webhook: malformed JSON")
	}
	var head struct {
		SecretKey string `json:"secret_key"`
	}
	// A wrongly typed secret_key stays empty and fails the comparison,
	// which hashes first so it takes the same time whatever the lengths.
	_ = json.Unmarshal(body, &head)
	got := sha256.Sum256([]byte(head.SecretKey))
	if subtle.ConstantTimeCompare(got[:], w.secret[:]) != 1 || w.empty {
		return nil, hitl.Errorf(hitl.CodeUnauthenticated, "livechat webhook: secret_key does not match")
	}

	env, err := w.object("envelope", body)
	if err != nil {
		return nil, err
	}
	// The secret alone would let another organization's webhook, registered
	// with the same secret, speak in our chats.
	if raw, ok := env.m["organization_id"]; ok {
		var org string
		if json.Unmarshal(raw, &org) != nil || org != w.organization {
			return nil, hitl.Errorf(hitl.CodeUnauthenticated, "livechat webhook: delivery for another organization")
		}
	}
	if raw, ok := env.m["license_id"]; ok {
		var n json.Number
		if json.Unmarshal(raw, &n) != nil || !isLicenseID(n.String()) {
			var s string
			if json.Unmarshal(raw, &s) != nil || !isLicenseID(s) {
				return nil, hitl.Errorf(hitl.CodeInvalid, "livechat webhook: license_id is malformed")
			}
		}
	}
	action, err := env.id("action")
	if err != nil {
		return nil, err
	}
	parse, ok := actions[action]
	if !ok {
		return nil, nil
	}
	raw := bytes.TrimSpace(env.m["payload"])
	if len(raw) == 0 || raw[0] != '{' {
		return nil, hitl.Errorf(hitl.CodeInvalid, "livechat webhook: %s needs a payload object", action)
	}
	payload, err := w.object(action+".payload", raw)
	if err != nil {
		return nil, err
	}
	ev, err := parse(w, payload)
	if err != nil || ev == nil {
		return nil, err
	}
	ev.Provider = hitl.LiveChat
	return []hitl.ProviderEvent{*ev}, nil
}

// actions maps the webhook actions that concern a handoff to their
// parsers. A parser returns nil for a delivery that carries nothing for the
// bot. Other actions (incoming_chat, routing_status_set, …) are ignored.
var actions = map[string]func(*Webhooks, object) (*hitl.ProviderEvent, error){
	"incoming_event":            parseIncomingEvent,
	"user_added_to_chat":        parseUserAdded,
	"user_removed_from_chat":    parseUserRemoved,
	"chat_transferred":          parseTransferred,
	"chat_deactivated":          parseDeactivated,
	"events_marked_as_seen":     parseSeen,
	"thread_properties_updated": parseRating,
	"chat_properties_updated":   parseRating,
}

// parseIncomingEvent reads an event
// (https://platform.text.com/docs/management/webhooks#incoming_event, event
// structures in https://platform.text.com/docs/messaging/agent-chat-api/data-structures#events).
// Messages and files go to the bot; a rich message is rendered as text;
// system messages, forms and other types are ignored.
func parseIncomingEvent(w *Webhooks, p object) (*hitl.ProviderEvent, error) {
	chatID, err := p.id("chat_id")
	if err != nil {
		return nil, err
	}
	e, err := p.requiredObject("event")
	if err != nil {
		return nil, err
	}
	eventID, err := e.id("id")
	if err != nil {
		return nil, err
	}
	visibility := e.str("visibility")
	if visibility == "" {
		visibility = e.str("recipients") // the v3.1 name
	}
	author := e.str("author_id")
	if visibility != "all" || author == "" || strings.HasPrefix(e.str("custom_id"), customIDPrefix) {
		return nil, nil // agents-only note, system event, or our own message
	}
	var m hitl.Message
	switch e.str("type") {
	case "message":
		m = hitl.Message{Type: hitl.TypeText, Text: e.str("text")}
	case "file":
		m = hitl.Message{Type: hitl.TypeFile, URL: e.str("url"), Title: e.str("name"), ContentType: e.str("content_type")}
	case "rich_message":
		m = hitl.Message{Type: hitl.TypeText, Text: truncate(renderRichMessage(e))}
	default:
		return nil, nil // system_message, filled_form, form, custom, …
	}
	if strings.TrimSpace(m.Text) == "" && m.URL == "" {
		return nil, nil
	}
	switch self, err := w.selfID(); {
	case err != nil:
		// Once until a look-up works: until the ingress secret carries the
		// id, every message would say the same.
		if !w.warnedSelf.Swap(true) {
			w.log.Warn("livechat webhook: integration agent unknown; messages are forwarded unfiltered until it is known", "action", "incoming_event", "chat_id", chatID, "err", err)
		}
	case strings.EqualFold(author, self) || w.isBot(author):
		return nil, nil
	default:
		w.warnedSelf.Store(false)
	}
	return &hitl.ProviderEvent{
		ConversationID: chatID,
		Key:            "event/" + chatID + "/" + eventID,
		Type:           hitl.EventMessage,
		OccurredAt:     parseTime(e.str("created_at")),
		Agent:          w.agent(author),
		Message:        &m,
	}, nil
}

// renderRichMessage writes a rich message
// (https://platform.text.com/docs/messaging/agent-chat-api/data-structures#rich-message)
// as plain text: each element's title, subtitle and image link, then its
// buttons, with the link or number a url or phone button carries.
func renderRichMessage(e object) string {
	var blocks []string
	for i, raw := range e.list("elements") {
		el, ok := e.w.optionalObject(e.part+".elements."+strconv.Itoa(i), raw)
		if !ok {
			continue
		}
		var lines []string
		for _, f := range []string{"title", "subtitle"} {
			if s := strings.TrimSpace(el.str(f)); s != "" {
				lines = append(lines, s)
			}
		}
		if img, ok := el.obj("image"); ok {
			if u := img.str("url"); u != "" {
				lines = append(lines, u)
			}
		}
		for j, braw := range el.list("buttons") {
			b, ok := el.w.optionalObject(el.part+".buttons."+strconv.Itoa(j), braw)
			if !ok {
				continue
			}
			line := strings.TrimSpace(b.str("text"))
			if t := b.str("type"); (t == "url" || t == "phone") && b.str("value") != "" {
				line = strings.TrimSpace(line + " " + b.str("value"))
			}
			if line != "" {
				lines = append(lines, "• "+line)
			}
		}
		if len(lines) > 0 {
			blocks = append(blocks, strings.Join(lines, "\n"))
		}
	}
	return strings.Join(blocks, "\n\n")
}

// parseUserAdded reads user_added_to_chat
// (https://platform.text.com/docs/management/webhooks#user_added_to_chat):
// an agent joining with visibility "all" is the chat's assignee.
func parseUserAdded(w *Webhooks, p object) (*hitl.ProviderEvent, error) {
	chatID, err := p.id("chat_id")
	if err != nil {
		return nil, err
	}
	user, ok := p.obj("user")
	if !ok {
		return nil, nil
	}
	userID := user.str("id")
	userType := p.str("user_type")
	if userType == "" {
		userType = user.str("type")
	}
	// The customer joining is our own doing; an agent added with
	// visibility "agents" is a supervisor, not the assignee.
	if userID == "" || userType != "agent" || user.str("visibility") == "agents" {
		return nil, nil
	}
	if mine, err := w.isSelf(userID); err != nil || mine {
		return nil, err
	}
	agent := w.learn(hitl.Agent{ID: userID, Name: user.str("name"), AvatarURL: avatarURL(user.str("avatar"))})
	return &hitl.ProviderEvent{
		ConversationID: chatID,
		Key:            "user_added_to_chat/" + chatID + "/" + p.str("thread_id") + "/" + userID,
		Type:           hitl.EventAssigned,
		Agent:          agent,
	}, nil
}

// parseUserRemoved reads user_removed_from_chat
// (https://platform.text.com/docs/management/webhooks#user_removed_from_chat):
// an agent leaving is reported as hitl.unassigned naming that agent; the
// Bridge decides whether it was the assignee.
func parseUserRemoved(w *Webhooks, p object) (*hitl.ProviderEvent, error) {
	chatID, err := p.id("chat_id")
	if err != nil {
		return nil, err
	}
	userID := p.str("user_id")
	if userID == "" || p.str("user_type") == "customer" {
		return nil, nil
	}
	if mine, err := w.isSelf(userID); err != nil || mine {
		return nil, err
	}
	return &hitl.ProviderEvent{
		ConversationID: chatID,
		Key:            "user_removed_from_chat/" + chatID + "/" + p.str("thread_id") + "/" + userID,
		Type:           hitl.EventUnassigned,
		Agent:          w.agent(userID),
	}, nil
}

// parseTransferred reads chat_transferred
// (https://platform.text.com/docs/management/webhooks#chat_transferred),
// with "queue" present when the chat waits after the transfer: then it is
// hitl.queued with the queue's position and wait_time, the approximate
// wait in seconds (https://platform.text.com/docs/messaging/agent-chat-api/data-structures,
// chat's "queue"). The integration's own handoff (requested by its agent)
// is reported only when it queues the chat; when routing assigns someone
// at once, that agent's user_added_to_chat tells it. No webhook reports
// later changes of the queue position: LiveChat pushes those over RTM only
// (queue_positions_updated).
func parseTransferred(w *Webhooks, p object) (*hitl.ProviderEvent, error) {
	chatID, err := p.id("chat_id")
	if err != nil {
		return nil, err
	}
	var groups, agents []string
	if to, ok := p.obj("transferred_to"); ok {
		for _, g := range to.ints("group_ids") {
			groups = append(groups, strconv.Itoa(g))
		}
		agents = to.strs("agent_ids")
	}
	queue, queued := p.obj("queue")
	self, err := w.selfID()
	if err != nil {
		return nil, unavailable("chat_transferred", err)
	}
	ours := func(id string) bool { return self != "" && strings.EqualFold(id, self) || w.isBot(id) }
	var others []string
	for _, a := range agents {
		if !ours(a) {
			others = append(others, a)
		}
	}
	requester := p.str("requester_id")
	if !queued && (len(others) == 0 && len(agents) > 0 || self != "" && strings.EqualFold(requester, self)) {
		return nil, nil
	}
	ev := &hitl.ProviderEvent{ConversationID: chatID, Type: hitl.EventTransferred}
	queuedAt := ""
	if queued {
		queuedAt = queue.str("queued_at")
		ev.Type, ev.OccurredAt = hitl.EventQueued, parseTime(queuedAt)
		ev.Queue = &hitl.Queue{Position: queue.count("position"), EstimatedWaitSeconds: queue.count("wait_time")}
	} else if len(others) > 0 {
		ev.Agent = w.agent(others[0])
	}
	// Retried deliveries repeat the payload; different transfers of one
	// thread differ in target, reason or queueing time.
	ev.Key = strings.Join([]string{"chat_transferred", chatID, p.str("thread_id"), p.str("reason"),
		strings.Join(agents, ","), strings.Join(groups, ","), queuedAt}, "/")
	return ev, nil
}

// parseSeen reads events_marked_as_seen
// (https://platform.text.com/docs/management/webhooks#events_marked_as_seen):
// an agent (ids are emails) other than the integration's marking the chat
// read up to seen_up_to is hitl.seen. The customer's own marks (sent for
// the end user, whose id is a UUID) and the bot's are not reported.
func parseSeen(w *Webhooks, p object) (*hitl.ProviderEvent, error) {
	chatID, err := p.id("chat_id")
	if err != nil {
		return nil, err
	}
	userID, upTo := p.str("user_id"), p.str("seen_up_to")
	seen := parseTime(upTo)
	if !strings.Contains(userID, "@") || seen.IsZero() {
		return nil, nil
	}
	if mine, err := w.isSelf(userID); err != nil || mine {
		return nil, err
	}
	return &hitl.ProviderEvent{
		ConversationID: chatID,
		Key:            "events_marked_as_seen/" + chatID + "/" + userID + "/" + upTo,
		Type:           hitl.EventSeen,
		Agent:          w.agent(userID),
		SeenUpTo:       seen,
	}, nil
}

// parseRating reads the rating namespace of thread_properties_updated and
// chat_properties_updated
// (https://platform.text.com/docs/management/webhooks#thread_properties_updated,
// #chat_properties_updated): properties.rating.score, 0 for a bad and 1
// for a good rating, and properties.rating.comment
// (https://platform.text.com/docs/messaging/references/default-properties#rating).
// The customer SDK's rateChat sets both at once on the latest thread
// (https://platform.text.com/docs/extending-chat-widget/customer-sdk#ratechat).
// The payload carries only what changed, so an update without a score
// (a comment alone, or other properties) is not reported.
func parseRating(w *Webhooks, p object) (*hitl.ProviderEvent, error) {
	chatID, err := p.id("chat_id")
	if err != nil {
		return nil, err
	}
	props, ok := p.obj("properties")
	if !ok {
		return nil, nil
	}
	rating, ok := props.obj("rating")
	if !ok {
		return nil, nil
	}
	var score int
	if raw, ok := rating.m["score"]; !ok || json.Unmarshal(raw, &score) != nil || score < 0 || score > 1 {
		if ok {
			rating.skip("score", "not 0 or 1")
		}
		return nil, nil
	}
	comment := rating.str("comment")
	return &hitl.ProviderEvent{
		ConversationID: chatID,
		Key:            "rating/" + chatID + "/" + p.str("thread_id") + "/" + strconv.Itoa(score) + "/" + comment,
		Type:           hitl.EventRated,
		Rating:         &hitl.Rating{Score: score, OutOf: 1, Comment: comment},
	}, nil
}

// parseDeactivated reads chat_deactivated
// (https://platform.text.com/docs/management/webhooks#chat_deactivated):
// without user_id the router closed the thread. The integration's own
// deactivation (the bot stopped, or an abandoned open) is dropped.
func parseDeactivated(w *Webhooks, p object) (*hitl.ProviderEvent, error) {
	chatID, err := p.id("chat_id")
	if err != nil {
		return nil, err
	}
	userID := p.str("user_id")
	reason := hitl.ReasonAgentClosed
	if userID == "" {
		reason = hitl.ReasonTimeout
	} else if mine, err := w.isSelf(userID); err != nil || mine {
		return nil, err
	}
	return &hitl.ProviderEvent{
		ConversationID: chatID,
		Key:            "chat_deactivated/" + chatID + "/" + p.str("thread_id"),
		Type:           hitl.EventStopped,
		Reason:         reason,
	}, nil
}

// selfID returns the integration's agent id, "" when the parser was given
// no way to learn it.
func (w *Webhooks) selfID() (string, error) {
	if w.self == nil {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), selfLookupBudget)
	defer cancel()
	return w.self(ctx)
}

// isSelf reports whether id is the integration's agent or the bot; a
// failed look-up is a CodeUnavailable error.
func (w *Webhooks) isSelf(id string) (bool, error) {
	if w.isBot(id) {
		return true, nil
	}
	self, err := w.selfID()
	if err != nil {
		return false, unavailable("agent event", err)
	}
	return self != "" && strings.EqualFold(id, self), nil
}

func (w *Webhooks) isBot(id string) bool { return w.bot != "" && strings.EqualFold(id, w.bot) }

// agentLookupBudget bounds an agent look-up inside a delivery.
const agentLookupBudget = 2 * time.Second

// learn keeps what a webhook tells of an agent and returns it, completed
// from the cache when the webhook left a field out.
func (w *Webhooks) learn(a hitl.Agent) *hitl.Agent {
	if known, ok := w.agents.Get(a.ID); ok {
		a.Name, a.AvatarURL = cmp.Or(a.Name, known.Name), cmp.Or(a.AvatarURL, known.AvatarURL)
	}
	if a.Name != "" || a.AvatarURL != "" {
		w.agents.Add(a.ID, a)
		w.misses.Remove(a.ID)
	}
	return &a
}

// agent returns the agent with id with its name and avatar when known: from
// the cache, else looked up once within agentLookupBudget. Only agent ids
// (emails) are looked up: a customer's UUID or a bot's id is reported as
// it is. A failed look-up gives the agent by id, and is not tried again
// for agentMissTTL.
func (w *Webhooks) agent(id string) *hitl.Agent {
	if a, ok := w.agents.Get(id); ok {
		return &a
	}
	if w.lookup == nil || !strings.Contains(id, "@") || w.misses.Contains(id) {
		return &hitl.Agent{ID: id}
	}
	ctx, cancel := context.WithTimeout(context.Background(), agentLookupBudget)
	defer cancel()
	a, err := w.lookup(ctx, id)
	if err != nil || (a.Name == "" && a.AvatarURL == "") {
		outcome := "no name"
		if err != nil {
			outcome = outbound.Brief(err)
		}
		w.log.Warn("livechat agent look-up failed; agent reported by id", "agent_id", id, "error", outcome)
		w.misses.Add(id, struct{}{})
		return &hitl.Agent{ID: id}
	}
	a.ID = id
	w.agents.Add(id, a)
	return &a
}

func unavailable(what string, err error) error {
	return &hitl.Error{Code: hitl.CodeUnavailable, Message: "livechat webhook: the integration's agent id cannot be learned now",
		Err: err, RetryAfter: 10 * time.Second}
}

// object is one JSON object of a delivery, read field by field. part names
// it in errors and logs ("incoming_event.payload.event").
type object struct {
	w    *Webhooks
	part string
	m    map[string]json.RawMessage
}

// object reads a JSON object that must be one.
func (w *Webhooks) object(part string, raw []byte) (object, error) {
	var m map[string]json.RawMessage
	if err := hitl.DecodeJSON(raw, &m); err != nil || m == nil {
		return object{}, hitl.Errorf(hitl.CodeInvalid, "livechat webhook: %s must be an object", part)
	}
	return object{w: w, part: part, m: m}, nil
}

// optionalObject reads a JSON object that may be absent or null; another
// shape is logged and skipped.
func (w *Webhooks) optionalObject(part string, raw json.RawMessage) (object, bool) {
	if raw == nil || string(raw) == "null" {
		return object{}, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		w.log.Warn("livechat webhook field skipped", "field", part, "problem", "not an object")
		return object{}, false
	}
	return object{w: w, part: part, m: m}, true
}

func (o object) skip(name, problem string) {
	o.w.log.Warn("livechat webhook field skipped", "field", o.part+"."+name, "problem", problem)
}

// id reads a field that identifies (action, chat_id, event id): a
// non-empty string, or the delivery is refused.
func (o object) id(name string) (string, error) {
	var s string
	if json.Unmarshal(o.m[name], &s) != nil || s == "" {
		return "", hitl.Errorf(hitl.CodeInvalid, "livechat webhook: %s.%s must be a non-empty string", o.part, name)
	}
	return s, nil
}

// requiredObject reads a nested object the delivery cannot do without.
func (o object) requiredObject(name string) (object, error) {
	raw := o.m[name]
	if raw == nil {
		return object{}, hitl.Errorf(hitl.CodeInvalid, "livechat webhook: %s.%s is missing", o.part, name)
	}
	return o.w.object(o.part+"."+name, raw)
}

// str reads an optional string; "" when absent, null or of another shape.
func (o object) str(name string) string {
	raw, ok := o.m[name]
	if !ok || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		o.skip(name, "not a string")
		return ""
	}
	return s
}

// obj reads an optional nested object.
func (o object) obj(name string) (object, bool) {
	return o.w.optionalObject(o.part+"."+name, o.m[name])
}

// list reads an optional array.
func (o object) list(name string) []json.RawMessage {
	raw, ok := o.m[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	var l []json.RawMessage
	if json.Unmarshal(raw, &l) != nil {
		o.skip(name, "not an array")
		return nil
	}
	return l
}

// strs reads an optional array of strings, skipping other items.
func (o object) strs(name string) []string {
	var out []string
	for _, raw := range o.list(name) {
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" {
			o.skip(name, "item not a string")
			continue
		}
		out = append(out, s)
	}
	return out
}

// ints reads an optional array of integers, skipping other items.
func (o object) ints(name string) []int {
	var out []int
	for _, raw := range o.list(name) {
		var n int
		if json.Unmarshal(raw, &n) != nil {
			o.skip(name, "item not an integer")
			continue
		}
		out = append(out, n)
	}
	return out
}

// count reads an optional non-negative whole number (LiveChat sends them
// as JSON numbers); 0 when absent or of another shape.
func (o object) count(name string) int {
	raw, ok := o.m[name]
	if !ok || string(raw) == "null" {
		return 0
	}
	var f float64
	if json.Unmarshal(raw, &f) != nil || f < 0 || f > math.MaxInt32 {
		o.skip(name, "not a non-negative number")
		return 0
	}
	return int(f)
}

// parseTime reads LiveChat's RFC 3339 timestamps; the zero time when absent
// or malformed.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
