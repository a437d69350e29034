package bolt

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/storetest"
)

// TestLegacyVisitor: a record written before visitor credentials were
// opaque, its visitor's token, expiry and cookies as fields and the record
// indexed by that expiry, reads in the new shape.
func TestLegacyVisitor(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "hitl.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	expiry := t0.Add(30 * time.Minute)
	s := hitl.Session{ID: "s1", UserID: "usr_1", Provider: hitl.LiveChat, Channel: hitl.ChannelNative, Status: hitl.StatusWaiting, CreatedAt: t0, UpdatedAt: t0}
	old := visitor{ID: storetest.LegacyVisitorID, Token: storetest.LegacyToken, TokenExpiresAt: expiry, Cookies: storetest.LegacyCookies}
	err = st.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(visitorsBucket).Put([]byte(timeKey(expiry)+"\x00"+s.ID), nil); err != nil {
			return err
		}
		return putJSON(tx.Bucket(sessionsBucket), s.ID, &sessionPart{Session: s, Visitor: old})
	})
	if err != nil {
		t.Fatal(err)
	}
	storetest.LegacyVisitor(t, st, s, expiry, func() bool {
		var raw string
		if err := st.db.View(func(tx *bbolt.Tx) error { raw = string(tx.Bucket(sessionsBucket).Get([]byte(s.ID))); return nil }); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(raw, `"token"`) || strings.Contains(raw, `"cookies"`)
	})
}

// TestLegacyOutbox: a record written before delivery state was stored
// apart, holding its outbox, lease, retry state and due time itself, and
// the session's idle deadline and first reply in its session, reads and
// delivers as before; its first delivery write moves that state out.
func TestLegacyOutbox(t *testing.T) {
	ctx := context.Background()
	st, err := Open(filepath.Join(t.TempDir(), "hitl.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := hitl.Session{ID: "s1", UserID: "usr_1", Provider: hitl.LiveChat, Channel: hitl.ChannelNative, Status: hitl.StatusAssigned,
		CreatedAt: t0, UpdatedAt: t0.Add(time.Minute), FirstReplyAt: t0.Add(30 * time.Second), IdleUntil: t0.Add(time.Hour)}
	event := hitl.Event{ID: "e1", Type: hitl.EventMessage, SessionID: "s1", Provider: hitl.LiveChat, OccurredAt: t0, Message: &hitl.Message{Type: hitl.TypeText, Text: "hi"}}
	lease, due := t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	legacy := struct {
		Session    hitl.Session `json:"session"`
		Outbox     []hitl.Event `json:"outbox"`
		LeaseOwner string       `json:"leaseOwner"`
		LeaseUntil time.Time    `json:"leaseUntil"`
		Retry      retry        `json:"retry"`
		Due        time.Time    `json:"due"`
	}{s, []hitl.Event{event}, "crashed", lease, retry{At: due, Attempts: 2, Since: t0}, due}
	err = st.db.Update(func(tx *bbolt.Tx) error {
		for _, e := range []indexEntry{entryOf(dueBucket, due, s.ID), entryOf(idleBucket, s.IdleUntil, s.ID)} {
			if err := tx.Bucket(e.bucket).Put(e.key, nil); err != nil {
				return err
			}
		}
		return putJSON(tx.Bucket(sessionsBucket), s.ID, legacy)
	})
	if err != nil {
		t.Fatal(err)
	}

	got, err := st.GetSession(ctx, s.ID)
	if err != nil || !got.UpdatedAt.Equal(s.UpdatedAt) || !got.FirstReplyAt.Equal(s.FirstReplyAt) || !got.IdleUntil.Equal(s.IdleUntil) {
		t.Errorf("GetSession = updated %v, first reply %v, idle until %v, %v; want the legacy record's", got.UpdatedAt, got.FirstReplyAt, got.IdleUntil, err)
	}
	if r, err := st.RetryState(ctx, s.ID); err != nil || r.Attempts != 2 || !r.At.Equal(due) {
		t.Errorf("RetryState = %+v, %v; want 2 attempts, due %v", r, err, due)
	}
	if idle, err := st.IdleSessions(ctx, s.IdleUntil, 10); err != nil || len(idle) != 1 {
		t.Errorf("IdleSessions = %d sessions, %v; want the legacy one", len(idle), err)
	}
	if _, ok, err := st.Claim(ctx, s.ID, "sweeper", lease.Add(-time.Second), due); err != nil || ok {
		t.Errorf("Claim under the legacy lease = %v, %v; want refused", ok, err)
	}
	pending, ok, err := st.Claim(ctx, s.ID, "sweeper", due, due.Add(time.Minute))
	if err != nil || !ok || len(pending) != 1 || pending[0].ID != "e1" || pending[0].UserID != "usr_1" || pending[0].Channel != hitl.ChannelNative {
		t.Fatalf("Claim = %+v, %v, %v; want e1 routed to usr_1", pending, ok, err)
	}
	var raw string
	if err := st.db.View(func(tx *bbolt.Tx) error { raw = string(tx.Bucket(sessionsBucket).Get([]byte(s.ID))); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, `"outbox"`) || strings.Contains(raw, `"leaseOwner"`) {
		t.Errorf("the session's record still holds its delivery state after a write: %s", raw)
	}
	if more, err := st.Ack(ctx, s.ID, "sweeper", 1, nil); err != nil || more {
		t.Errorf("Ack = %v, %v; want nothing more", more, err)
	}
	if ids, err := st.DueOutboxes(ctx, due.Add(time.Hour), 10); err != nil || len(ids) != 0 {
		t.Errorf("DueOutboxes = %v, %v; want none once delivered", ids, err)
	}
	got, err = st.GetSession(ctx, s.ID)
	if err != nil || !got.UpdatedAt.Equal(s.UpdatedAt) || !got.IdleUntil.Equal(s.IdleUntil) || got.Status != hitl.StatusAssigned {
		t.Errorf("GetSession after delivery = %+v, %v; want the legacy session", got, err)
	}
	if idle, err := st.IdleSessions(ctx, s.IdleUntil, 10); err != nil || len(idle) != 1 {
		t.Errorf("IdleSessions after delivery = %d sessions, %v; want the legacy one", len(idle), err)
	}
}
