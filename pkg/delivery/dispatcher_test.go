package delivery_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt/bolttest"
)

// recordMessage opens session id on st and records a message event in it,
// under owner's delivery lease until leaseUntil.
func recordMessage(t *testing.T, st *bolt.Store, id, owner string, leaseUntil time.Time) hitl.Recorded {
	t.Helper()
	ctx, now := t.Context(), time.Now().UTC()
	s := hitl.Session{ID: id, UserID: "usr_1", Provider: "livechat", Channel: hitl.ChannelNative, Status: hitl.StatusWaiting, CreatedAt: now}
	if _, err := st.CreateSession(ctx, s, ""); err != nil {
		t.Fatal(err)
	}
	c := hitl.Change{SessionID: id, At: now, Event: hitl.Event{ID: "evt_" + id, Type: hitl.EventMessage, SessionID: id, Channel: hitl.ChannelNative}}
	rec, err := st.Record(ctx, c, owner, leaseUntil)
	if err != nil || !rec.Leased {
		t.Fatalf("record on %s: %+v, %v", id, rec, err)
	}
	return rec
}

func dispatcher(st *bolt.Store, bot delivery.SenderFunc) *delivery.Dispatcher {
	return &delivery.Dispatcher{Store: st, Log: slog.New(slog.DiscardHandler), Senders: map[string]delivery.Sender{hitl.ChannelNative: bot}}
}

func TestAHangingBotIsGivenUpOnAfterSendTimeout(t *testing.T) {
	st := bolttest.Open(t)
	rec := recordMessage(t, st, "ses_1", "own_1", time.Now().Add(hitl.DeliveryLease))
	d := dispatcher(st, func(ctx context.Context, _ hitl.Event) error {
		<-ctx.Done()
		return ctx.Err()
	})
	d.SendTimeout = 20 * time.Millisecond
	start := time.Now()
	d.Flush(t.Context(), "ses_1", "own_1", rec.Pending)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Flush took %s with a 20ms send timeout", took)
	}
	retry, err := st.RetryState(t.Context(), "ses_1")
	if err != nil || retry.Attempts != 1 || retry.At.IsZero() {
		t.Fatalf("retry state %+v, %v: the timed-out event is not due for a retry", retry, err)
	}
}

// A sweep delivers due sessions side by side: a bot slow to answer for one
// session does not hold up the others. (Equally due, the slow one is
// listed first.)
func TestSweepDeliversSessionsSideBySide(t *testing.T) {
	st := bolttest.Open(t)
	sessions := []string{"ses_1_slow", "ses_2_quick"}
	for _, id := range sessions {
		// Recorded by a deliverer that died: its lease has run out.
		recordMessage(t, st, id, "own_dead", time.Now().Add(-time.Second))
	}
	quick := make(chan struct{})
	d := dispatcher(st, func(ctx context.Context, e hitl.Event) error {
		if e.SessionID == "ses_2_quick" {
			close(quick)
			return nil
		}
		select { // the slow session's answer waits for the quick one's
		case <-quick:
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("the quick session was not delivered while the slow one waited")
		}
	})
	if n, err := d.Sweep(t.Context()); err != nil || n != 2 {
		t.Fatalf("Sweep: %d sessions, %v; want 2", n, err)
	}
	for _, id := range sessions {
		if retry, err := st.RetryState(t.Context(), id); err != nil || retry.Attempts != 0 {
			t.Errorf("%s: retry state %+v, %v; want delivered at the first attempt", id, retry, err)
		}
	}
	if due, err := st.DueOutboxes(t.Context(), time.Now().Add(time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("outboxes still due after the sweep: %v, %v", due, err)
	}
}
