package simcore

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
)

// Delivery is one request a Receiver received.
type Delivery struct {
	Header http.Header
	Body   []byte
}

// Receiver stands in for the bridge's webhook URL: it keeps a simulator's
// genuine deliveries, for a test to parse, replay or forge, and answers
// them 200 (so simulators do not retry) unless told otherwise.
type Receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []Delivery
	status int
}

// NewReceiver starts a Receiver, closed when the test ends.
func NewReceiver(t TB) *Receiver {
	r := &Receiver{status: http.StatusOK}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, Delivery{Header: req.Header.Clone(), Body: body})
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.Close)
	return r
}

// SetStatus makes the receiver answer status from now on.
func (r *Receiver) SetStatus(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = status
}

// Take returns the deliveries received since the last Take.
func (r *Receiver) Take() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}
