//go:build bench

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// runtimeAPI is a Lambda runtime API for one function process: it hands out
// the events queued with enqueue on GET …/invocation/next, one at a time,
// and takes the answers the function posts back, as the Lambda service
// does (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).
type runtimeAPI struct {
	srv  *http.Server
	addr string

	queue chan *invocation

	mu        sync.Mutex
	firstNext time.Time              // when the function first asked for work: its init ended
	inflight  map[string]*invocation // by request id
	initErr   error
	seq       int
}

// invocation is one event and, once done is closed, its answer.
type invocation struct {
	id      string
	payload []byte

	sent     time.Time // the event was handed to the function
	answered time.Time
	body     []byte
	err      error // the function reported an error
	done     chan struct{}
}

// duration is how long the function held the invocation: what Lambda bills.
func (inv *invocation) duration() time.Duration { return inv.answered.Sub(inv.sent) }

const runtimePrefix = "/2018-06-01/runtime/"

func newRuntimeAPI() (*runtimeAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &runtimeAPI{addr: ln.Addr().String(), queue: make(chan *invocation, 16), inflight: map[string]*invocation{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+runtimePrefix+"invocation/next", a.next)
	mux.HandleFunc("POST "+runtimePrefix+"invocation/{id}/response", a.answer)
	mux.HandleFunc("POST "+runtimePrefix+"invocation/{id}/error", a.answer)
	mux.HandleFunc("POST "+runtimePrefix+"init/error", a.handleInitError)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go a.srv.Serve(ln)
	return a, nil
}

func (a *runtimeAPI) close() { a.srv.Close() }

// enqueue queues an event; the function receives it when it next asks.
func (a *runtimeAPI) enqueue(payload []byte) *invocation {
	a.mu.Lock()
	a.seq++
	inv := &invocation{id: "req-" + strconv.Itoa(a.seq), payload: payload, done: make(chan struct{})}
	a.mu.Unlock()
	a.queue <- inv
	return inv
}

// wait waits for inv's answer, for the function to fail its init, for the
// process to end (exited closed), or for ctx.
func (a *runtimeAPI) wait(ctx context.Context, inv *invocation, exited <-chan struct{}) error {
	select {
	case <-inv.done:
		return inv.err
	case <-exited:
		select {
		case <-inv.done: // answered just before exiting
			return inv.err
		default:
		}
		if err := a.initFailure(); err != nil {
			return err
		}
		return errors.New("the function process exited")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *runtimeAPI) next(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	if a.firstNext.IsZero() {
		a.firstNext = time.Now()
	}
	a.mu.Unlock()
	var inv *invocation
	select {
	case inv = <-a.queue:
	case <-r.Context().Done():
		return
	}
	a.mu.Lock()
	inv.sent = time.Now()
	a.inflight[inv.id] = inv
	a.mu.Unlock()
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
	h.Set("Content-Type", "application/json")
	w.Write(inv.payload)
}

func (a *runtimeAPI) answer(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	at := time.Now()
	a.mu.Lock()
	inv, ok := a.inflight[r.PathValue("id")]
	delete(a.inflight, r.PathValue("id"))
	a.mu.Unlock()
	if !ok {
		http.Error(w, "unknown request id", http.StatusBadRequest)
		return
	}
	inv.answered, inv.body = at, body
	if strings.HasSuffix(r.URL.Path, "/error") {
		inv.err = fmt.Errorf("the function answered an error: %s", body)
	}
	close(inv.done)
	w.WriteHeader(http.StatusAccepted)
}

func (a *runtimeAPI) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.initErr = fmt.Errorf("the function failed its init: %s", body)
	a.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// initFailure returns the init error the function posted, if any.
func (a *runtimeAPI) initFailure() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.initErr
}

// initEnded returns when the function first asked for an event.
func (a *runtimeAPI) initEnded() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.firstNext
}
