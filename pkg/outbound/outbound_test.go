package outbound_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/outbound"
)

// refusal is a test provider's error answer: the body names its kind.
type refusal struct {
	status int
	kind   outbound.Kind
}

func (r *refusal) Error() string        { return "refused " + strconv.Itoa(r.status) }
func (r *refusal) Retry() outbound.Kind { return r.kind }
func (r *refusal) Brief() string        { return strconv.Itoa(r.status) }
func (r *refusal) Public() (string, error) {
	if r.status == http.StatusGone {
		return "", hitl.ErrConversationEnded
	}
	return "Test refused it", nil
}

var kinds = map[string]outbound.Kind{"final": outbound.Final, "transient": outbound.Transient,
	"not_applied": outbound.NotApplied, "credential": outbound.Credential, "moved": outbound.Final}

var policy = outbound.Policy{Name: "test", Title: "Test", Read: func(_ string, status int, body []byte) outbound.Refusal {
	if k, ok := kinds[string(body)]; ok {
		return &refusal{status: status, kind: k}
	}
	return nil
}}

// server answers the bodies in turn, then "ok"; it counts the requests
// and remembers the last Authorization header.
type server struct {
	*httptest.Server
	answers []string
	calls   atomic.Int32
	auth    atomic.Value
}

func newServer(t *testing.T, answers ...string) *server {
	s := &server{answers: answers}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(s.calls.Add(1))
		s.auth.Store(r.Header.Get("Authorization"))
		if n <= len(s.answers) {
			w.Header().Set("Retry-After", "0")
			io.WriteString(w, s.answers[n-1])
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

func client() *outbound.Client {
	return outbound.New(policy, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Second, time.Millisecond)
}

func get(url string) func(ctx context.Context) (*http.Request, error) {
	return func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	}
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		answers   []string
		applyOnce bool
		wantErr   bool
		wantCalls int32
	}{
		{"success", nil, false, false, 1},
		{"a final refusal is not repeated", []string{"final"}, false, true, 1},
		{"a transient refusal is repeated", []string{"transient", "transient"}, false, false, 3},
		{"at most three attempts", []string{"transient", "transient", "transient"}, false, true, 3},
		{"apply-once: a transient refusal is final", []string{"transient"}, true, true, 1},
		{"apply-once: not applied is repeated", []string{"not_applied", "not_applied"}, true, false, 3},
		{"a refused credential without Refresh is final", []string{"credential"}, false, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.answers...)
			_, body, err := client().Do(context.Background(), outbound.Request{Op: "get", ApplyOnce: tc.applyOnce, Build: get(s.URL)})
			if (err != nil) != tc.wantErr || s.calls.Load() != tc.wantCalls {
				t.Fatalf("err %v, %d calls; want error %v, %d calls", err, s.calls.Load(), tc.wantErr, tc.wantCalls)
			}
			if err == nil && string(body) != "ok" {
				t.Fatalf("body %q", body)
			}
		})
	}
}

func TestLostAnswers(t *testing.T) {
	var calls atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		panic(http.ErrAbortHandler) // the request arrived; the answer is lost
	}))
	defer s.Close()
	for _, applyOnce := range []bool{false, true} {
		calls.Store(0)
		_, _, err := client().Do(context.Background(), outbound.Request{Op: "post", ApplyOnce: applyOnce, Build: get(s.URL)})
		want := int32(outbound.MaxAttempts)
		if applyOnce {
			want = 1
		}
		if err == nil || calls.Load() != want {
			t.Fatalf("applyOnce %v: err %v, %d calls, want %d", applyOnce, err, calls.Load(), want)
		}
	}
}

