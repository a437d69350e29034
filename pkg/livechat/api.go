package livechat

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
	"regexp"
	"strconv"
	"strings"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/media"
	"github.com/hitl-bridge/hitl-bridge/pkg/retry"
)

// APIError is an error answer from LiveChat: {"error":{"type","message",
// "data"}} and its HTTP status. Its text is for logs; callers see a
// hitl.Error.
type APIError struct {
	Action  string
	Status  int
	Type    string
	Message string
	// Region is data.region of a misdirected_request: the data centre the
	// request must be sent to.
	Region string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("livechat %s: HTTP %d %s: %s", e.Action, e.Status, e.Type, e.Message)
}

func (e *APIError) rateLimited() bool {
	return e.Status == http.StatusTooManyRequests || e.Type == "too_many_requests"
}

func (e *APIError) unauthenticated() bool {
	return e.Status == http.StatusUnauthorized || e.Type == "authentication"
}

var (
	errorType = regexp.MustCompile(`^[a-z_]{1,40}$`)
	// regionName is a LiveChat data centre: "dal", "fra", and the
	// "fra-a"-style names the docs' own tooling knows.
	regionName = regexp.MustCompile(`^[a-z]{2,5}(-[a-z0-9]{1,5})?$`)
)

// parseAPIError reads an error body. The accounts server answers OAuth-style
// {"error":"...","error_description":"..."} or {"identity_exception":"..."}
// instead of the API's object.
func parseAPIError(action string, status int, body []byte) *APIError {
	e := &APIError{Action: action, Status: status}
	var api struct {
		Error json.RawMessage `json:"error"`
	}
	var oauth struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Identity    string `json:"identity_exception"`
		OAuth       string `json:"oauth_exception"`
		Exception   string `json:"exception_description"`
	}
	var detail struct {
		Type    string          `json:"type"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	switch {
	case json.Unmarshal(body, &api) == nil && json.Unmarshal(api.Error, &detail) == nil && detail.Type != "":
		e.Type, e.Message = detail.Type, detail.Message
		var data struct {
			Region string `json:"region"`
		}
		// data is optional and only misdirected_request documents it; a
		// region of another shape is ignored.
		if json.Unmarshal(detail.Data, &data) == nil && regionName.MatchString(data.Region) {
			e.Region = data.Region
		}
	case json.Unmarshal(body, &oauth) == nil && oauth.Error+oauth.Identity+oauth.OAuth != "":
		e.Type = oauth.Error + oauth.Identity + oauth.OAuth
		e.Message = oauth.Description + oauth.Exception
	}
	if !errorType.MatchString(e.Type) {
		e.Type = "unknown"
	}
	if len(e.Message) > 200 {
		e.Message = e.Message[:200]
	}
	return e
}

// publicError turns a failure of op into the error the Bridge sees: the
// hitl sentinels for an ended chat and for rate limiting, a provider error
// otherwise. Public messages name the LiveChat error type only.
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
		return hitl.Wrap(hitl.CodeProvider, fmt.Errorf("%s: %w", op, err), "LiveChat could not be reached")
	}
	switch {
	case api.Type == "chat_inactive":
		return fmt.Errorf("%s: %w (%w)", op, hitl.ErrConversationEnded, api)
	case api.rateLimited():
		return fmt.Errorf("%s: %w (%w)", op, hitl.ErrRateLimited, api)
	}
	return hitl.Wrap(hitl.CodeProvider, fmt.Errorf("%s: %w", op, api),
		fmt.Sprintf("LiveChat refused %s (%s)", api.Action, api.Type))
}

const maxAttempts = 3

// request is one LiveChat call. build makes a fresh *http.Request for each
// attempt.
type request struct {
	action string
	// applyOnce marks calls that must not be repeated when LiveChat may
	// have applied them (send_event, start_chat, creating a customer): they
	// are retried only when LiveChat said it did not process them (429,
	// too_many_requests) or the request never left. Others are also retried
	// on 5xx and lost answers.
	applyOnce bool
	// regional marks Agent and Customer Chat API calls, which go to the
	// organization's data centre and follow misdirected_request.
	regional bool
	build    func(ctx context.Context) (*http.Request, error)
}

// do runs r with a timeout per attempt and bounded retries with capped
// exponential backoff and jitter. It returns the 2xx answer, an *APIError,
// or a transport error.
//
// A misdirected_request naming a region is followed once, at once and
// outside the attempt count: LiveChat did not process the request, and the
// region is remembered for every later call. The Agent and Customer Chat
// API reference pages list the error with data.region as "where the client
// should be connected"
// (https://platform.text.com/docs/messaging/agent-chat-api#errors,
// https://platform.text.com/docs/messaging/customer-chat-api#errors); the
// former "Data centers" section of those pages (livechat-public-docs
// before commit c91d789) said to send that region as X-Region on the same
// host.
func (c *Client) do(ctx context.Context, r request) (*http.Response, []byte, error) {
	redirected := false
	for attempt := 1; ; attempt++ {
		resp, body, err := c.attempt(ctx, r)
		var again bool
		var after string
		var api *APIError
		switch {
		case err == nil:
			return resp, body, nil
		case ctx.Err() != nil:
			return nil, nil, ctx.Err()
		case r.regional && !redirected && errors.As(err, &api) && api.Type == "misdirected_request" && api.Region != "":
			redirected = true
			c.region.Store(&api.Region)
			c.log.LogAttrs(ctx, slog.LevelWarn, "livechat call sent to another region",
				slog.String("action", r.action), slog.String("region", api.Region))
			attempt--
			continue
		case errors.As(err, &api):
			again = api.rateLimited() || (!r.applyOnce && api.Status >= 500)
			after = resp.Header.Get("Retry-After")
		default:
			again = !r.applyOnce || notSent(err)
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "livechat call failed",
			slog.String("action", r.action), slog.Int("attempt", attempt),
			slog.Bool("retry", again && attempt < maxAttempts), slog.String("error", errorKind(err)))
		if !again || attempt == maxAttempts {
			return nil, nil, err
		}
		if err := retry.Sleep(ctx, retry.Backoff(attempt, c.retryDelay, after)); err != nil {
			return nil, nil, err
		}
	}
}

func (c *Client) attempt(ctx context.Context, r request) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := r.build(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("build %s request: %w", r.action, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // its text quotes the URL
		}
		return nil, nil, fmt.Errorf("livechat %s: %w", r.action, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("livechat %s: read answer: %w", r.action, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, nil, parseAPIError(r.action, resp.StatusCode, body)
	}
	return resp, body, nil
}

// notSent reports whether a transport error happened before the request
// could reach LiveChat.
func notSent(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &dns) || (errors.As(err, &op) && op.Op == "dial")
}

func errorKind(err error) string {
	var api *APIError
	if errors.As(err, &api) {
		return strconv.Itoa(api.Status) + " " + api.Type
	}
	return err.Error()
}

// agentCall posts a JSON action to the Agent Chat API as the integration's
// agent (Basic PAT) and decodes the answer into out when given.
func (c *Client) agentCall(ctx context.Context, action string, applyOnce bool, in, out any) error {
	return c.agentCallAs(ctx, "Basic "+c.agentToken, action, applyOnce, in, out)
}

// agentCallAs posts a JSON action to the Agent Chat API with the given
// Authorization header (the PAT, or a bot's Bearer token).
func (c *Client) agentCallAs(ctx context.Context, authorization, action string, applyOnce bool, in, out any) error {
	return c.call(ctx, c.apiURL+"/agent/action/"+action, authorization, action, applyOnce, in, out)
}

// customerCall posts an action to the Customer Chat API as the visitor,
// JSON in, or multipart when in is an upload's form (streamed from the
// spooled file, read again by each attempt).
func (c *Client) customerCall(ctx context.Context, token, action string, applyOnce bool, in, out any) error {
	form, upload := in.(*media.Form)
	var payload []byte
	contentType := "application/json"
	if upload {
		contentType = form.ContentType
	} else {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode %s: %w", action, err)
		}
	}
	target := c.apiURL + "/customer/action/" + action + "?organization_id=" + url.QueryEscape(c.organizationID)
	_, body, err := c.do(ctx, request{action: action, applyOnce: applyOnce, build: func(ctx context.Context) (*http.Request, error) {
		var body io.Reader = bytes.NewReader(payload)
		size := int64(len(payload))
		if upload {
			body, size = form.Reader(), form.Size()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, body)
		if err != nil {
			return nil, err
		}
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+token)
		c.setRegion(req, region(token))
		return req, nil
	}, regional: true})
	if err != nil {
		return err
	}
	return decodeAnswer(action, body, out)
}

func decodeAnswer(action string, body []byte, out any) error {
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("livechat %s: unexpected answer: %w", action, err)
	}
	return nil
}

// region returns a token's data-centre prefix ("dal", "fra"): LiveChat
// wants it in X-Region for tokens outside the default centre.
func region(token string) string {
	prefix, _, ok := strings.Cut(token, ":")
	if !ok || !regionName.MatchString(prefix) {
		return ""
	}
	return prefix
}

// setRegion names the data centre in X-Region: the one a
// misdirected_request named, if any, else the token's. dal, the default
// centre, needs no header.
func (c *Client) setRegion(req *http.Request, tokenRegion string) {
	r := tokenRegion
	if learned := c.region.Load(); learned != nil {
		r = *learned
	}
	if r != "" && r != "dal" {
		req.Header.Set("X-Region", r)
	}
}
