package delivery_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/delivery"
	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt/bolttest"
)

func TestAHangingBotIsGivenUpOnAfterSendTimeout(t *testing.T) {
	st := bolttest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	s := hitl.Session{ID: "ses_1", UserID: "usr_1", Provider: "livechat", Channel: hitl.ChannelNative, Status: hitl.StatusWaiting, CreatedAt: now}
	if _, err := st.CreateSession(ctx, s, ""); err != nil {
		t.Fatal(err)
	}
	rec, err := st.Record(ctx, hitl.Change{SessionID: s.ID, At: now, Event: hitl.Event{ID: "evt_1", Type: hitl.EventMessage,
		SessionID: s.ID, Channel: hitl.ChannelNative}}, "own_1", now.Add(hitl.DeliveryLease))
	if err != nil || !rec.Leased {
		t.Fatalf("record: %+v, %v", rec, err)
	}
	hang := delivery.SenderFunc(func(ctx context.Context, _ hitl.Event) error {
		<-ctx.Done()
		return ctx.Err()
	})
	d := &delivery.Dispatcher{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Senders: map[string]delivery.Sender{hitl.ChannelNative: hang}, SendTimeout: 20 * time.Millisecond}
	start := time.Now()
	d.Flush(ctx, s.ID, "own_1", rec.Pending)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Flush took %s with a 20ms send timeout", took)
	}
	retry, err := st.RetryState(ctx, s.ID)
	if err != nil || retry.Attempts != 1 || retry.At.IsZero() {
		t.Fatalf("retry state %+v, %v: the timed-out event is not due for a retry", retry, err)
	}
}
