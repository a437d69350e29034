package zoho

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// SignatureHeader carries SalesIQ's signature of a webhook delivery:
// base64 of RSA PKCS #1 v1.5 over the SHA-256 of the raw body.
const SignatureHeader = "X-Siqsignature"

// WebhookConfig configures Webhooks.
type WebhookConfig struct {
	// PublicKeys are the webhook's public keys, PEM ("PUBLIC KEY" or "RSA
	// PUBLIC KEY") or bare base64 DER; one, or two while a key is rotated.
	PublicKeys []string
	// AppID and OrgID are the portal's; deliveries for others are refused.
	AppID string
	OrgID string
	// Now is the clock a delivery's event_time is checked against; default
	// time.Now.
	Now func() time.Time
	// Logger receives the names of fields of unexpected shape; default
	// slog.Default().
	Logger *slog.Logger
}

// Webhooks verifies and parses SalesIQ webhook deliveries.
//
// It is strict only where a field guards: the signature, app_id and
// org_id, the event name, the conversation id and the delivery's age.
// Everything else is read tolerantly: ids may be strings or numbers (read
// as their literal text, never through a float64), and an optional field of
// an unexpected shape (an array, a string, an object or null where another
// was documented) is logged by name and skipped, so that an operator's text
// is never lost because an attachment looked different.
type Webhooks struct {
	keys         []*rsa.PublicKey
	appID, orgID string
	now          func() time.Time
	log          *slog.Logger
}

// NewWebhooks parses the keys and returns a parser.
func NewWebhooks(cfg WebhookConfig) (*Webhooks, error) {
	var problems []string
	w := &Webhooks{appID: cfg.AppID, orgID: cfg.OrgID, now: cfg.Now, log: cfg.Logger}
	if w.now == nil {
		w.now = time.Now
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	switch n := len(cfg.PublicKeys); {
	case n == 0:
		problems = append(problems, "a webhook public key is required")
	case n > 2:
		problems = append(problems, "at most two webhook public keys are accepted")
	}
	for i, s := range cfg.PublicKeys {
		k, err := parsePublicKey(s)
		if err != nil {
			problems = append(problems, fmt.Sprintf("webhook public key %d: %v", i+1, err))
			continue
		}
		w.keys = append(w.keys, k)
	}
	if cfg.AppID == "" || cfg.OrgID == "" {
		problems = append(problems, "app id and org id are required")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("zoho webhook config: %s", strings.Join(problems, "; "))
	}
	return w, nil
}

func parsePublicKey(s string) (*rsa.PublicKey, error) {
	der := []byte(nil)
	if block, _ := pem.Decode([]byte(strings.TrimSpace(s))); block != nil {
		der = block.Bytes
	} else {
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, errors.New("neither PEM nor base64")
		}
		der = b
	}
	var key *rsa.PublicKey
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		key, _ = k.(*rsa.PublicKey)
	} else if k, err := x509.ParsePKCS1PublicKey(der); err == nil {
		key = k
	}
	switch {
	case key == nil:
		return nil, errors.New("not an RSA public key")
	case key.N.BitLen() < 2048:
		return nil, errors.New("RSA key shorter than 2048 bits")
	}
	return key, nil
}

// verify checks body's signature against each key.
func (w *Webhooks) verify(signature string, body []byte) bool {
	signature = strings.Join(strings.Fields(signature), "")
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		if sig, err = base64.RawStdEncoding.DecodeString(signature); err != nil {
			return false
		}
	}
	sum := sha256.Sum256(body)
	for _, k := range w.keys {
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig) == nil {
			return true
		}
	}
	return false
}

// Delivery ages. SalesIQ times a delivery out after 5 s and retries it
// three times a minute apart (https://help.zoho.com/portal/en/kb/salesiq-2-0/admin-guide/webhooks/articles/webhooksinsalesiq,
// DESIGN §4.1), so its last attempt leaves about three minutes after the
// event; a signed delivery whose event_time is older than maxDeliveryAge is
// a replay and refused. maxClockSkew is how far in the future event_time
// may be, for SalesIQ's clock running ahead of ours.
const (
	maxDeliveryAge = 10 * time.Minute
	maxClockSkew   = time.Minute
)

// openingWindow is how soon after a conversation started a delivery about
// it may precede the answer to the open call: see mayPrecedeOpen.
const openingWindow = 2 * time.Minute

