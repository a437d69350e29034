// Package outbound is the one HTTP client for calls to the live-agent
// platforms. It owns how a call is made: a timeout per attempt, bounded
// retries with pkg/retry's backoff (Retry-After honoured), the apply-once
// rule, a refused credential renewed once, and a re-send to where the
// platform says the request belongs. What an answer means is the
// provider's to say: a Policy reads answers into the provider's errors,
// and those errors, as Refusals, classify themselves.
package outbound

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/retry"
)

// MaxAttempts bounds the attempts of one call (re-sends after a refused
// credential or a misdirected request aside).
const MaxAttempts = 3

// maxAnswerBytes bounds the answer read; the rest is dropped.
const maxAnswerBytes = 1 << 20

// Kind is what a provider's refusal means for sending the request again.
type Kind int

const (
	// Final: sending it again would get the same answer.
	Final Kind = iota
	// Transient: the provider failed (a 5xx) and may have applied the
	// request; it is sent again unless the request is apply-once.
	Transient
	// NotApplied: the provider said it did not process the request (rate
	// limited); it is sent again after the backoff, apply-once or not.
	NotApplied
	// Credential: the provider refused the credential. The request is sent
	// again once after Request.Refresh renews it; without Refresh, or a
	// second time, it is final.
	Credential
)

// Refusal is a provider's error answer, as its Policy reads it.
type Refusal interface {
	error
	// Retry tells what the refusal means for sending the request again.
	Retry() Kind
	// Brief is the refusal's short form for logs: its status and code,
	// never a message or a body.
	Brief() string
	// Public is what the Bridge is told of it: the hitl sentinel it
	// stands for (such as hitl.ErrConversationEnded), or nil and the
	// message of a hitl.CodeProvider error. A NotApplied refusal is
	// hitl.ErrRateLimited without being asked.
	Public() (message string, sentinel error)
}

// KindOf is the usual reading of a refusal with status: notApplied when
// the provider said it did not process the request, credential when it
// refused the credential, a 5xx as Transient, anything else Final.
func KindOf(status int, notApplied, credential bool) Kind {
	switch {
	case notApplied:
		return NotApplied
	case credential:
		return Credential
	case status >= 500:
		return Transient
	}
	return Final
}

// Refused is what every provider's refusal carries: the call, the HTTP
// status and the provider's message, which is for logs only.
type Refused struct {
	Op      string
	Status  int
	Message string
}

// Policy is a provider's reading of its answers.
type Policy struct {
	// Name starts log messages and error texts: "livechat", "zoho".
	Name string
	// Title names the provider to users: "LiveChat", "Zoho SalesIQ".
	Title string
	// Read reads an answer to op: nil for a success, else a Refusal (a
	// provider may refuse with a 2xx status).
	Read func(op string, status int, body []byte) Refusal
}

// PublicError turns a failure of op into the error the Bridge sees: a
// hitl.Error and a cancellation keep what they say, a refusal becomes what
// its Public says, and anything else says the provider could not be
// reached.
func (p Policy) PublicError(op string, err error) error {
	var he *hitl.Error
	if errors.As(err, &he) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var r Refusal
	if !errors.As(err, &r) {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s: %w", op, err)
		}
		return hitl.Wrap(hitl.CodeProvider, fmt.Errorf("%s: %w", op, err), p.Title+" could not be reached")
	}
	message, sentinel := r.Public()
	if r.Retry() == NotApplied {
		sentinel = hitl.ErrRateLimited
	}
	if sentinel != nil {
		return fmt.Errorf("%s: %w (%w)", op, sentinel, err)
	}
	return hitl.Wrap(hitl.CodeProvider, fmt.Errorf("%s: %w", op, err), message)
}

// Brief is err's short form for logs: a refusal's Brief, else its text
// (transport errors, which quote no URL: see Client.Do).
func Brief(err error) string {
	var r Refusal
	if errors.As(err, &r) {
		return r.Brief()
	}
	return err.Error()
}

// Client makes a provider's calls.
type Client struct {
	Policy
	http       *http.Client
	log        *slog.Logger
	timeout    time.Duration
	retryDelay time.Duration
}

