package bolt_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/bolt/bolttest"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) hitl.Store { return bolttest.Open(t) })
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func session(t *testing.T, st hitl.Store, id string) {
	t.Helper()
	s := hitl.Session{ID: id, UserID: "usr_1", Provider: hitl.LiveChat, Channel: hitl.ChannelNative, Status: hitl.StatusWaiting, CreatedAt: t0, UpdatedAt: t0}
	if _, err := st.CreateSession(context.Background(), s, ""); err != nil {
		t.Fatal(err)
	}
}

func change(id, event string, at time.Time) hitl.Change {
	return hitl.Change{SessionID: id, At: at, Event: hitl.Event{
		ID: event, Type: hitl.EventMessage, SessionID: id, Provider: hitl.LiveChat, OccurredAt: at,
		Message: &hitl.Message{Type: hitl.TypeText, Text: "hi"},
	}}
}

// TestRememberedIDsForgotten: the ids of events are forgotten once their
// span has passed, so the store does not grow with the events recorded.
func TestRememberedIDsForgotten(t *testing.T) {
	ctx := context.Background()
	st := bolttest.Open(t)
	session(t, st, "s1")
	deliver := func(prefix string, n int, from time.Time) {
		for i := range n {
			c := change("s1", fmt.Sprintf("%s%d", prefix, i), from.Add(time.Duration(i)*time.Second))
			owner := fmt.Sprintf("own-%s%d", prefix, i)
			if _, err := st.Record(ctx, c, owner, c.At.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Ack(ctx, "s1", owner, 1, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	deliver("e", 300, t0)
	// Long after, each event forgets a few of the old ids.
	deliver("f", 100, t0.Add(hitl.DedupeSpan+time.Hour))
	if n, err := st.RememberedIDs(); err != nil || n != 100 {
		t.Errorf("remembered ids = %d, %v; want the 100 recent ones", n, err)
	}
}

// TestSharedCommitKeepsOthers: a write that fails (an Ack by someone who
// does not hold the lease) fails alone; the writes committed with it
// apply.
func TestSharedCommitKeepsOthers(t *testing.T) {
	ctx := context.Background()
	st := bolttest.Open(t)
	const sessions = 8
	for i := range sessions {
		session(t, st, fmt.Sprintf("s%d", i))
	}
	var wg sync.WaitGroup
	for i := range sessions {
		id := fmt.Sprintf("s%d", i)
		wg.Go(func() {
			for j := range 20 {
				c := change(id, fmt.Sprintf("e%d", j), t0)
				if r, err := st.Record(ctx, c, fmt.Sprintf("o%d", j), t0.Add(time.Minute)); err != nil || !r.Applied {
					t.Errorf("Record %s %d = %+v, %v", id, j, r, err)
				}
				if _, err := st.Ack(ctx, id, "intruder", 1, nil); hitl.ErrorCode(err) != hitl.CodeConflict {
					t.Errorf("Ack by a non-holder: err = %v, want %s", err, hitl.CodeConflict)
				}
			}
		})
	}
	wg.Wait()
	for i := range sessions {
		p, ok, err := st.Claim(ctx, fmt.Sprintf("s%d", i), "claimer", t0.Add(time.Hour), t0.Add(2*time.Hour))
		if err != nil || !ok || len(p) != 20 {
			t.Errorf("session s%d: %d events pending, %v, %v; want 20", i, len(p), ok, err)
		}
	}
}

// BenchmarkAgentMessages is the store's part of agent messages handled
// eight at a time, as the local server's throughput run sends them: a
// Record, the bot's callback (simulated: botCall), then the Ack, over 20
// open sessions, each with an agent and its visitor's credentials (512
// bytes). Compare runs with benchstat.
func BenchmarkAgentMessages(b *testing.B) {
	const sessions, workers, botCall = 20, 8, 200 * time.Microsecond
	ctx := context.Background()
	st := bolttest.Open(b)
	for i := range sessions {
		s := hitl.Session{ID: fmt.Sprintf("s%d", i), UserID: "usr_1", Provider: hitl.LiveChat, Channel: hitl.ChannelNative, Status: hitl.StatusOpening, CreatedAt: t0, UpdatedAt: t0}
		if _, err := st.CreateSession(ctx, s, ""); err != nil {
			b.Fatal(err)
		}
		o := hitl.Opened{ConversationID: fmt.Sprintf("c%d", i), Visitor: hitl.Visitor{ID: "v1", Credentials: make([]byte, 512), CredentialsExpireAt: t0.Add(time.Hour)}}
		if err := st.Opened(ctx, s.ID, o, t0); err != nil {
			b.Fatal(err)
		}
		assigned := hitl.Change{SessionID: s.ID, Status: hitl.StatusAssigned, Agent: &hitl.Agent{ID: "agent@example.com", Name: "Agent"}, At: t0, Event: hitl.Event{ID: "assigned", Type: hitl.EventAssigned, SessionID: s.ID, Provider: hitl.LiveChat, OccurredAt: t0}}
		if _, err := st.Record(ctx, assigned, "setup", t0.Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Ack(ctx, s.ID, "setup", 1, nil); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.SetParallelism((workers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			id, owner := fmt.Sprintf("s%d", n%sessions), fmt.Sprintf("o%d", n)
			at := time.Now()
			r, err := st.Record(ctx, change(id, fmt.Sprintf("e%d", n), at), owner, at.Add(time.Minute))
			if err != nil {
				b.Fatal(err)
			}
			if !r.Leased {
				continue // another message's deliverer sends it
			}
			time.Sleep(botCall)
			for pending := r.Pending; ; {
				more, err := st.Ack(ctx, id, owner, len(pending), nil)
				if err != nil {
					b.Fatal(err)
				}
				var ok bool
				if more {
					if pending, ok, err = st.Claim(ctx, id, owner, time.Now(), time.Now().Add(time.Minute)); err != nil {
						b.Fatal(err)
					}
				}
				if !ok {
					break
				}
			}
		}
	})
}
