package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// Deferred sessions: recorded without a user (StatusPending), bound to
// their user by the first message, with a transcript and an idle deadline.

func newDeferred(id string) hitl.Session {
	s := newSession(id)
	s.UserID, s.Status, s.Channel = "", hitl.StatusPending, "contract"
	s.Title, s.Description, s.IdleUntil = "Order "+id, "late delivery", t0.Add(30*time.Minute)
	s.Transcript = []hitl.TranscriptEntry{
		{From: "user", Message: hitl.Message{Type: hitl.TypeText, Text: "where is my parcel"}},
		{From: "bot", Message: hitl.Message{Type: hitl.TypeImage, URL: "https://example.com/map.png"}},
	}
	return s
}

func createDeferred(t *testing.T, st hitl.Store, id string) hitl.Session {
	t.Helper()
	s, err := st.CreateSession(ctx, newDeferred(id), "")
	if err != nil {
		t.Fatalf("CreateSession %s: %v", id, err)
	}
	return s
}

func botEntry(text string) hitl.TranscriptEntry {
	return hitl.TranscriptEntry{From: "bot", Message: hitl.Message{Type: hitl.TypeText, Text: text}}
}

func testDeferred(t *testing.T, st hitl.Store) {
	s := createDeferred(t, st, "s1")
	wantSession(t, s, newDeferred("s1"))
	wantSession(t, getSession(t, st, s.ID), s)

	add := botEntry("An agent will be with you shortly")
	at := t0.Add(time.Second)
	if err := st.AppendTranscript(ctx, s.ID, add, at); err != nil {
		t.Fatalf("AppendTranscript: %v", err)
	}
	want := s
	want.Transcript, want.UpdatedAt = append(slices.Clone(s.Transcript), add), at
	wantSession(t, getSession(t, st, s.ID), want)

	if err := st.AppendTranscript(ctx, "missing", add, at); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("AppendTranscript to a missing session: err = %v, want ErrNotFound", err)
	}
	open := openSession(t, st, "s2")
	if err := st.AppendTranscript(ctx, open.ID, add, at); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Errorf("AppendTranscript to an open session: err = %v, want code %s", err, hitl.CodeConflict)
	}
}

func testTranscriptFull(t *testing.T, st hitl.Store) {
	s := createDeferred(t, st, "s1")
	big := botEntry(strings.Repeat("x", 10<<10))
	var err error
	for i := 0; err == nil; i++ {
		if i > hitl.MaxTranscriptBytes/(10<<10) {
			t.Fatalf("the transcript took more than %d bytes", hitl.MaxTranscriptBytes)
		}
		err = st.AppendTranscript(ctx, s.ID, big, t0)
	}
	if hitl.ErrorCode(err) != hitl.CodeRateLimited {
		t.Fatalf("AppendTranscript to a full transcript: err = %v, want code %s", err, hitl.CodeRateLimited)
	}
	if err := st.AppendTranscript(ctx, s.ID, botEntry("short"), t0); err != nil {
		t.Errorf("a short entry that fits was refused: %v", err)
	}
}

func testBindUser(t *testing.T, st hitl.Store) {
	s := createDeferred(t, st, "s1")
	at := t0.Add(time.Minute)
	bound, err := st.BindUser(ctx, s.ID, "usr_1", at, t0)
	if err != nil {
		t.Fatalf("BindUser: %v", err)
	}
	want := s
	want.UserID, want.Status, want.UpdatedAt = "usr_1", hitl.StatusOpening, at
	wantSession(t, bound, want)
	wantSession(t, getSession(t, st, s.ID), want)

	if _, err := st.BindUser(ctx, s.ID, "usr_2", at, at); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Errorf("BindUser of a fresh opening session: err = %v, want code %s", err, hitl.CodeConflict)
	}
	// An opener that died is taken over once its binding is stale.
	later := at.Add(5 * time.Minute)
	taken, err := st.BindUser(ctx, s.ID, "usr_2", later, at.Add(time.Nanosecond))
	if err != nil || taken.UserID != "usr_2" || !taken.UpdatedAt.Equal(later) {
		t.Fatalf("BindUser of a stale opening session = %+v, %v", taken, err)
	}
	// The first opener gives up: its unbind no longer applies.
	if err := st.UnbindUser(ctx, s.ID, at); err != nil {
		t.Fatalf("UnbindUser with an old binding: %v", err)
	}
	if got := getSession(t, st, s.ID); got.UserID != "usr_2" || got.Status != hitl.StatusOpening {
		t.Fatalf("UnbindUser with an old binding changed the session: %+v", got)
	}
	if err := st.UnbindUser(ctx, s.ID, later); err != nil {
		t.Fatalf("UnbindUser: %v", err)
	}
	want.UserID, want.Status, want.UpdatedAt = "", hitl.StatusPending, later
	wantSession(t, getSession(t, st, s.ID), want)

	if _, err := st.BindUser(ctx, s.ID, "usr_3", later, t0); err != nil {
		t.Fatalf("BindUser after UnbindUser: %v", err)
	}
	v := newVisitor("s1", t0.Add(8*time.Hour))
	if err := st.Opened(ctx, s.ID, hitl.Opened{ConversationID: "conv-s1", Visitor: v}, later); err != nil {
		t.Fatalf("Opened: %v", err)
	}
	got := getSession(t, st, s.ID)
	if got.Status != hitl.StatusWaiting || got.Transcript != nil || got.Title != s.Title || got.UserID != "usr_3" {
		t.Errorf("after Opened the session is %s", dump(got))
	}
	if byConv, err := st.SessionByConversation(ctx, s.Provider, "conv-s1"); err != nil || byConv.UserID != "usr_3" {
		t.Errorf("SessionByConversation = %+v, %v; want user usr_3", byConv, err)
	}
	if _, err := st.BindUser(ctx, s.ID, "usr_4", later, later.Add(time.Hour)); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Errorf("BindUser of an open session: err = %v, want code %s", err, hitl.CodeConflict)
	}
	if err := st.UnbindUser(ctx, s.ID, later); err != nil || getSession(t, st, s.ID).Status != hitl.StatusWaiting {
		t.Errorf("UnbindUser of an open session: err = %v, or it changed the session", err)
	}
	if _, err := st.BindUser(ctx, "missing", "usr_1", at, t0); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("BindUser of a missing session: err = %v, want ErrNotFound", err)
	}
}

