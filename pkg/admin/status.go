// Package admin is the operator's view of a running bridge: a self-check
// (GET /v1/admin/status, make doctor) that reports per provider a verdict
// and, for each problem, the fix; the on-demand setup of the providers'
// webhooks (POST /v1/admin/setup); and the /admin page that shows the
// status, the open sessions and the dead letters with a replay button.
// Everything is guarded by the config secret's adminApiKey.
package admin

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/health"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// Store is what the status reads from hitl.Store.
type Store interface {
	DeadLetters(ctx context.Context, limit int) ([]hitl.DeadLetter, error)
	DueOutboxes(ctx context.Context, now time.Time, limit int) ([]string, error)
	RetryState(ctx context.Context, sessionID string) (hitl.Retry, error)
}

// SessionLister lists sessions not closed, newest first. The status shows
// open sessions when the store implements it.
type SessionLister interface {
	OpenSessions(ctx context.Context, limit int) ([]hitl.Session, error)
}

// WebhookClock keeps, per provider, when its last accepted webhook
// arrived. WebhookSeen is an unconditional put of one small item per
// provider (callers write at most once a minute per provider and
// container); LastWebhook returns the zero time when none was recorded.
type WebhookClock interface {
	WebhookSeen(ctx context.Context, provider string, at time.Time) error
	LastWebhook(ctx context.Context, provider string) (time.Time, error)
}

// Provider is one configured provider's part of the status.
type Provider struct {
	Name string
	// Inspect checks the provider without changing anything; publicURL is
	// the bridge's public base URL.
	Inspect func(ctx context.Context, publicURL string) []health.Check
	// Actions are the provider's operator actions (buttons on /admin).
	Actions []Action
}

// Status is the outcome of the self-check.
type Status struct {
	Verdict   health.Status   `json:"verdict"`
	CheckedAt time.Time       `json:"checkedAt"`
	PublicURL string          `json:"publicUrl"`
	Providers []health.Report `json:"providers"`
	Bridge    health.Report   `json:"bridge"`
}

// Checker runs the self-check.
type Checker struct {
	Providers []Provider
	Store     Store
	// Clock tells when each provider's last webhook arrived; nil shows no
	// such check.
	Clock WebhookClock
	Now   func() time.Time
}

const (
	outboxScan      = 1000
	deadLetterScan  = 500
	stuckAfter      = time.Hour
	webhookSilence  = 24 * time.Hour
	deliveryHorizon = 26 * time.Hour // past the retry window: every non-empty outbox is due by then
)

// Check runs every check: the providers' in parallel, then the bridge's own
// (outbox, dead letters).
func (c *Checker) Check(ctx context.Context, publicURL string) Status {
	now := c.Now()
	st := Status{CheckedAt: now, PublicURL: publicURL, Providers: make([]health.Report, len(c.Providers))}
	var wg sync.WaitGroup
	for i, p := range c.Providers {
		wg.Go(func() {
			checks := p.Inspect(ctx, publicURL)
			if c.Clock != nil {
				checks = append(checks, c.lastWebhook(ctx, p.Name, now))
			}
			st.Providers[i] = health.NewReport(p.Name, checks...)
		})
	}
	st.Bridge = health.NewReport("bridge", c.outbox(ctx, now), c.deadLetters(ctx))
	wg.Wait()
	st.Verdict = health.Worst(append(slices.Clone(st.Providers), st.Bridge)...)
	return st
}

func (c *Checker) lastWebhook(ctx context.Context, provider string, now time.Time) health.Check {
	at, err := c.Clock.LastWebhook(ctx, provider)
	switch {
	case err != nil:
		return health.Warning("last webhook", "the time of the last webhook could not be read", "see the function's log")
	case at.IsZero():
		return health.Warning("last webhook", "no webhook has arrived yet",
			"none if no chat was handed over yet; otherwise fix the webhook checks above")
	case now.Sub(at) > webhookSilence:
		return health.Warning("last webhook", fmt.Sprintf("the last webhook arrived %s ago (%s)", ago(now.Sub(at)), at.UTC().Format(time.RFC3339)),
			"none if nothing happened in your chats since; otherwise fix the webhook checks above")
	}
	return health.Passed("last webhook", fmt.Sprintf("%s ago (%s)", ago(now.Sub(at)), at.UTC().Format(time.RFC3339)))
}

func (c *Checker) outbox(ctx context.Context, now time.Time) health.Check {
	ids, err := c.Store.DueOutboxes(ctx, now.Add(deliveryHorizon), outboxScan)
	if err != nil {
		return health.Failed("outbox", "the outbox could not be read", "see the function's log")
	}
	if len(ids) == 0 {
		return health.Passed("outbox", "every event was delivered to the bot")
	}
	var oldest time.Time
	for _, id := range ids {
		r, err := c.Store.RetryState(ctx, id)
		if err == nil && !r.Since.IsZero() && (oldest.IsZero() || r.Since.Before(oldest)) {
			oldest = r.Since
		}
	}
	n := fmt.Sprint(len(ids))
	if len(ids) == outboxScan {
		n = "at least " + n
	}
	if oldest.IsZero() {
		return health.Passed("outbox", n+" session(s) with events being delivered")
	}
	detail := fmt.Sprintf("%s session(s) with undelivered events; the oldest has been refused by the bot for %s (since %s)",
		n, ago(now.Sub(oldest)), oldest.UTC().Format(time.RFC3339))
	if now.Sub(oldest) > stuckAfter {
		return health.Warning("outbox", detail,
			"make the bot answer 2xx at BOT_CALLBACK_URL (or the Botpress webhook); events are retried for 25 hours, then dead-lettered")
	}
	return health.Passed("outbox", detail)
}

func (c *Checker) deadLetters(ctx context.Context) health.Check {
	dead, err := c.Store.DeadLetters(ctx, deadLetterScan)
	if err != nil {
		return health.Failed("dead letters", "the dead letters could not be read", "see the function's log")
	}
	if len(dead) == 0 {
		return health.Passed("dead letters", "none")
	}
	return health.Failed("dead letters",
		fmt.Sprintf("%d event(s) the bot did not accept within 25 hours; the oldest since %s", len(dead), dead[0].DeadAt.UTC().Format(time.RFC3339)),
		"fix the bot's callback endpoint, then replay them (the Replay buttons of /admin, or POST /v1/admin/dead-letters/{sessionId}/replay)")
}

// ago renders a duration for people.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// Arrivals records webhook arrivals through a WebhookClock, at most once a
// minute per provider in this process, so a busy webhook costs no write
// per delivery. It is safe for concurrent use; a nil Clock records nothing.
type Arrivals struct {
	Clock WebhookClock

	mu   sync.Mutex
	last map[string]time.Time
}

// Seen records that a webhook of provider was accepted at.
func (a *Arrivals) Seen(ctx context.Context, provider string, at time.Time) error {
	if a == nil || a.Clock == nil {
		return nil
	}
	a.mu.Lock()
	if a.last == nil {
		a.last = map[string]time.Time{}
	}
	if prev, ok := a.last[provider]; ok && at.Sub(prev) < time.Minute {
		a.mu.Unlock()
		return nil
	}
	a.last[provider] = at
	a.mu.Unlock()
	return a.Clock.WebhookSeen(ctx, provider, at)
}
