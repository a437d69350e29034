package delivery

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
	"net/url"
	"strconv"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// Sender delivers one event to the bot; an error means "not accepted, try
// again later".
type Sender interface {
	Send(ctx context.Context, e hitl.Event) error
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, e hitl.Event) error

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, e hitl.Event) error { return f(ctx, e) }

// Signature header names of native callbacks.
const (
	HeaderEventID   = "Hitl-Event-Id"
	HeaderSignature = "Hitl-Signature"
)

// Sign returns the Hitl-Signature value for body at time t:
// "t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Callback posts native callbacks (DESIGN 3.1) to the bot's URL.
type Callback struct {
	URL    string
	Secret []byte
	Client *http.Client
	Now    func() time.Time
}

// Send posts e, signed; any 2xx answer is acceptance.
func (c *Callback) Send(ctx context.Context, e hitl.Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	return Post(ctx, c.Client, c.URL, body, map[string]string{
		HeaderEventID:   e.ID,
		HeaderSignature: Sign(c.Secret, now(), body),
	})
}

// Post sends a JSON body to a bot's endpoint and treats any 2xx answer as
// acceptance. Redirects are never followed: a 3xx is a failed delivery,
// which the outbox retries, so a bot endpoint cannot point the bridge's
// signed events (or a Botpress webhook's body) at another address, such as
// one inside the bridge's network. Its errors never contain the URL, which
// may carry a secret (a Botpress webhook id).
func Post(ctx context.Context, client *http.Client, target string, body []byte, headers map[string]string) error {
	noRedirects := *client
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return errors.New("build callback request: invalid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hitl-bridge")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post callback: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("bot answered %d", resp.StatusCode)
	}
	return nil
}
