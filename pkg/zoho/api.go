package zoho

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/media"
	"github.com/hitl-bridge/hitl-bridge/pkg/outbound"
)

// SalesIQ error codes this package acts on.
const (
	codeWrongMethod  = 1004 // "Invalid Request Type": the method is not the endpoint's
	codeInvalidToken = 1008 // invalid or expired OAuth token
	codeRateLimited  = 1023 // too many requests
)

// APIError is an error answer from SalesIQ, {"error":{"code","message"}},
// with HTTP 200 as often as not, or a non-2xx status. Its text is for
// logs; callers see a hitl.Error.
type APIError struct {
	outbound.Refused
	Code int
}

func (e *APIError) Error() string {
	return fmt.Sprintf("zoho %s: HTTP %d code %d: %s", e.Op, e.Status, e.Code, e.Message)
}

func (e *APIError) invalidToken() bool {
	return e.Status == http.StatusUnauthorized || e.Code == codeInvalidToken
}

// wrongMethod reports whether SalesIQ refused the HTTP method itself.
func (e *APIError) wrongMethod() bool {
	return e.Status == http.StatusMethodNotAllowed || e.Code == codeWrongMethod
}

func (e *APIError) rateLimited() bool {
	return e.Status == http.StatusTooManyRequests || e.Code == codeRateLimited
}

// flexString reads a JSON string or number as its literal text: Zoho sends
// ids and codes either way, and ids do not fit a float64.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeFor[string]()}
	}
	*f = flexString(n)
	return nil
}

// apiError reads an error body, if body is one. A body whose "error" is a
// string (as the accounts server words it) counts too.
func apiError(op string, status int, body []byte) *APIError {
	var envelope struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &envelope) != nil || len(envelope.Error) == 0 || string(envelope.Error) == "null" {
		if status >= 200 && status <= 299 {
			return nil
		}
		return &APIError{Refused: outbound.Refused{Op: op, Status: status, Message: http.StatusText(status)}}
	}
	e := &APIError{Refused: outbound.Refused{Op: op, Status: status}}
	var detail struct {
		Code    flexString `json:"code"`
		Message string     `json:"message"`
	}
	var text string
	switch {
	case json.Unmarshal(envelope.Error, &detail) == nil:
		e.Code, _ = strconv.Atoi(string(detail.Code))
		e.Message = detail.Message
	case json.Unmarshal(envelope.Error, &text) == nil:
		e.Message = text
	}
	e.Message = hitl.Clip(e.Message, 200, "")
	return e
}

// Retry tells pkg/outbound what the refusal means: SalesIQ did not
// process a rate-limited call, a refused token is renewed once, and a 5xx
// may have been applied.
func (e *APIError) Retry() outbound.Kind {
	return outbound.KindOf(e.Status, e.rateLimited(), e.invalidToken())
}

// Brief is the refusal's short form for logs.
func (e *APIError) Brief() string { return fmt.Sprintf("HTTP %d code %d", e.Status, e.Code) }

// Public is what the Bridge is told: a message naming the SalesIQ error
// code only.
func (e *APIError) Public() (string, error) {
	if e.invalidToken() {
		return "Zoho SalesIQ refused the access token", nil
	}
	return fmt.Sprintf("Zoho SalesIQ refused %s (code %d)", e.Op, e.Code), nil
}

// policy is how pkg/outbound reads SalesIQ's answers: an error body is a
// refusal whatever the status, HTTP 200 included.
var policy = outbound.Policy{Name: "zoho", Title: "Zoho SalesIQ", Read: func(op string, status int, body []byte) outbound.Refusal {
	if e := apiError(op, status, body); e != nil {
		return e
	}
	return nil
}}

// publicError turns a failure of op into the error the Bridge sees.
var publicError = policy.PublicError

// request is one SalesIQ call.
type request struct {
	op, method, path string
	contentType      string
	// body is sent as its parts in sequence, so a file goes out without
	// being copied into a request buffer.
	body [][]byte
	// form, when set, is the body instead: a file streamed from its
	// spooled copy, read again from the start by each attempt.
	form *media.Form
	// applyOnce is outbound.Request.ApplyOnce: opening a conversation and
	// posting a message are not repeated when SalesIQ may have applied
	// them; close and get are.
	applyOnce bool
	// timeout overrides the Client's per-attempt timeout.
	timeout time.Duration
}

// call runs r with the current access token and decodes the answer into
// out when given. When SalesIQ refuses the token (HTTP 401 or code 1008)
// pkg/outbound asks Tokens for a new one and repeats r once; a second
// refusal is final.
func (c *Client) call(ctx context.Context, r request, out any) error {
	tok, err := c.tokens.AccessToken(ctx)
	if err != nil {
		return err
	}
	_, body, err := c.api.Do(ctx, outbound.Request{
		Op: r.op, ApplyOnce: r.applyOnce, Timeout: r.timeout,
		Build: func(ctx context.Context) (*http.Request, error) { return c.build(ctx, r, tok) },
		Refresh: func(ctx context.Context) (err error) {
			tok, err = c.tokens.Invalidate(ctx, tok)
			return err
		},
	})
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("zoho %s: unexpected answer: %w", r.op, err)
	}
	return nil
}

// build makes r's HTTP request with token.
func (c *Client) build(ctx context.Context, r request, token string) (*http.Request, error) {
	var payload io.Reader
	var size int64
	if len(r.body) > 0 {
		parts := make([]io.Reader, len(r.body))
		for i, b := range r.body {
			parts[i] = bytes.NewReader(b)
			size += int64(len(b))
		}
		payload = io.MultiReader(parts...)
	}
	if r.form != nil {
		payload, size = r.form.Reader(), r.form.Size()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.baseURL+r.path, payload)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Zoho-oauthtoken "+token)
	return req, nil
}
