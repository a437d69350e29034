package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Network is the bridge's way out: every call it makes to a provider, a
// media URL or the bot goes through it. It injects the faults a real
// network has, which the simulators cannot (a request that reached the
// provider but whose answer was lost, a connection that never opened), and
// it notes every credential that crosses it, so tests can check that none
// of them reaches a log.
type Network struct {
	next http.RoundTripper

	mu     sync.Mutex
	faults []*netFault
	creds  map[string]bool
	sent   int
}

// NetFault is what a matching request meets.
type NetFault int

const (
	// LostAnswer delivers the request, so the far side applies it, and then
	// fails it as a timeout would: the caller cannot know it was applied.
	LostAnswer NetFault = iota + 1
	// NotConnected fails the request before it leaves, as a refused or
	// timed-out connection does.
	NotConnected
	// Answered answers the request in the far side's place, with what
	// Respond gave, without sending it.
	Answered
)

type netFault struct {
	match  func(*http.Request) bool
	kind   NetFault
	left   int
	status int
	body   string
}

// errTimeout is what a request whose answer was lost fails with: what an
// attempt's own deadline gives.
var errTimeout = fmt.Errorf("apptest: answer lost: %w", context.DeadlineExceeded)

func newNetwork() *Network {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &Network{next: t, creds: map[string]bool{}}
}

// Client returns an HTTP client whose calls go through n, for a second
// bridge (another container) sharing the Env's store.
func (n *Network) Client() *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: n}
}

// Fail makes the next times requests that match meet kind.
func (n *Network) Fail(match func(*http.Request) bool, kind NetFault, times int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults = append(n.faults, &netFault{match: match, kind: kind, left: times})
}

// Respond makes the next times requests that match be answered status and
// a JSON body without reaching the far side: an answer a simulator does
// not give by itself.
func (n *Network) Respond(match func(*http.Request) bool, status int, body string, times int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults = append(n.faults, &netFault{match: match, kind: Answered, left: times, status: status, body: body})
}

// Path matches requests whose URL path ends with suffix, and whose method
// is method when it is not empty.
func Path(method, suffix string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return (method == "" || r.Method == method) && strings.HasSuffix(r.URL.Path, suffix)
	}
}

// Requests counts the requests that went out, faults included.
func (n *Network) Requests() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sent
}

// Credentials lists every credential seen on the way: bearer and provider
// tokens, cookie values, and tokens handed out by token endpoints.
func (n *Network) Credentials() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.creds))
	for c := range n.creds {
		out = append(out, c)
	}
	return out
}

// RoundTrip sends r, unless a fault says otherwise.
func (n *Network) RoundTrip(r *http.Request) (*http.Response, error) {
	n.mu.Lock()
	n.sent++
	var fault netFault
	for _, f := range n.faults {
		if f.left > 0 && f.match(r) {
			f.left--
			fault = *f
			break
		}
	}
	n.noteRequest(r)
	n.mu.Unlock()
	kind := fault.kind
	if kind == NotConnected || kind == Answered {
		if r.Body != nil {
			r.Body.Close()
		}
	}
	switch kind {
	case NotConnected:
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("apptest: connection refused")}
	case Answered:
		return &http.Response{
			Status: fmt.Sprintf("%d %s", fault.status, http.StatusText(fault.status)), StatusCode: fault.status,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r,
			Header:        http.Header{"Content-Type": {"application/json"}},
			Body:          io.NopCloser(strings.NewReader(fault.body)),
			ContentLength: int64(len(fault.body)),
		}, nil
	}
	resp, err := n.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if strings.Contains(r.URL.Path, "token") {
		if err := n.noteTokens(resp); err != nil {
			return nil, err
		}
	}
	for _, c := range resp.Cookies() {
		n.note(c.Name, c.Value)
	}
	if kind == LostAnswer {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errTimeout
	}
	return resp, nil
}

// noteRequest records the credentials r carries. Callers hold n.mu.
func (n *Network) noteRequest(r *http.Request) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		if _, tok, ok := strings.Cut(auth, " "); ok {
			n.creds[tok] = true
		}
	}
	for _, c := range r.Cookies() {
		n.noteLocked(c.Name, c.Value)
	}
}

// noteTokens records the tokens in a token endpoint's JSON answer and
// leaves the answer readable.
func (n *Network) noteTokens(resp *http.Response) error {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Token        string `json:"token"` // LiveChat's issue_bot_token
	}
	if json.Unmarshal(body, &tok) == nil {
		n.note("access_token", tok.AccessToken)
		n.note("refresh_token", tok.RefreshToken)
		n.note("token", tok.Token)
	}
	return nil
}

func (n *Network) note(name, value string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.noteLocked(name, value)
}

// noteLocked records a credential. The LiveChat __lc_cid cookie is the
// customer's id, which logs name on purpose; its partner __lc_cst is the
// secret. Callers hold n.mu.
func (n *Network) noteLocked(name, value string) {
	if value == "" || name == "__lc_cid" {
		return
	}
	if v, err := url.QueryUnescape(value); err == nil {
		value = v
	}
	n.creds[value] = true
}