// Parse verifies a delivery's signature, then its app and org and its age,
// then maps it to events. Errors are *hitl.Error: CodeUnauthenticated for
// a missing or wrong signature, a delivery of another app or org, or one
// outside the replay window (a replay is a failed authentication: the
// signature is genuine but the delivery is not fresh); CodeInvalid for a
// body that is not a JSON object, an event name that is not a string, a
// known event without an entity object, or a conversation id that cannot
// be read. Events of no interest give no events and no error, so the
// caller answers 200 and SalesIQ does not retry.
func (w *Webhooks) Parse(h http.Header, body []byte) ([]hitl.ProviderEvent, error) {
	if !w.verify(h.Get(SignatureHeader), body) {
		return nil, hitl.Errorf(hitl.CodeUnauthenticated, "zoho webhook: missing or invalid x-siqsignature")
	}
	env, ok := decodeObject(body)
	if !ok {
		return nil, hitl.Errorf(hitl.CodeInvalid, "zoho webhook: the body is not a JSON object")
	}
	appID, _ := idText(env["app_id"])
	orgID, _ := idText(env["org_id"])
	if appID != w.appID || orgID != w.orgID {
		return nil, hitl.Errorf(hitl.CodeUnauthenticated, "zoho webhook: delivery for another app or org")
	}
	event, ok := env["event"].(string)
	if !ok {
		return nil, hitl.Errorf(hitl.CodeInvalid, "zoho webhook: event must be a string")
	}
	f := &fields{}
	at, err := w.eventTime(f, env["event_time"])
	if err != nil {
		return nil, err
	}
	parse, known := events[event]
	if !known {
		return nil, nil
	}
	entity, ok := env["entity"].(map[string]any)
	if !ok {
		return nil, hitl.Errorf(hitl.CodeInvalid, "zoho webhook: %s needs an entity object", event)
	}
	ids, err := conversationIDs(f, env, entity)
	if err != nil {
		return nil, hitl.Errorf(hitl.CodeInvalid, "zoho webhook: %s: %v", event, err)
	}
	evs := parse(f, ids[0], entity)
	maybeOpening := earlyEvents[event] && mayPrecedeOpen(f, entity, at, w.now())
	for i := range evs {
		evs[i].Provider, evs[i].ConversationID, evs[i].OccurredAt = hitl.Zoho, ids[0], at
		if len(ids) > 1 {
			evs[i].AltConversationIDs = ids[1:]
		}
		evs[i].MaybeOpening = maybeOpening
	}
	if len(f.odd) > 0 {
		w.log.Warn("zoho webhook fields skipped",
			slog.String("event", event), slog.String("conversation_id", ids[0]), slog.Any("fields", f.odd))
	}
	return evs, nil
}

// eventTime reads the delivery's event_time, epoch milliseconds as a string
// or a number (RFC 3339 is accepted too), and refuses it outside the
// replay window. Documented sample deliveries exist without event_time, so
// an absent or unreadable one is logged and the delivery accepted: its
// signature still holds, and the Bridge drops repeats of the same event.
func (w *Webhooks) eventTime(f *fields, v any) (time.Time, error) {
	if v == nil {
		f.missing("event_time")
		return time.Time{}, nil
	}
	s, _ := idText(v)
	at := parseTime(s)
	if at.IsZero() {
		f.skip("event_time", v)
		return at, nil
	}
	now := w.now()
	switch {
	case at.Before(now.Add(-maxDeliveryAge)):
		return time.Time{}, hitl.Errorf(hitl.CodeUnauthenticated,
			"zoho webhook: delivery too old (event_time more than %s ago): refused as a replay", maxDeliveryAge)
	case at.After(now.Add(maxClockSkew)):
		return time.Time{}, hitl.Errorf(hitl.CodeUnauthenticated,
			"zoho webhook: event_time more than %s in the future: refused", maxClockSkew)
	}
	return at, nil
}

