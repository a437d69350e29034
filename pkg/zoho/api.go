package zoho

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/media"
	"github.com/hitl-bridge/hitl-bridge/pkg/retry"
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
	Op      string
	Status  int
	Code    int
	Message string
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
		return &APIError{Op: op, Status: status, Message: http.StatusText(status)}
	}
	e := &APIError{Op: op, Status: status}
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
	e.Message = truncate(e.Message, 200)
	return e
}

// publicError turns a failure of op into the error the Bridge sees: the
// hitl sentinels for rate limiting, a provider error otherwise. Public
// messages name the SalesIQ error code only.
func publicError(op string, err error) error {
	var he *hitl.Error
	if errors.As(err, &he) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var api *APIError
	if !errors.As(err, &api) {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s: %w", op, err)
		}
		return hitl.Wrap(hitl.CodeProvider, fmt.Errorf("%s: %w", op, err), "Zoho SalesIQ could not be reached")
	}
	switch {
	case api.rateLimited():
		return fmt.Errorf("%s: %w (%w)", op, hitl.ErrRateLimited, api)
	case api.invalidToken():
		return hitl.Wrap(hitl.CodeProvider, fmt.Errorf("%s: %w", op, api), "Zoho SalesIQ refused the access token")
	}
	return hitl.Wrap(hitl.CodeProvider, fmt.Errorf("%s: %w", op, api),
		fmt.Sprintf("Zoho SalesIQ refused %s (code %d)", api.Op, api.Code))
}

const maxAttempts = 3

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
	// applyOnce marks calls that must not be repeated when SalesIQ may
	// have applied them (opening a conversation, posting a message): they
	// are retried only when SalesIQ said it did not process them (429,
	// 1023) or the request never left. Others (close, get) are also
	// retried on 5xx and lost answers. This is pkg/livechat's policy.
	applyOnce bool
	// timeout overrides the Client's per-attempt timeout.
	timeout time.Duration
}

// call runs r with the current access token. When SalesIQ refuses the
// token (HTTP 401 or code 1008) it asks Tokens for a new one and repeats
// r once; a second refusal is final.
func (c *Client) call(ctx context.Context, r request, out any) error {
	tok, err := c.tokens.AccessToken(ctx)
	if err != nil {
		return err
	}
	body, err := c.do(ctx, r, tok)
	var api *APIError
	if errors.As(err, &api) && api.invalidToken() {
		c.log.LogAttrs(ctx, slog.LevelWarn, "zoho access token refused", slog.String("op", r.op))
		if tok, err = c.tokens.Invalidate(ctx, tok); err != nil {
			return err
		}
		body, err = c.do(ctx, r, tok)
	}
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

// do runs r with a timeout per attempt and bounded retries with capped
// exponential backoff and jitter. It returns the answer's body, an
// *APIError, or a transport error. A refused token is returned at once.
func (c *Client) do(ctx context.Context, r request, token string) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		resp, body, err := c.attempt(ctx, r, token)
		var again bool
		var after string
		var api *APIError
		switch {
		case err == nil:
			return body, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.As(err, &api):
			if api.invalidToken() {
				return nil, err
			}
			again = api.rateLimited() || (!r.applyOnce && api.Status >= 500)
			after = resp.Header.Get("Retry-After")
		default:
			again = !r.applyOnce || notSent(err)
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "zoho call failed",
			slog.String("op", r.op), slog.Int("attempt", attempt),
			slog.Bool("retry", again && attempt < maxAttempts), slog.String("error", errorKind(err)))
		if !again || attempt == maxAttempts {
			return nil, err
		}
		if err := retry.Sleep(ctx, retry.Backoff(attempt, c.retryDelay, after)); err != nil {
			return nil, err
		}
	}
}

func (c *Client) attempt(ctx context.Context, r request, token string) (*http.Response, []byte, error) {
	timeout := c.timeout
	if r.timeout > 0 {
		timeout = r.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
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
		return nil, nil, fmt.Errorf("build zoho %s request: %w", r.op, err)
	}
	req.ContentLength = size
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Zoho-oauthtoken "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // its text quotes the URL
		}
		return nil, nil, fmt.Errorf("zoho %s: %w", r.op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("zoho %s: read answer: %w", r.op, err)
	}
	if e := apiError(r.op, resp.StatusCode, body); e != nil {
		return resp, nil, e
	}
	return resp, body, nil
}

// notSent reports whether a transport error happened before the request
// could reach SalesIQ.
func notSent(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &dns) || (errors.As(err, &op) && op.Op == "dial")
}

func errorKind(err error) string {
	var api *APIError
	if errors.As(err, &api) {
		return fmt.Sprintf("HTTP %d code %d", api.Status, api.Code)
	}
	return err.Error()
}
