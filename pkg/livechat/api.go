package livechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/media"
	"github.com/hitl-bridge/hitl-bridge/pkg/outbound"
)

// APIError is an error answer from LiveChat: {"error":{"type","message",
// "data"}} and its HTTP status. Its text is for logs; callers see a
// hitl.Error.
type APIError struct {
	outbound.Refused
	Type string
	// Region is data.region of a misdirected_request: the data centre the
	// request must be sent to.
	Region string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("livechat %s: HTTP %d %s: %s", e.Op, e.Status, e.Type, e.Message)
}

func (e *APIError) rateLimited() bool {
	return e.Status == http.StatusTooManyRequests || e.Type == "too_many_requests"
}

func (e *APIError) unauthenticated() bool {
	return e.Status == http.StatusUnauthorized || e.Type == "authentication"
}

// The patterns are compiled at their first use, not at start-up, where
// they were most of this package's initialisation (0.7k allocations) in
// every function, though only error answers and region prefixes use them.
var (
	errorType = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_]{1,40}$`) })
	// regionName is a LiveChat data centre: "dal", "fra", and the
	// "fra-a"-style names the docs' own tooling knows.
	regionName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z]{2,5}(-[a-z0-9]{1,5})?$`) })
)

// parseAPIError reads an error body. The accounts server answers OAuth-style
// {"error":"...","error_description":"..."} or {"identity_exception":"..."}
// instead of the API's object.
func parseAPIError(action string, status int, body []byte) *APIError {
	e := &APIError{Refused: outbound.Refused{Op: action, Status: status}}
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
		if json.Unmarshal(detail.Data, &data) == nil && regionName().MatchString(data.Region) {
			e.Region = data.Region
		}
	case json.Unmarshal(body, &oauth) == nil && oauth.Error+oauth.Identity+oauth.OAuth != "":
		e.Type = oauth.Error + oauth.Identity + oauth.OAuth
		e.Message = oauth.Description + oauth.Exception
	}
	if !errorType().MatchString(e.Type) {
		e.Type = "unknown"
	}
	e.Message = hitl.Clip(e.Message, 200, "")
	return e
}

// Retry tells pkg/outbound what the refusal means: LiveChat did not
// process a rate-limited call, a refused token is renewed once where the
// call has a way to, and a 5xx may have been applied.
func (e *APIError) Retry() outbound.Kind {
	return outbound.KindOf(e.Status, e.rateLimited(), e.unauthenticated())
}

// Brief is the refusal's short form for logs.
func (e *APIError) Brief() string { return strconv.Itoa(e.Status) + " " + e.Type }

// Public is what the Bridge is told: an ended chat as such, otherwise a
// message naming the LiveChat error type only.
func (e *APIError) Public() (string, error) {
	if e.Type == "chat_inactive" {
		return "", hitl.ErrConversationEnded
	}
	return fmt.Sprintf("LiveChat refused %s (%s)", e.Op, e.Type), nil
}

// policy is how pkg/outbound reads LiveChat's answers: any status other
// than 2xx is an error body.
var policy = outbound.Policy{Name: "livechat", Title: "LiveChat", Read: func(op string, status int, body []byte) outbound.Refusal {
	if status < 200 || status > 299 {
		return parseAPIError(op, status, body)
	}
	return nil
}}

// publicError turns a failure of op into the error the Bridge sees.
var publicError = policy.PublicError

// followRegion is the outbound.Request.Moved of the Agent and Customer
// Chat API calls, which go to the organization's data centre: a
// misdirected_request naming a region is followed once, at once and
// outside the attempt count, since LiveChat did not process the request,
// and the region is remembered for every later call. The Agent and
// Customer Chat API reference pages list the error with data.region as
// "where the client should be connected"
// (https://platform.text.com/docs/messaging/agent-chat-api#errors,
// https://platform.text.com/docs/messaging/customer-chat-api#errors); the
// former "Data centers" section of those pages (livechat-public-docs
// before commit c91d789) said to send that region as X-Region on the same
// host.
func (c *Client) followRegion(ctx context.Context, err error) bool {
	var api *APIError
	if !errors.As(err, &api) || api.Type != "misdirected_request" || api.Region == "" {
		return false
	}
	c.region.Store(&api.Region)
	c.log.LogAttrs(ctx, slog.LevelWarn, "livechat call sent to another region",
		slog.String("action", api.Op), slog.String("region", api.Region))
	return true
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

// asCustomer posts an action to the Customer Chat API as the visitor v,
// JSON in, or multipart when in is an upload's form (streamed from the
// spooled file, read again by each attempt). A token about to expire is
// renewed first, and one LiveChat refuses is renewed and the call
// repeated; either happens once per operation.
func (c *Client) asCustomer(ctx context.Context, v *visitor, action string, applyOnce bool, in, out any) error {
	if !v.refreshed && !v.ExpiresAt.IsZero() && c.now().Add(refreshMargin).After(v.ExpiresAt) {
		if err := c.refresh(ctx, v); err != nil {
			return err
		}
	}
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
	r := outbound.Request{Op: action, ApplyOnce: applyOnce, Moved: c.followRegion, Build: func(ctx context.Context) (*http.Request, error) {
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
		req.Header.Set("Authorization", "Bearer "+v.Token)
		c.setRegion(req, region(v.Token))
		return req, nil
	}}
	if !v.refreshed {
		r.Refresh = func(ctx context.Context) error { return c.refresh(ctx, v) }
	}
	_, body, err := c.api.Do(ctx, r)
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
	if !ok || !regionName().MatchString(prefix) {
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
