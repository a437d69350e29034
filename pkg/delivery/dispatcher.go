package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// Retry policy defaults.
const (
	DefaultWindow = 25 * time.Hour // retry at least 24 h before dead-lettering
	// DefaultSendTimeout bounds one callback attempt: a bot that does not
	// answer within it has not accepted the event.
	DefaultSendTimeout = 3 * time.Second
	firstBackoff       = 10 * time.Second
	maxBackoff         = 15 * time.Minute
	storeTimeout       = 5 * time.Second
	sweepBatch         = 50
	sweepWorkers       = 8 // sessions a sweep delivers at once
	maxFlushRepeats    = 20
)

// Dispatcher drains session outboxes in order.
type Dispatcher struct {
	Store   Store
	Senders map[string]Sender // by hitl channel
	Log     *slog.Logger
	Now     func() time.Time
	// Window is how long a failing outbox is retried before its events are
	// dead-lettered; zero means DefaultWindow.
	Window time.Duration
	// SendTimeout bounds each callback attempt; zero means
	// DefaultSendTimeout.
	SendTimeout time.Duration
}

var _ hitl.Outbox = (*Dispatcher)(nil)

// Store is what the dispatcher calls of hitl.Store: the outboxes and their
// dead letters.
type Store interface {
	Claim(ctx context.Context, sessionID, owner string, now, leaseUntil time.Time) (pending []hitl.Event, ok bool, err error)
	Ack(ctx context.Context, sessionID, owner string, delivered int, retry *hitl.Retry) (more bool, err error)
	RetryState(ctx context.Context, sessionID string) (hitl.Retry, error)
	DueOutboxes(ctx context.Context, now time.Time, limit int) ([]string, error)
	Bury(ctx context.Context, sessionID, owner string, at time.Time) error
	DeadLetters(ctx context.Context, limit int) ([]hitl.DeadLetter, error)
	Replay(ctx context.Context, sessionID string, now time.Time) (int, error)
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

// Flush delivers pending, in order, while owner holds the session's lease,
// then releases it. Events appended meanwhile are delivered too. The first
// refused event stops the run: it and everything after it wait for the
// retry, so order is kept.
func (d *Dispatcher) Flush(ctx context.Context, sessionID, owner string, pending []hitl.Event) {
	// The bookkeeping must happen even if the caller's context ends mid-run,
	// or the lease would be held until it expires.
	storeCtx := context.WithoutCancel(ctx)
	for range maxFlushRepeats {
		delivered, err := d.sendAll(ctx, pending)
		var retry *hitl.Retry
		if err != nil {
			d.Log.Warn("bot did not accept event", "session_id", sessionID, "event", pending[delivered].ID, "err", err)
			var buried bool
			retry, buried = d.failed(storeCtx, sessionID, owner, delivered)
			if buried {
				return
			}
		}
		sctx, cancel := context.WithTimeout(storeCtx, storeTimeout)
		more, ackErr := d.Store.Ack(sctx, sessionID, owner, delivered, retry)
		cancel()
		if ackErr != nil {
			d.Log.Error("acknowledge delivered events", "session_id", sessionID, "delivered", delivered, "err", ackErr)
			return
		}
		if retry != nil || !more || ctx.Err() != nil {
			return
		}
		sctx, cancel = context.WithTimeout(storeCtx, storeTimeout)
		next, ok, claimErr := d.Store.Claim(sctx, sessionID, owner, d.now(), d.now().Add(hitl.DeliveryLease))
		cancel()
		if claimErr != nil || !ok {
			if claimErr != nil {
				d.Log.Error("claim outbox", "session_id", sessionID, "err", claimErr)
			}
			return
		}
		pending = next
	}
}

func (d *Dispatcher) sendTimeout() time.Duration {
	if d.SendTimeout > 0 {
		return d.SendTimeout
	}
	return DefaultSendTimeout
}

// sendAll sends events in order and returns how many were accepted, and the
// error of the first that was not.
func (d *Dispatcher) sendAll(ctx context.Context, events []hitl.Event) (int, error) {
	for i, e := range events {
		sender, ok := d.Senders[e.Channel]
		if !ok {
			return i, fmt.Errorf("no sender for channel %q", e.Channel)
		}
		sctx, cancel := context.WithTimeout(ctx, d.sendTimeout())
		err := sender.Send(sctx, e)
		cancel()
		if err != nil {
			return i, err
		}
		d.Log.Info("event delivered", "session_id", e.SessionID, "event", e.ID, "type", e.Type)
	}
	return len(events), nil
}

// failed decides what follows a refused delivery: the next attempt, or,
// past the window, the dead letters (buried true).
func (d *Dispatcher) failed(ctx context.Context, sessionID, owner string, delivered int) (*hitl.Retry, bool) {
	now := d.now()
	state, err := d.Store.RetryState(ctx, sessionID)
	if err != nil {
		d.Log.Error("read retry state", "session_id", sessionID, "err", err)
	}
	if delivered > 0 || state.Since.IsZero() {
		state = hitl.Retry{Since: now} // progress was made: a new run of failures
	}
	window := d.Window
	if window == 0 {
		window = DefaultWindow
	}
	if now.Sub(state.Since) >= window {
		if err := d.buryAfterAck(ctx, sessionID, owner, delivered, now); err != nil {
			d.Log.Error("dead-letter events", "session_id", sessionID, "err", err)
			return &hitl.Retry{At: now.Add(maxBackoff), Attempts: state.Attempts + 1, Since: state.Since}, false
		}
		d.Log.Warn("events dead-lettered after the retry window", "session_id", sessionID)
		return nil, true
	}
	state.Attempts++
	state.At = now.Add(Backoff(state.Attempts))
	return &state, false
}

// buryAfterAck removes what was delivered in this run, then moves the rest
// to the dead letters.
func (d *Dispatcher) buryAfterAck(ctx context.Context, sessionID, owner string, delivered int, now time.Time) error {
	if delivered > 0 {
		// Keep the lease across the ack: a retry record due now keeps the
		// outbox claimable by us alone until we re-claim.
		if _, err := d.Store.Ack(ctx, sessionID, owner, delivered, &hitl.Retry{At: now, Since: now}); err != nil {
			return err
		}
		if _, ok, err := d.Store.Claim(ctx, sessionID, owner, now, now.Add(hitl.DeliveryLease)); err != nil || !ok {
			return errors.Join(err, errors.New("lost the outbox lease before dead-lettering"))
		}
	}
	return d.Store.Bury(ctx, sessionID, owner, now)
}

// Backoff is the wait before attempt n+1 after n failures: exponential from
// 10 s, capped at 15 min, with ±20 % jitter so many sessions do not retry in
// lockstep.
func Backoff(n int) time.Duration {
	b := firstBackoff
	for i := 1; i < n && b < maxBackoff; i++ {
		b *= 2
	}
	b = min(b, maxBackoff)
	jitter := time.Duration(rand.Int64N(int64(b)/5*2+1)) - b/5
	return b + jitter
}

// Sweep retries every outbox that is due: sessions whose delivery failed
// earlier, or whose deliverer died holding the lease. Sessions are
// independent, so up to sweepWorkers are delivered at once: one slow bot
// answer does not hold up the others. It returns how many sessions it
// attempted.
func (d *Dispatcher) Sweep(ctx context.Context) (int, error) {
	ids, err := d.Store.DueOutboxes(ctx, d.now(), sweepBatch)
	if err != nil {
		return 0, fmt.Errorf("list due outboxes: %w", err)
	}
	var (
		wg        sync.WaitGroup
		attempted atomic.Int64
		slots     = make(chan struct{}, sweepWorkers)
	)
claims:
	for _, id := range ids {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break claims
		}
		wg.Go(func() {
			defer func() { <-slots }()
			owner := hitl.NewID("own")
			pending, ok, err := d.Store.Claim(ctx, id, owner, d.now(), d.now().Add(hitl.DeliveryLease))
			if err != nil {
				d.Log.Error("claim outbox", "session_id", id, "err", err)
				return
			}
			if ok {
				attempted.Add(1)
				d.Flush(ctx, id, owner, pending)
			}
		})
	}
	wg.Wait()
	return int(attempted.Load()), nil
}

// Replay moves a session's dead letters back to its outbox and delivers them.
func (d *Dispatcher) Replay(ctx context.Context, sessionID string) (int, error) {
	n, err := d.Store.Replay(ctx, sessionID, d.now())
	if err != nil {
		return 0, fmt.Errorf("replay dead letters of session %s: %w", sessionID, err)
	}
	owner := hitl.NewID("own")
	if pending, ok, err := d.Store.Claim(ctx, sessionID, owner, d.now(), d.now().Add(hitl.DeliveryLease)); err == nil && ok {
		d.Flush(ctx, sessionID, owner, pending)
	}
	return n, nil
}

// DeadLetters lists undeliverable events for the operator.
func (d *Dispatcher) DeadLetters(ctx context.Context, limit int) ([]hitl.DeadLetter, error) {
	return d.Store.DeadLetters(ctx, limit)
}
