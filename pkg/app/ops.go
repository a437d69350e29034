package app

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin"
	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
	"github.com/hitl-bridge/hitl-bridge/pkg/metrics"
)

// checker is the self-check: each platform's, and the bridge's outbox and
// dead letters.
func (w *wiring) checker() *admin.Checker {
	var inspectors []admin.Provider
	for _, pl := range w.platforms {
		inspect := func(ctx context.Context, base string) []health.Check {
			if pl.Inspect == nil {
				return nil
			}
			return pl.Inspect(ctx, integration.WebhookURL(base, pl.name))
		}
		inspectors = append(inspectors, admin.Provider{Name: pl.name, Inspect: inspect, Actions: pl.Actions})
	}
	return &admin.Checker{Providers: inspectors, Store: w.o.Store, Clock: &settings{w.o.Store}, Now: w.o.Now}
}

// operator is the operator routes: the JSON ones (status, setup, the
// platforms' actions) and the /admin page's, which answer 404 until the
// handler is given the page (admin.Handler.ServePage).
func (w *wiring) operator() *admin.Handler {
	return admin.NewHandler(admin.Config{
		Key: w.c.Secret.AdminAPIKey, Checker: w.checker(), Replay: w.dispatcher.Replay, Setup: w.setup,
		PublicURL: w.publicURL, Now: w.o.Now, Log: w.o.Log,
	})
}

// setup registers the platforms' webhooks to base (the bridge's public
// URL). Problems come back as checks; the error is only for a run that
// could not start.
func (w *wiring) setup(ctx context.Context, base string) (admin.SetupReport, error) {
	rep := admin.SetupReport{Providers: map[string]any{}, Checks: []health.Check{}}
	if base == "" {
		return rep, hitl.Errorf(hitl.CodeInvalid, "the bridge's public URL is not set: set PUBLIC_URL")
	}
	for _, p := range w.platforms {
		if p.Setup == nil {
			continue
		}
		res, checks, err := p.Setup(ctx, integration.WebhookURL(base, p.name))
		if res != nil {
			rep.Providers[p.name] = res
		}
		if err != nil {
			w.o.Log.Error("webhook setup", "provider", p.name, "err", err)
			if len(checks) == 0 {
				checks = []health.Check{health.Failed("setup", "the setup did not complete", "see the function's log; the next scheduled run tries again")}
			}
		}
		for _, c := range checks {
			c.Name = p.name + ": " + c.Name
			rep.Checks = append(rep.Checks, c)
		}
	}
	return rep, nil
}

// scheduledSetup runs setup on the scheduled credential refresh, so a
// webhook deleted in a provider's console comes back by itself.
func (w *wiring) scheduledSetup(ctx context.Context) error {
	if w.publicURL == "" {
		w.o.Log.Warn("webhook setup skipped: PUBLIC_URL is not set")
		return nil
	}
	rep, err := w.setup(ctx, w.publicURL)
	if err != nil {
		return err
	}
	if len(rep.Checks) > 0 {
		names := make([]string, len(rep.Checks))
		for i, c := range rep.Checks {
			names[i] = c.Name
		}
		w.o.Log.Warn("webhook setup found problems", "checks", names)
	}
	return nil
}

// observeWebhooks counts refused deliveries and records arrivals (for the
// self-check's "last webhook received"), for the configured platforms.
func (w *wiring) observeWebhooks(next http.Handler) http.Handler {
	configured := map[string]bool{}
	for _, pl := range w.platforms {
		configured[pl.name] = true
	}
	arrivals := &admin.Arrivals{Clock: &settings{w.o.Store}}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		sw := &statusRecorder{ResponseWriter: rw, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		provider, ok := strings.CutPrefix(r.URL.Path, "/webhooks/")
		if !ok || !configured[provider] || r.Method != http.MethodPost {
			return
		}
		switch {
		case sw.status == http.StatusUnauthorized:
			w.o.Metrics.Count(metrics.WebhooksRefused, provider, 1)
		case sw.status >= 200 && sw.status <= 299:
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Second)
			defer cancel()
			_ = arrivals.Seen(ctx, provider, w.o.Now())
		}
	})
}

// timeHandoffs records how long a startHitl took to open the provider
// conversation.
func timeHandoffs(next http.Handler, m *metrics.Recorder, now func() time.Time) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/sessions" {
			next.ServeHTTP(w, r)
			return
		}
		start := now()
		sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if sw.status == http.StatusCreated {
			m.Duration(metrics.HandoffLatency, "", now().Sub(start))
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	once   sync.Once
}

func (w *statusRecorder) WriteHeader(status int) {
	w.once.Do(func() { w.status = status })
	w.ResponseWriter.WriteHeader(status)
}

// buryCounter counts outboxes moved to the dead letters.
type buryCounter struct {
	delivery.Store
	metrics *metrics.Recorder
}

func (s *buryCounter) Bury(ctx context.Context, sessionID, owner string, at time.Time) error {
	err := s.Store.Bury(ctx, sessionID, owner, at)
	if err == nil {
		s.metrics.Count(metrics.DeadLettered, "", 1)
	}
	return err
}

// deliveryCounter counts callbacks the bot accepted.
type deliveryCounter struct {
	delivery.Sender
	metrics *metrics.Recorder
}

func (s *deliveryCounter) Send(ctx context.Context, e hitl.Event) error {
	err := s.Sender.Send(ctx, e)
	if err != nil {
		return err
	}
	s.metrics.Count(metrics.EventsDelivered, e.Provider, 1)
	if m := e.Metrics; e.Type == hitl.EventStopped && m != nil {
		s.metrics.Count(metrics.HandoffsEnded, e.Provider, 1)
		if m.Abandoned {
			s.metrics.Count(metrics.HandoffsAbandoned, e.Provider, 1)
		}
		for name, v := range map[string]*float64{
			metrics.TimeToAssignment: m.TimeToAssignmentSeconds, metrics.TimeToFirstReply: m.TimeToFirstReplySeconds,
			metrics.HandoffDuration: m.DurationSeconds,
		} {
			if v != nil {
				s.metrics.Seconds(name, e.Provider, *v)
			}
		}
	}
	return nil
}
