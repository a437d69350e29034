package app

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/admin"
	"github.com/hitl-bridge/hitl-bridge/pkg/config"
	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/integration"
	"github.com/hitl-bridge/hitl-bridge/pkg/metrics"
)

// ops is the operator side of an App: the platforms' webhook setup, the
// self-check, the /admin page, metrics and webhook arrivals.
type ops struct {
	publicURL string
	metrics   *metrics.Recorder
	arrivals  *admin.Arrivals
	checker   *admin.Checker
	now       func() time.Time
}

// wireOps adds the operator side to a: the admin routes (with each
// platform's self-check and actions) in front of the actions handler,
// metrics and arrivals around the webhooks handler, and counting around
// the dispatcher.
func (a *App) wireOps(c config.Config, o Options, d *delivery.Dispatcher) {
	p := &ops{publicURL: strings.TrimRight(c.PublicURL, "/"), metrics: o.Metrics, now: o.Now}
	p.arrivals = &admin.Arrivals{Clock: &settings{o.Store}}
	var inspectors []admin.Provider
	for _, pl := range a.platforms {
		inspect := func(ctx context.Context, base string) []health.Check {
			if pl.Inspect == nil {
				return nil
			}
			return pl.Inspect(ctx, integration.WebhookURL(base, pl.name))
		}
		inspectors = append(inspectors, admin.Provider{Name: pl.name, Inspect: inspect, Actions: pl.Actions})
	}
	p.checker = &admin.Checker{Providers: inspectors, Store: o.Store, Clock: &settings{o.Store}, Now: o.Now}
	a.ops = p
	a.Admin = admin.NewHandler(admin.Config{
		Key: c.Secret.AdminAPIKey, Checker: p.checker, Replay: d.Replay, Setup: a.Setup,
		PublicURL: p.publicURL, Now: o.Now, Log: o.Log,
	})
	a.Actions = a.Admin.Mount(timeHandoffs(a.Actions, p.metrics, o.Now))
	a.Webhooks = p.observeWebhooks(a.Webhooks, a.platforms)
	if p.metrics != nil {
		d.Store = &buryCounter{Store: d.Store, metrics: p.metrics}
		for channel, s := range d.Senders {
			d.Senders[channel] = &deliveryCounter{Sender: s, metrics: p.metrics}
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return strings.TrimRight(b, "/")
}

// Setup registers the platforms' webhooks to base (the bridge's public
// URL). Problems come back as checks; the error is only for a run that
// could not start.
func (a *App) Setup(ctx context.Context, base string) (admin.SetupReport, error) {
	rep := admin.SetupReport{Providers: map[string]any{}, Checks: []health.Check{}}
	if base == "" {
		return rep, hitl.Errorf(hitl.CodeInvalid, "the bridge's public URL is not set: set PUBLIC_URL")
	}
	for _, p := range a.platforms {
		if p.Setup == nil {
			continue
		}
		res, checks, err := p.Setup(ctx, integration.WebhookURL(base, p.name))
		if res != nil {
			rep.Providers[p.name] = res
		}
		if err != nil {
			a.Log.Error("webhook setup", "provider", p.name, "err", err)
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

// Status runs the self-check against base (the bridge's public URL; the
// configured one when empty).
func (a *App) Status(ctx context.Context, base string) admin.Status {
	return a.ops.checker.Check(ctx, cmpOr(base, a.ops.publicURL))
}

// scheduledSetup runs Setup on the scheduled credential refresh, so a
// webhook deleted in a provider's console comes back by itself.
func (a *App) scheduledSetup(ctx context.Context) error {
	if a.ops.publicURL == "" {
		a.Log.Warn("webhook setup skipped: PUBLIC_URL is not set")
		return nil
	}
	rep, err := a.Setup(ctx, a.ops.publicURL)
	if err != nil {
		return err
	}
	if len(rep.Checks) > 0 {
		names := make([]string, len(rep.Checks))
		for i, c := range rep.Checks {
			names[i] = c.Name
		}
		a.Log.Warn("webhook setup found problems", "checks", names)
	}
	return nil
}

// observeWebhooks counts refused deliveries and records arrivals, for the
// configured platforms.
func (p *ops) observeWebhooks(next http.Handler, platforms []platform) http.Handler {
	configured := map[string]bool{}
	for _, pl := range platforms {
		configured[pl.name] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		provider, ok := strings.CutPrefix(r.URL.Path, "/webhooks/")
		if !ok || !configured[provider] || r.Method != http.MethodPost {
			return
		}
		switch {
		case sw.status == http.StatusUnauthorized:
			p.metrics.Count(metrics.WebhooksRefused, provider, 1)
		case sw.status >= 200 && sw.status <= 299:
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Second)
			defer cancel()
			_ = p.arrivals.Seen(ctx, provider, p.now())
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