func testBindUserConcurrent(t *testing.T, st hitl.Store) {
	s := createDeferred(t, st, "s1")
	var won countRecorded
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			_, err := st.BindUser(ctx, s.ID, fmt.Sprintf("usr_%d", i), t0.Add(time.Minute), t0)
			if err != nil && hitl.ErrorCode(err) != hitl.CodeConflict {
				t.Error(err)
			}
			won.add(err == nil)
		})
	}
	wg.Wait()
	if won.n != 1 {
		t.Errorf("%d callers bound the session, want 1", won.n)
	}
}

func testIdleSessions(t *testing.T, st hitl.Store) {
	a := createDeferred(t, st, "a") // idle at t0+30m
	b := createDeferred(t, st, "b")
	if err := st.ExtendIdle(ctx, b.ID, t0.Add(10*time.Minute)); err != nil {
		t.Fatalf("ExtendIdle: %v", err)
	}
	c := createDeferred(t, st, "c")
	closeSession(t, st, c)
	openSession(t, st, "d") // no idle deadline

	idle := func(now time.Time, limit int) []string {
		t.Helper()
		return listedIDs(t, "IdleSessions", func() ([]hitl.Session, error) { return st.IdleSessions(ctx, now, limit) },
			func(s hitl.Session) string { return s.ID })
	}
	if got := idle(t0.Add(5*time.Minute), 10); len(got) != 0 {
		t.Errorf("IdleSessions(t0+5m) = %v, want none", got)
	}
	if got := idle(t0.Add(10*time.Minute), 10); !slices.Equal(got, []string{"b"}) {
		t.Errorf("IdleSessions(t0+10m) = %v, want [b]: due at its deadline", got)
	}
	if got := idle(t0.Add(time.Hour), 10); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("IdleSessions(t0+1h) = %v, want [b a]", got)
	}
	if got := idle(t0.Add(time.Hour), 1); !slices.Equal(got, []string{"b"}) {
		t.Errorf("IdleSessions(t0+1h, limit 1) = %v, want [b]", got)
	}
	got, err := st.IdleSessions(ctx, t0.Add(time.Hour), 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("IdleSessions = %v, %v", got, err)
	}
	wantSession(t, got[1], a)

	if err := st.ExtendIdle(ctx, b.ID, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := idle(t0.Add(time.Hour), 10); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after b was extended, IdleSessions(t0+1h) = %v, want [a]", got)
	}
	closeSession(t, st, a)
	if got := idle(t0.Add(3*time.Hour), 10); !slices.Equal(got, []string{"b"}) {
		t.Errorf("after a closed, IdleSessions(t0+3h) = %v, want [b]", got)
	}
	if err := st.ExtendIdle(ctx, a.ID, t0.Add(5*time.Hour)); err != nil {
		t.Errorf("ExtendIdle of a closed session: %v", err)
	}
	if got := getSession(t, st, a.ID); !got.IdleUntil.Equal(a.IdleUntil) {
		t.Errorf("ExtendIdle changed a closed session's deadline to %v", got.IdleUntil)
	}
	if err := st.ExtendIdle(ctx, "missing", t0); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("ExtendIdle of a missing session: err = %v, want ErrNotFound", err)
	}
}

func testRecordReportsIdleDeadline(t *testing.T, st hitl.Store) {
	s := createDeferred(t, st, "s1")
	if r := record(t, st, newChange(s, "e1"), "o1", t0.Add(time.Minute)); !r.Applied || !r.IdleUntil.Equal(s.IdleUntil) {
		t.Errorf("Record = %+v, want applied with the idle deadline %v", r, s.IdleUntil)
	}
	if r := record(t, st, newChange(s, "e2"), "o2", t0.Add(time.Minute)); !r.Applied || !r.IdleUntil.Equal(s.IdleUntil) {
		t.Errorf("Record under another's lease = %+v, want the idle deadline %v", r, s.IdleUntil)
	}
	o := openSession(t, st, "s2")
	if r := record(t, st, newChange(o, "e1"), "o1", t0.Add(time.Minute)); !r.IdleUntil.IsZero() {
		t.Errorf("Record on a session without an idle deadline reports %v", r.IdleUntil)
	}
}
