package delivery_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt/bolttest"
)

// A sweep delivers due sessions side by side: a bot slow to answer for one
// session does not hold up the others. (Equally due, the slow one is
// listed first.)
func TestSweepDeliversSessionsSideBySide(t *testing.T) {
	st := bolttest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	for _, id := range []string{"ses_1_slow", "ses_2_quick"} {
		s := hitl.Session{ID: id, UserID: "usr_1", Provider: "livechat", Channel: hitl.ChannelNative, Status: hitl.StatusWaiting, CreatedAt: now}
		if _, err := st.CreateSession(ctx, s, ""); err != nil {
			t.Fatal(err)
		}
		// Recorded by a deliverer that died: its lease has run out.
		c := hitl.Change{SessionID: id, At: now, Event: hitl.Event{ID: "evt_" + id, Type: hitl.EventMessage, SessionID: id, Channel: hitl.ChannelNative}}
		if _, err := st.Record(ctx, c, "own_dead", now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	quick := make(chan struct{})
	bot := delivery.SenderFunc(func(ctx context.Context, e hitl.Event) error {
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
	d := &delivery.Dispatcher{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Senders: map[string]delivery.Sender{hitl.ChannelNative: bot}}
	if n, err := d.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("Sweep: %d sessions, %v; want 2", n, err)
	}
	for _, id := range []string{"ses_1_slow", "ses_2_quick"} {
		if retry, err := st.RetryState(ctx, id); err != nil || retry.Attempts != 0 {
			t.Errorf("%s: retry state %+v, %v; want delivered at the first attempt", id, retry, err)
		}
	}
	if due, err := st.DueOutboxes(ctx, time.Now().Add(time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("outboxes still due after the sweep: %v, %v", due, err)
	}
}