// New returns a Client for p. Zero values take the defaults: a plain
// http.Client, slog.Default(), a 10 s timeout per attempt and a first
// backoff of 250 ms.
func New(p Policy, hc *http.Client, log *slog.Logger, timeout, retryDelay time.Duration) *Client {
	c := &Client{Policy: p, http: hc, log: log, timeout: timeout, retryDelay: retryDelay}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Second
	}
	if c.retryDelay <= 0 {
		c.retryDelay = 250 * time.Millisecond
	}
	return c
}

// Timeout is the timeout of each attempt.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Request is one call.
type Request struct {
	// Op names the call in logs and error texts.
	Op string
	// ApplyOnce marks a call that must not be repeated when the provider
	// may have applied it (opening a conversation, posting a message): it
	// is sent again only when the provider said it did not process it
	// (NotApplied) or the request never left. Others are also sent again
	// after a Transient refusal or a lost answer.
	ApplyOnce bool
	// Timeout overrides the Client's timeout per attempt.
	Timeout time.Duration
	// Build makes the request for one attempt; it is called again for
	// each, so a body is read from its start every time.
	Build func(ctx context.Context) (*http.Request, error)
	// Refresh, when set, renews the credential Build uses after a
	// Credential refusal; the call then starts over, once.
	Refresh func(ctx context.Context) error
	// Moved, when set, is asked about each refusal: true means the
	// provider did not process the request and named where it belongs,
	// which Moved has taken note of for Build. The request is then sent
	// again at once, once per call, outside the attempt count.
	Moved func(ctx context.Context, err error) bool
}

// Do runs r. It returns the answer (its body already read and closed: for
// its headers) with the body, a Refusal, or a transport error.
func (c *Client) Do(ctx context.Context, r Request) (*http.Response, []byte, error) {
	moved := false
	for attempt := 1; ; attempt++ {
		resp, body, err := c.attempt(ctx, r)
		var again bool
		var after string
		var refusal Refusal
		switch {
		case err == nil:
			return resp, body, nil
		case ctx.Err() != nil:
			return nil, nil, ctx.Err()
		case !moved && r.Moved != nil && r.Moved(ctx, err):
			moved = true
			attempt--
			continue
		case errors.As(err, &refusal):
			kind := refusal.Retry()
			if kind == Credential && r.Refresh != nil {
				c.log.LogAttrs(ctx, slog.LevelWarn, c.Name+" credential refused", slog.String("op", r.Op))
				if err := r.Refresh(ctx); err != nil {
					return nil, nil, err
				}
				r.Refresh = nil
				return c.Do(ctx, r)
			}
			again = kind == NotApplied || (kind == Transient && !r.ApplyOnce)
			after = resp.Header.Get("Retry-After")
		default:
			again = !r.ApplyOnce || notSent(err)
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, c.Name+" call failed",
			slog.String("op", r.Op), slog.Int("attempt", attempt),
			slog.Bool("retry", again && attempt < MaxAttempts), slog.String("error", Brief(err)))
		if !again || attempt == MaxAttempts {
			return nil, nil, err
		}
		if err := retry.Sleep(ctx, retry.Backoff(attempt, c.retryDelay, after)); err != nil {
			return nil, nil, err
		}
	}
}

// attempt sends r once. A refusal comes with the answer, for its
// Retry-After.
func (c *Client) attempt(ctx context.Context, r Request) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(r.Timeout, c.timeout))
	defer cancel()
	req, err := r.Build(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("build %s %s request: %w", c.Name, r.Op, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // its text quotes the URL
		}
		return nil, nil, fmt.Errorf("%s %s: %w", c.Name, r.Op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: read answer: %w", c.Name, r.Op, err)
	}
	if refusal := c.Read(r.Op, resp.StatusCode, body); refusal != nil {
		return resp, nil, refusal
	}
	return resp, body, nil
}

// notSent reports whether a transport error happened before the request
// could reach the provider.
func notSent(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &dns) || (errors.As(err, &op) && op.Op == "dial")
}