// conversationIDs returns the conversation's id, then its other ids. The
// webhook page's conversation entity carries its id in "id", beside
// "visitor_conversation_id", and the envelope repeats the id in
// "entity_id"; "conversation_id" is read too, as conversation objects of
// the REST API carry it. The first present of id, conversation_id and
// entity_id is the conversation id and must be a string or a number; the
// others are aliases, skipped when unreadable.
func conversationIDs(f *fields, env, entity map[string]any) ([]string, error) {
	candidates := []struct {
		name  string
		value any
	}{
		{"entity.id", entity["id"]},
		{"entity.conversation_id", entity["conversation_id"]},
		{"entity_id", env["entity_id"]},
		{"entity.visitor_conversation_id", entity["visitor_conversation_id"]},
	}
	var ids []string
	for i, c := range candidates {
		if c.value == nil {
			continue
		}
		id, ok := idText(c.value)
		switch {
		case !ok && len(ids) == 0 && i < 3:
			return nil, fmt.Errorf("%s is not an id", c.name)
		case !ok:
			f.skip(c.name, c.value)
		case !slices.Contains(ids, id):
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("names no conversation")
	}
	return ids, nil
}

// earlyEvents are the events that can reach us before the open call has
// answered: SalesIQ assigns a free operator as soon as a conversation
// opens, so the assignment, the operator's greeting and a quick transfer
// may be delivered while the visitor API's answer is still on its way.
var earlyEvents = map[string]bool{
	"conversation.attender.updated":  true,
	"conversation.operator.replied":  true,
	"conversation.transfer.accepted": true,
}

// mayPrecedeOpen decides whether an early event may concern a conversation
// the bridge is opening, so that the Bridge holds it rather than dropping
// it when no session has the conversation yet. The entity does not carry
// the user_id the bridge opens the conversation with (the webhook page's
// visitor object has SalesIQ's own visitor id, name, email and phone), so
// the test is the conversation's start: opened_time (webhook entity) or
// start_time (the REST API's conversation objects) within openingWindow
// before the event (or now, when event_time is absent). A conversation
// that started earlier is clearly not one being opened and is not held; one
// whose start is not given gets the benefit of the doubt.
func mayPrecedeOpen(f *fields, entity map[string]any, at, now time.Time) bool {
	if at.IsZero() {
		at = now
	}
	for _, key := range []string{"opened_time", "start_time"} {
		v, present := entity[key]
		if !present || v == nil {
			continue
		}
		s, ok := idText(v)
		started := parseTime(s)
		if !ok || started.IsZero() {
			f.skip("entity."+key, v)
			continue
		}
		return !started.Before(at.Add(-openingWindow))
	}
	return true
}

// events maps the webhook events that concern a handoff to their parsers.
// Keys identify the happening, so retried deliveries (attempt > 1) repeat
// them.
var events = map[string]func(f *fields, conv string, e map[string]any) []hitl.ProviderEvent{
	"conversation.attender.updated":  agentEvent(hitl.EventAssigned, "attender"),
	"conversation.transfer.accepted": agentEvent(hitl.EventTransferred, "transfer"),
	"conversation.operator.replied":  parseReply,
	"conversation.completed": func(_ *fields, conv string, _ map[string]any) []hitl.ProviderEvent {
		return []hitl.ProviderEvent{{Key: "completed/" + conv, Type: hitl.EventStopped, Reason: hitl.ReasonAgentClosed}}
	},
	"conversation.missed": func(_ *fields, conv string, _ map[string]any) []hitl.ProviderEvent {
		return []hitl.ProviderEvent{{Key: "missed/" + conv, Type: hitl.EventStopped, Reason: hitl.ReasonMissed}}
	},
	"conversation.rated": parseRated,
}

// agentEvent maps an assignment or a transfer to the operator who now has
// the conversation: entity.attender, or else entity.owner (the webhook
// page's entity carries owner). Without either there is nothing to report:
// the delivery is accepted and the gap logged.
func agentEvent(typ hitl.EventType, kind string) func(f *fields, conv string, e map[string]any) []hitl.ProviderEvent {
	return func(f *fields, conv string, e map[string]any) []hitl.ProviderEvent {
		agent := f.operator(e, "entity.", "attender")
		if agent == nil {
			agent = f.operator(e, "entity.", "owner")
		}
		if agent == nil {
			f.missing("entity.attender")
			return nil
		}
		attended := f.id(e, "entity.", "attended_time")
		return []hitl.ProviderEvent{{
			Key:   strings.Join([]string{kind, conv, agent.ID, attended}, "/"),
			Type:  typ,
			Agent: agent,
		}}
	}
}

// parseReply maps an operator's message: its files first, then its text
// (a file's comment), each keyed by the message id. Files are looked for
// in message.file, message.attachment, message.attachments and
// message.files, as objects, arrays of objects or bare URLs: the webhook
// page documents the text message only.
func parseReply(f *fields, conv string, e map[string]any) []hitl.ProviderEvent {
	m := f.object(e, "entity.", "message")
	if m == nil {
		f.missing("entity.message")
		return nil
	}
	sender := f.object(m, "entity.message.", "sender")
	if strings.EqualFold(f.str(sender, "entity.message.sender.", "type"), "visitor") {
		return nil
	}
	agent := f.agent(sender, "entity.message.sender.")
	if agent == nil {
		agent = f.operator(e, "entity.", "attender")
	}
	key := "message/" + conv + "/"
	if id := f.id(m, "entity.message.", "msgid"); id != "" {
		key += id
	} else {
		// Retries carry the same message: its canonical JSON identifies it.
		f.missing("entity.message.msgid")
		raw, _ := json.Marshal(m)
		key += hitl.EventID(string(raw))
	}
	var out []hitl.ProviderEvent
	for i, file := range f.files(m) {
		out = append(out, hitl.ProviderEvent{
			Key:     key + "/file/" + strconv.Itoa(i),
			Type:    hitl.EventMessage,
			Agent:   agent,
			Message: &hitl.Message{Type: hitl.TypeFile, URL: file.url, Title: file.name, ContentType: file.contentType},
		})
	}
	if text := f.str(m, "entity.message.", "text"); strings.TrimSpace(text) != "" {
		out = append(out, hitl.ProviderEvent{
			Key:     key,
			Type:    hitl.EventMessage,
			Agent:   agent,
			Message: &hitl.Message{Type: hitl.TypeText, Text: text},
		})
	}
	return out
}

// fields reads optional fields of a decoded entity, noting those of an
// unexpected shape by name (never by value) for one log line.
type fields struct {
	odd []string
}

func (f *fields) skip(name string, v any) { f.odd = append(f.odd, name+" ("+jsonKind(v)+")") }

func (f *fields) missing(name string) { f.odd = append(f.odd, name+" (missing)") }

// str reads a string field; anything else but absence is noted.
func (f *fields) str(o map[string]any, path, key string) string {
	switch v := o[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		f.skip(path+key, v)
		return ""
	}
}

// id reads an id or a time, a string or a number, as its literal text.
func (f *fields) id(o map[string]any, path, key string) string {
	v := o[key]
	if v == nil {
		return ""
	}
	s, ok := idText(v)
	if !ok {
		f.skip(path+key, v)
	}
	return s
}

// object reads an object field.
func (f *fields) object(o map[string]any, path, key string) map[string]any {
	switch v := o[key].(type) {
	case nil:
		return nil
	case map[string]any:
		return v
	default:
		f.skip(path+key, v)
		return nil
	}
}

// operator reads an operator object (attender, owner) as an agent.
func (f *fields) operator(o map[string]any, path, key string) *hitl.Agent {
	return f.agent(f.object(o, path, key), path+key+".")
}

// agent reads an operator's id, name and picture. The webhook page
// documents id, name and email_id on attender, owner and sender, and no
// picture; the REST API's operator objects carry image_url as a path on
// the SalesIQ server that only an authorized caller can download
// (https://www.zoho.com/salesiq/help/developer-section/rest-api-operator-details.html).
// So image_url is passed on only when it is an absolute http(s) URL, which
// the bot can fetch; a path is dropped.
func (f *fields) agent(o map[string]any, path string) *hitl.Agent {
	id := f.id(o, path, "id")
	if id == "" {
		return nil
	}
	a := &hitl.Agent{ID: id, Name: f.str(o, path, "name")}
	if u := f.str(o, path, "image_url"); hitl.HTTPURL(u) {
		a.AvatarURL = u
	}
	return a
}

type file struct{ url, name, contentType string }

// files gathers a message's files wherever and however they come; one
// without an absolute http(s) URL is noted and skipped.
func (f *fields) files(m map[string]any) []file {
	var out []file
	add := func(name string, v any) {
		switch v := v.(type) {
		case string:
			if hitl.HTTPURL(v) {
				out = append(out, file{url: v})
				return
			}
		case map[string]any:
			for _, k := range []string{"url", "download_url", "file_url", "link"} {
				if u, _ := v[k].(string); hitl.HTTPURL(u) {
					out = append(out, file{
						url:         u,
						name:        cmp.Or(f.str(v, name+".", "name"), f.str(v, name+".", "file_name")),
						contentType: cmp.Or(f.str(v, name+".", "content_type"), f.str(v, name+".", "mime_type")),
					})
					return
				}
			}
		}
		f.skip(name, v)
	}
	for _, key := range []string{"file", "attachment", "attachments", "files"} {
		switch v := m[key].(type) {
		case nil:
		case []any:
			for i, item := range v {
				add(fmt.Sprintf("entity.message.%s[%d]", key, i), item)
			}
		default:
			add("entity.message."+key, v)
		}
	}
	return out
}

// decodeObject decodes body as one JSON object, numbers as json.Number so
// that ids above 2^53 keep every digit.
func decodeObject(body []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil || v == nil || dec.More() {
		return nil, false
	}
	return v, true
}

// idText reads an id, a code or a time sent as a string or a number.
func idText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		s := strings.TrimSpace(v)
		return s, s != ""
	case json.Number:
		return v.String(), true
	}
	return "", false
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// parseTime reads SalesIQ's times, epoch milliseconds as a string or a
// number; RFC 3339 is accepted too. The zero time when absent.
func parseTime(s string) time.Time {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms).UTC()
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	return time.Time{}
}
