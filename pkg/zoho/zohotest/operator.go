package zohotest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"time"
)

func newKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("zohotest: generate RSA key: %v", err))
	}
	return k
}

func publicPEM(k *rsa.PrivateKey) string {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(fmt.Sprintf("zohotest: encode public key: %v", err))
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// PublicKeyPEM is the public key of the current signing key, as SalesIQ
// hands it out for a webhook.
func (s *Server) PublicKeyPEM() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return publicPEM(s.key)
}

// RotateKey replaces the signing key, as generating a webhook's second key
// does, and returns the new public key.
func (s *Server) RotateKey() string {
	k := newKey()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = k
	return publicPEM(k)
}

// Sign returns the x-siqsignature of body under the signing key: the oldest
// key of a webhook created through the API, else the current key.
func (s *Server) Sign(body []byte) string {
	s.mu.Lock()
	k := s.signingKey()
	s.mu.Unlock()
	sum := sha256.Sum256(body)
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		panic(fmt.Sprintf("zohotest: sign: %v", err))
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// Post delivers body to the webhook URL once, with signature in
// x-siqsignature when it is not empty: the way to send forged, unsigned
// or tampered deliveries.
func (s *Server) Post(body []byte, signature string) (int, error) {
	u, _ := s.Webhook()
	if u == "" {
		return 0, errors.New("zohotest: no webhook URL set")
	}
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("zohotest: deliver webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("x-siqsignature", signature)
	}
	resp, err := webhookClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("zohotest: deliver webhook: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Envelope renders a webhook body for event about a conversation as it is
// now, at the given attempt, as SalesIQ builds it.
func (s *Server) Envelope(event, conversationID string, attempt int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[conversationID]
	if !ok {
		return nil, fmt.Errorf("zohotest: no conversation %s", conversationID)
	}
	return json.Marshal(s.envelope(event, c.ID, s.conversationJSON(c), s.Now(), attempt))
}

// envelope wraps an entity in SalesIQ's webhook envelope. Callers hold
// s.mu.
func (s *Server) envelope(event, conversationID string, entity map[string]any, at time.Time, attempt int) map[string]any {
	return map[string]any{
		"entity_type": "conversation",
		"webhook":     map[string]any{"id": s.webhookID},
		"org_id":      s.opts.OrgID,
		"event":       event,
		"entity_id":   conversationID,
		"attempt":     attempt,
		"version":     "1",
		// A JSON number, as the webhook page's sample has it.
		"app_id":     json.Number(s.opts.AppID),
		"event_time": millis(at),
		"entity":     entity,
	}
}

// OperatorAccepts makes op pick up a waiting conversation, and sends
// conversation.attender.updated. It returns the webhook answer's status.
func (s *Server) OperatorAccepts(conversationID string, op Operator) (int, error) {
	return s.act(conversationID, func(c *Conversation) (string, map[string]any, error) {
		if c.Status != StatusWaiting {
			return "", nil, fmt.Errorf("conversation is %s", c.Status)
		}
		c.Attender, c.Status, c.AttendedAt = &op, StatusAttended, s.Now()
		return "conversation.attender.updated", s.conversationJSON(c), nil
	})
}

// OperatorReplies posts text from the conversation's attender and sends
// conversation.operator.replied.
func (s *Server) OperatorReplies(conversationID, text string) (int, error) {
	return s.reply(conversationID, Message{Text: text})
}

// OperatorSendsFile posts a file, with an optional comment, from the
// conversation's attender and sends conversation.operator.replied. The
// file is served at the message's FileURL.
func (s *Server) OperatorSendsFile(conversationID, name, contentType string, body []byte, comment string) (int, error) {
	return s.reply(conversationID, Message{Text: comment, FileName: name, ContentType: contentType, File: body})
}

func (s *Server) reply(conversationID string, m Message) (int, error) {
	return s.act(conversationID, func(c *Conversation) (string, map[string]any, error) {
		if c.ended() || c.Attender == nil {
			return "", nil, fmt.Errorf("conversation is %s", c.Status)
		}
		event, entity := s.replyEntity(c, m)
		return event, entity, nil
	})
}

// replyEntity stores m as the attender's message and renders
// conversation.operator.replied: the conversation with message{sender,
// msgid, text} as the webhook page shows it, and the file, which the page
// does not document, in message.file. Callers hold s.mu.
func (s *Server) replyEntity(c *Conversation, m Message) (string, map[string]any) {
	m.Sender, m.SenderID = "operator", c.Attender.ID
	if m.File != nil {
		m.FileURL = s.StoreFile(m.FileName, m.ContentType, m.File)
	}
	m = s.appendMessage(c, m)
	message := map[string]any{
		"sender": map[string]any{"name": c.Attender.Name, "id": c.Attender.ID, "type": "operator"},
		"meta":   map[string]any{},
		"msgid":  m.ID,
		"text":   m.Text,
		"type":   "text",
		"time":   millis(m.Time),
	}
	if m.File != nil {
		message["type"] = "file"
		message["file"] = map[string]any{"name": m.FileName, "url": m.FileURL, "content_type": m.ContentType, "size": len(m.File)}
	}
	entity := s.conversationJSON(c)
	entity["message"] = message
	return "conversation.operator.replied", entity
}

// TransferAccepted makes to the conversation's attender, as when to
// accepts a transfer, and sends conversation.transfer.accepted.
func (s *Server) TransferAccepted(conversationID string, to Operator) (int, error) {
	return s.act(conversationID, func(c *Conversation) (string, map[string]any, error) {
		if c.ended() {
			return "", nil, fmt.Errorf("conversation is %s", c.Status)
		}
		from := c.Attender
		c.Attender, c.Status, c.AttendedAt = &to, StatusAttended, s.Now()
		entity := s.conversationJSON(c)
		transfer := map[string]any{"to": operatorJSON(to)}
		if from != nil {
			transfer["from"] = operatorJSON(*from)
		}
		entity["transfer"] = transfer
		return "conversation.transfer.accepted", entity, nil
	})
}

// Completes ends the conversation as its operator and sends
// conversation.completed.
func (s *Server) Completes(conversationID string) (int, error) {
	return s.act(conversationID, func(c *Conversation) (string, map[string]any, error) {
		if c.ended() {
			return "", nil, fmt.Errorf("conversation is %s", c.Status)
		}
		c.Status, c.EndedBy, c.EndedAt = StatusClosed, "agent", s.Now()
		entity := s.conversationJSON(c)
		entity["ended_by"] = "agent"
		return "conversation.completed", entity, nil
	})
}

// Missed ends a conversation nobody picked up and sends
// conversation.missed.
func (s *Server) Missed(conversationID string) (int, error) {
	return s.act(conversationID, func(c *Conversation) (string, map[string]any, error) {
		if c.Status != StatusWaiting {
			return "", nil, fmt.Errorf("conversation is %s", c.Status)
		}
		c.Status, c.EndedAt = StatusMissed, s.Now()
		return "conversation.missed", s.conversationJSON(c), nil
	})
}

// VisitorRates rates the conversation as its visitor, before or after it
// ended, and sends conversation.rated
// (https://prewww.zoho.com/salesiq/help/webhook-events-conversation-rated-v1.html):
// the conversation's id and status with rating (a number, as the page's
// sample has it; omitted when 0), feedback (omitted when empty: the page's
// feedback-only delivery has no rating, its rating-only one no feedback),
// owner (the attender) and visitor.
func (s *Server) VisitorRates(conversationID string, rating int, feedback string) (int, error) {
	return s.act(conversationID, func(c *Conversation) (string, map[string]any, error) {
		if rating == 0 && feedback == "" {
			return "", nil, errors.New("neither rating nor feedback")
		}
		entity := map[string]any{
			"id": c.ID, "visitor_conversation_id": c.VisitorConversationID, "status": chatStatus[c.Status].label,
			"visitor": map[string]any{"id": c.VisitorID, "name": c.VisitorName, "email_id": c.VisitorEmail, "type": "lead"},
		}
		if rating != 0 {
			entity["rating"] = rating
		}
		if feedback != "" {
			entity["feedback"] = feedback
		}
		if c.Attender != nil {
			owner := operatorJSON(*c.Attender)
			owner["type"] = "operator"
			entity["owner"] = owner
		}
		return "conversation.rated", entity, nil
	})
}

// act changes a conversation under the lock and delivers the webhook it
// produces after releasing it, so the receiver may call the API meanwhile.
func (s *Server) act(conversationID string, change func(*Conversation) (event string, entity map[string]any, err error)) (int, error) {
	s.mu.Lock()
	c, ok := s.convs[conversationID]
	if !ok {
		s.mu.Unlock()
		return 0, fmt.Errorf("zohotest: no conversation %s", conversationID)
	}
	event, entity, err := change(c)
	if err != nil {
		s.mu.Unlock()
		return 0, fmt.Errorf("zohotest: conversation %s: %w", conversationID, err)
	}
	env := s.envelope(event, c.ID, entity, s.Now(), 1)
	s.mu.Unlock()
	_, times := s.Webhook()
	return s.deliver(env, times)
}

var webhookClient = &http.Client{Timeout: 5 * time.Second}

// maxAttempts is a delivery and SalesIQ's three retries.
const maxAttempts = 4

// deliver posts env, signed, with attempt 1, 2, …: times deliveries at
// least, and retries of a status ≥ 300 up to maxAttempts, RetrySpacing
// apart, as SalesIQ does (the webhook page). It returns the last status.
func (s *Server) deliver(env map[string]any, times int) (int, error) {
	for attempt := 1; ; attempt++ {
		status, err := s.attempt(env, attempt)
		if err != nil {
			return 0, err
		}
		if attempt >= times && (status < 300 || attempt >= maxAttempts) {
			return status, nil
		}
		if status >= 300 && !s.pause() {
			return status, nil
		}
	}
}

// deliverEarly posts a webhook an API call caused: the first attempt now,
// SalesIQ's retries in the background, so that they do not hold the
// call's answer up.
func (s *Server) deliverEarly(env map[string]any) {
	if status, err := s.attempt(env, 1); err != nil || status < 300 {
		return
	}
	s.retrying.Go(func() {
		for attempt := 2; attempt <= maxAttempts && s.pause(); attempt++ {
			if status, err := s.attempt(env, attempt); err != nil || status < 300 {
				return
			}
		}
	})
}

// attempt posts one attempt of env, signed.
func (s *Server) attempt(env map[string]any, attempt int) (int, error) {
	env = maps.Clone(env)
	env["attempt"] = attempt
	body, err := json.Marshal(env)
	if err != nil {
		return 0, fmt.Errorf("zohotest: encode webhook: %w", err)
	}
	return s.Post(body, s.Sign(body))
}

// pause waits RetrySpacing; false when the server is closing.
func (s *Server) pause() bool {
	t := time.NewTimer(s.opts.RetrySpacing)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stop:
		return false
	}
}