func TestUnsentRequestsAreRepeatedEvenApplyOnce(t *testing.T) {
	s := httptest.NewServer(http.NotFoundHandler())
	url := s.URL
	s.Close() // nothing listens: every dial fails
	var builds int
	_, _, err := client().Do(context.Background(), outbound.Request{Op: "post", ApplyOnce: true,
		Build: func(ctx context.Context) (*http.Request, error) { builds++; return get(url)(ctx) }})
	if err == nil || builds != outbound.MaxAttempts {
		t.Fatalf("err %v, %d attempts", err, builds)
	}
	var he *hitl.Error
	if pub := policy.PublicError("send", err); !errors.As(pub, &he) || he.Message != "Test could not be reached" {
		t.Fatalf("public error %v", pub)
	}
}

func TestRefusedCredentialIsRenewedOnce(t *testing.T) {
	for _, tc := range []struct {
		answers []string
		wantErr bool
	}{{[]string{"credential"}, false}, {[]string{"credential", "credential"}, true}} {
		s := newServer(t, tc.answers...)
		token, refreshes := "old", 0
		_, _, err := client().Do(context.Background(), outbound.Request{Op: "get",
			Build: func(ctx context.Context) (*http.Request, error) {
				req, err := get(s.URL)(ctx)
				req.Header.Set("Authorization", token)
				return req, err
			},
			Refresh: func(context.Context) error { refreshes++; token = "new"; return nil },
		})
		if (err != nil) != tc.wantErr || refreshes != 1 || s.auth.Load() != "new" {
			t.Fatalf("%v: err %v, %d refreshes, last token %v", tc.answers, err, refreshes, s.auth.Load())
		}
		var r outbound.Refusal
		if tc.wantErr && (!errors.As(err, &r) || r.Retry() != outbound.Credential) {
			t.Fatalf("err %v, want the second refusal", err)
		}
	}
}

func TestMovedIsFollowedOnceOutsideTheCount(t *testing.T) {
	s := newServer(t, "moved", "transient", "moved", "transient")
	moves := 0
	_, _, err := client().Do(context.Background(), outbound.Request{Op: "get", Build: get(s.URL),
		Moved: func(_ context.Context, err error) bool {
			var r *refusal
			if errors.As(err, &r) && r.kind == outbound.Final {
				moves++
				return true
			}
			return false
		}})
	// moved (followed, not counted), transient (1), moved (final: the
	// re-send was spent) — three requests, the last refusal returned.
	if err == nil || moves != 1 || s.calls.Load() != 3 {
		t.Fatalf("err %v, %d moves, %d calls", err, moves, s.calls.Load())
	}
}

func TestRefusalWithSuccessStatusAndPublicError(t *testing.T) {
	s := newServer(t, "final") // HTTP 200 with an error body
	_, _, err := client().Do(context.Background(), outbound.Request{Op: "get", Build: get(s.URL)})
	var r *refusal
	if !errors.As(err, &r) || r.status != http.StatusOK {
		t.Fatalf("err %v", err)
	}
	if outbound.Brief(err) != "200" {
		t.Fatalf("brief %q", outbound.Brief(err))
	}
	var he *hitl.Error
	if pub := policy.PublicError("close", err); !errors.As(pub, &he) || he.Message != "Test refused it" {
		t.Fatalf("public error %v", pub)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := client().Do(ctx, outbound.Request{Op: "get", Build: get(s.URL)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	if pub := policy.PublicError("send", context.Canceled); errors.As(pub, &he) {
		t.Fatalf("a cancellation became %v", pub)
	}
}

func TestPublicSentinels(t *testing.T) {
	for _, tc := range []struct {
		r    *refusal
		want error
	}{
		{&refusal{status: http.StatusTooManyRequests, kind: outbound.NotApplied}, hitl.ErrRateLimited},
		{&refusal{status: http.StatusGone, kind: outbound.Final}, hitl.ErrConversationEnded},
	} {
		pub := policy.PublicError("send", tc.r)
		var r *refusal
		if !errors.Is(pub, tc.want) || !errors.As(pub, &r) {
			t.Fatalf("%d: %v, want %v wrapping the refusal", tc.r.status, pub, tc.want)
		}
	}
}
