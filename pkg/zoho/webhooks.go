package zoho

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
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
}

// Webhooks verifies and parses SalesIQ webhook deliveries.
//
// SalesIQ's documentation gives the envelope and the conversation entity
// but not every field of every event. Where it is silent the parser is
// liberal: ids may be strings or numbers; the agent of an assignment or a
// transfer is entity.attender or else entity.owner; a reply's files may be
// in message.file, message.attachment or message.attachments.
type Webhooks struct {
	keys         []*rsa.PublicKey
	appID, orgID string
}

// NewWebhooks parses the keys and returns a parser.
func NewWebhooks(cfg WebhookConfig) (*Webhooks, error) {
	var problems []string
	w := &Webhooks{appID: cfg.AppID, orgID: cfg.OrgID}
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

// envelope is a delivery's outer object. webhook.id names the webhook, not
// the delivery, and attempt counts retries: neither identifies an event.
type envelope struct {
	OrgID     flexString      `json:"org_id"`
	AppID     flexString      `json:"app_id"`
	Event     string          `json:"event"`
	EntityID  flexString      `json:"entity_id"`
	EventTime flexString      `json:"event_time"`
	Entity    json.RawMessage `json:"entity"`
}

// operator is an attender, an owner or a message's sender.
type operator struct {
	ID   flexString `json:"id"`
	Name string     `json:"name"`
	Type string     `json:"type"`
}

type attachment struct {
	Name        string `json:"name"`
	FileName    string `json:"file_name"`
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
}

// entity is the conversation of a conversation.* event.
type entity struct {
	ID             flexString `json:"id"`
	ConversationID flexString `json:"conversation_id"`
	Attender       *operator  `json:"attender"`
	Owner          *operator  `json:"owner"`
	AttendedTime   flexString `json:"attended_time"`
	Message        *struct {
		Sender      operator     `json:"sender"`
		MsgID       flexString   `json:"msgid"`
		Text        string       `json:"text"`
		File        *attachment  `json:"file"`
		Attachment  *attachment  `json:"attachment"`
		Attachments []attachment `json:"attachments"`
	} `json:"message"`
}

// Parse verifies a delivery's signature, then its app and org, then maps
// it to events. Errors are *hitl.Error: CodeUnauthenticated for a missing
// or wrong signature or a delivery of another app or org, CodeInvalid for
// a malformed body. Events of no interest give no events and no error, so
// the caller answers 200 and SalesIQ does not retry.
func (w *Webhooks) Parse(h http.Header, body []byte) ([]hitl.ProviderEvent, error) {
	if !w.verify(h.Get(SignatureHeader), body) {
		return nil, hitl.Errorf(hitl.CodeUnauthenticated, "zoho webhook: missing or invalid x-siqsignature")
	}
	var env envelope
	if err := decode("envelope", body, &env); err != nil {
		return nil, err
	}
	if string(env.AppID) != w.appID || string(env.OrgID) != w.orgID {
		return nil, hitl.Errorf(hitl.CodeUnauthenticated, "zoho webhook: delivery for another app or org")
	}
	parse, ok := events[env.Event]
	if !ok {
		return nil, nil
	}
	if e := bytes.TrimSpace(env.Entity); len(e) == 0 || e[0] != '{' {
		return nil, hitl.Errorf(hitl.CodeInvalid, "zoho webhook: %s needs an entity object", env.Event)
	}
	var e entity
	if err := decode(env.Event+" entity", env.Entity, &e); err != nil {
		return nil, err
	}
	conv := firstNonEmpty(string(env.EntityID), firstNonEmpty(string(e.ConversationID), string(e.ID)))
	if conv == "" {
		return nil, hitl.Errorf(hitl.CodeInvalid, "zoho webhook: %s names no conversation", env.Event)
	}
	evs, err := parse(conv, e)
	at := parseTime(string(env.EventTime))
	for i := range evs {
		evs[i].Provider, evs[i].ConversationID, evs[i].OccurredAt = hitl.Zoho, conv, at
	}
	return evs, err
}

// events maps the webhook events that concern a handoff to their parsers.
// Keys identify the happening, so retried deliveries (attempt > 1) repeat
// them.
var events = map[string]func(conv string, e entity) ([]hitl.ProviderEvent, error){
	"conversation.attender.updated": func(conv string, e entity) ([]hitl.ProviderEvent, error) {
		return agentEvent(hitl.EventAssigned, "attender", conv, e)
	},
	"conversation.transfer.accepted": func(conv string, e entity) ([]hitl.ProviderEvent, error) {
		return agentEvent(hitl.EventTransferred, "transfer", conv, e)
	},
	"conversation.operator.replied": parseReply,
	"conversation.completed": func(conv string, _ entity) ([]hitl.ProviderEvent, error) {
		return []hitl.ProviderEvent{{Key: "completed/" + conv, Type: hitl.EventStopped, Reason: hitl.ReasonAgentClosed}}, nil
	},
	"conversation.missed": func(conv string, _ entity) ([]hitl.ProviderEvent, error) {
		return []hitl.ProviderEvent{{Key: "missed/" + conv, Type: hitl.EventStopped, Reason: hitl.ReasonMissed}}, nil
	},
}

// agentEvent maps an assignment or a transfer to the operator who now
// has the conversation.
func agentEvent(typ hitl.EventType, kind, conv string, e entity) ([]hitl.ProviderEvent, error) {
	op := e.Attender
	if op == nil || op.ID == "" {
		op = e.Owner
	}
	if op == nil || op.ID == "" {
		return nil, hitl.Errorf(hitl.CodeInvalid, "zoho webhook: %s event names no attender or owner", kind)
	}
	return []hitl.ProviderEvent{{
		Key:   strings.Join([]string{kind, conv, string(op.ID), string(e.AttendedTime)}, "/"),
		Type:  typ,
		Agent: &hitl.Agent{ID: string(op.ID), Name: op.Name},
	}}, nil
}

// parseReply maps an operator's message: its files first, then its text
// (a file's comment), each keyed by the message id.
func parseReply(conv string, e entity) ([]hitl.ProviderEvent, error) {
	m := e.Message
	if m == nil || m.MsgID == "" {
		return nil, hitl.Errorf(hitl.CodeInvalid, "zoho webhook: operator reply needs message.msgid")
	}
	if strings.EqualFold(m.Sender.Type, "visitor") {
		return nil, nil
	}
	agent := &hitl.Agent{ID: string(m.Sender.ID), Name: m.Sender.Name}
	key := "message/" + conv + "/" + string(m.MsgID)
	var files []attachment
	for _, a := range []*attachment{m.File, m.Attachment} {
		if a != nil {
			files = append(files, *a)
		}
	}
	files = append(files, m.Attachments...)
	var out []hitl.ProviderEvent
	for i, f := range files {
		if !absoluteURL(f.URL) {
			continue
		}
		out = append(out, hitl.ProviderEvent{
			Key:   key + "/file/" + strconv.Itoa(i),
			Type:  hitl.EventMessage,
			Agent: agent,
			Message: &hitl.Message{Type: hitl.TypeFile, URL: f.URL,
				Title: firstNonEmpty(f.Name, f.FileName), ContentType: f.ContentType},
		})
	}
	if strings.TrimSpace(m.Text) != "" {
		out = append(out, hitl.ProviderEvent{
			Key:     key,
			Type:    hitl.EventMessage,
			Agent:   agent,
			Message: &hitl.Message{Type: hitl.TypeText, Text: m.Text},
		})
	}
	return out, nil
}

// decode reads JSON into v; errors are CodeInvalid and name the part and
// field at fault without echoing the input.
func decode(part string, raw []byte, v any) error {
	if err := hitl.DecodeJSON(raw, v); err != nil {
		return hitl.Errorf(hitl.CodeInvalid, "zoho webhook %s: %s", part, hitl.ErrorMessage(err))
	}
	return nil
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
