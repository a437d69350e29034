package simcore

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Redirect is an endpoint (a bot's callback URL, a Botpress webhook) that
// answers with a redirect to a service on loopback, the way an endpoint
// could point the bridge at its own internal network, until Serve hands its
// requests to a handler instead.
type Redirect struct {
	URL      string // the endpoint
	followed atomic.Int32
	handler  atomic.Pointer[http.Handler]
}

// NewRedirect starts a Redirect answering status (a 3xx); it stops when
// the test ends.
func NewRedirect(t testing.TB, status int) *Redirect {
	r := &Redirect{}
	internal := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { r.followed.Add(1) }))
	t.Cleanup(internal.Close)
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if h := r.handler.Load(); h != nil {
			(*h).ServeHTTP(w, req)
			return
		}
		http.Redirect(w, req, internal.URL+req.URL.Path, status)
	}))
	t.Cleanup(endpoint.Close)
	r.URL = endpoint.URL
	return r
}

// Serve makes the endpoint answer with h from now on.
func (r *Redirect) Serve(h http.Handler) { r.handler.Store(&h) }

// Followed counts the requests that reached the service on loopback: the
// redirects that were followed.
func (r *Redirect) Followed() int { return int(r.followed.Load()) }
