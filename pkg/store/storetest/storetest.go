// Package storetest is the contract every hitl.Store implementation passes:
// one suite, run by each implementation's tests against a fresh store.
//
// The suite passes explicit times and never sleeps; concurrency cases start
// many goroutines at once and check that conditional writes let exactly one
// win.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// t0 is the suite's clock origin. It lies in the future so that no store
// expires the items a test writes.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// racers is how many goroutines contend in the concurrency cases.
const racers = 20

// Run runs the contract against stores made by newStore, one per subtest.
func Run(t *testing.T, newStore func(t *testing.T) hitl.Store) {
	cases := []struct {
		name string
		test func(*testing.T, hitl.Store)
	}{
		{"Users", testUsers},
		{"CreateSession", testCreateSession},
		{"IdempotencyKey", testIdempotencyKey},
		{"IdempotencyKeyConcurrent", testIdempotencyKeyConcurrent},
		{"DeleteSession", testDeleteSession},
		{"Opened", testOpened},
		{"SaveVisitor", testSaveVisitor},
		{"VisitorsExpiring", testVisitorsExpiring},
		{"Record", testRecord},
		{"RecordClosing", testRecordClosing},
		{"RecordLeaseHeld", testRecordLeaseHeld},
		{"RecordSameIDConcurrent", testRecordSameIDConcurrent},
		{"RecordDistinctConcurrent", testRecordDistinctConcurrent},
		{"ClosingConcurrent", testClosingConcurrent},
		{"RemembersRecentIDs", testRemembersRecentIDs},
		{"Claim", testClaim},
		{"ClaimConcurrent", testClaimConcurrent},
		{"Ack", testAck},
		{"AckKeepsAppended", testAckKeepsAppended},
		{"AckConcurrentAppends", testAckConcurrentAppends},
		{"AckNotOwner", testAckNotOwner},
		{"Retry", testRetry},
		{"DueOutboxes", testDueOutboxes},
		{"BuryReplay", testBuryReplay},
		{"DeadLettersOrder", testDeadLettersOrder},
		{"AcquireLease", testAcquireLease},
		{"AcquireLeaseConcurrent", testAcquireLeaseConcurrent},
		{"Deferred", testDeferred},
		{"TranscriptFull", testTranscriptFull},
		{"BindUser", testBindUser},
		{"BindUserConcurrent", testBindUserConcurrent},
		{"IdleSessions", testIdleSessions},
		{"RecordReportsIdleDeadline", testRecordReportsIdleDeadline},
		{"KeepConversation", testKeepConversation},
		{"KeepConversationDeleted", testKeepConversationDeleted},
		{"OpenedAliases", testOpenedAliases},
		{"HoldHeld", testHoldHeld},
		{"Unassign", testUnassign},
		{"RemembersIDsWithinSpan", testRemembersIDsWithinSpan},
		{"Settings", testSettings},
		{"RecordAfterClose", testRecordAfterClose},
		{"OpenSessions", testOpenSessions},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.test(t, newStore(t)) })
	}
}

var ctx = context.Background()

func testUsers(t *testing.T, st hitl.Store) {
	u := hitl.User{ID: "usr_1", Name: "Ada", Email: "ada@example.com", Phone: "+1555", PictureURL: "https://example.com/a.png", ExternalID: "x1", CreatedAt: t0}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	got, err := st.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if !reflect.DeepEqual(got, u) {
		t.Errorf("GetUser = %+v, want %+v", got, u)
	}
	if err := st.CreateUser(ctx, hitl.User{ID: u.ID, Name: "Other", CreatedAt: t0}); !errors.Is(err, hitl.ErrExists) {
		t.Errorf("CreateUser of an existing id: err = %v, want ErrExists", err)
	}
	if got, _ := st.GetUser(ctx, u.ID); got.Name != "Ada" {
		t.Errorf("a failed CreateUser replaced the user: %+v", got)
	}
	if _, err := st.GetUser(ctx, "usr_missing"); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("GetUser of a missing id: err = %v, want ErrNotFound", err)
	}
}

func testCreateSession(t *testing.T, st hitl.Store) {
	s := newSession("s1")
	s.Agent = &hitl.Agent{ID: "ag1", Name: "Grace"}
	got, err := st.CreateSession(ctx, s, "")
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	wantSession(t, got, s)
	wantSession(t, getSession(t, st, s.ID), s)
	if _, err := st.CreateSession(ctx, newSession("s1"), ""); !errors.Is(err, hitl.ErrExists) {
		t.Errorf("CreateSession of an existing id: err = %v, want ErrExists", err)
	}
	if _, err := st.GetSession(ctx, "missing"); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("GetSession of a missing id: err = %v, want ErrNotFound", err)
	}
}

func testIdempotencyKey(t *testing.T, st hitl.Store) {
	first := newSession("s1")
	if _, err := st.CreateSession(ctx, first, "key-1"); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	got, err := st.CreateSession(ctx, newSession("s2"), "key-1")
	if !errors.Is(err, hitl.ErrExists) {
		t.Fatalf("second CreateSession with the key: err = %v, want ErrExists", err)
	}
	wantSession(t, got, first)
	if _, err := st.GetSession(ctx, "s2"); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("the second session was stored: err = %v", err)
	}
	if _, err := st.CreateSession(ctx, newSession("s3"), "key-2"); err != nil {
		t.Errorf("CreateSession with another key: %v", err)
	}
}

func testIdempotencyKeyConcurrent(t *testing.T, st hitl.Store) {
	type result struct {
		id  string
		got hitl.Session
		err error
	}
	results := make([]result, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			id := fmt.Sprintf("s%02d", i)
			got, err := st.CreateSession(ctx, newSession(id), "key-1")
			results[i] = result{id, got, err}
		})
	}
	wg.Wait()
	var winners []string
	for _, r := range results {
		if r.err == nil {
			winners = append(winners, r.id)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d calls created a session, want 1: %v", len(winners), results)
	}
	for _, r := range results {
		if r.err == nil {
			continue
		}
		if !errors.Is(r.err, hitl.ErrExists) || r.got.ID != winners[0] {
			t.Errorf("losing call %s: session %q, err %v; want session %s and ErrExists", r.id, r.got.ID, r.err, winners[0])
		}
		if _, err := st.GetSession(ctx, r.id); !errors.Is(err, hitl.ErrNotFound) {
			t.Errorf("losing session %s was stored: err = %v", r.id, err)
		}
	}
}

func testDeleteSession(t *testing.T, st hitl.Store) {
	if _, err := st.CreateSession(ctx, newSession("s1"), "key-1"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteSession(ctx, "s1", "key-1"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := st.GetSession(ctx, "s1"); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("GetSession after DeleteSession: err = %v, want ErrNotFound", err)
	}
	if _, err := st.CreateSession(ctx, newSession("s2"), "key-1"); err != nil {
		t.Errorf("CreateSession with the freed key: %v", err)
	}
	if err := st.DeleteSession(ctx, "s1", "key-1"); err != nil {
		t.Errorf("DeleteSession of a deleted session: %v", err)
	}
	if _, err := st.GetSession(ctx, "s2"); err != nil {
		t.Errorf("DeleteSession of another session's key removed s2: %v", err)
	}
	if _, err := st.CreateSession(ctx, newSession("s3"), "key-1"); !errors.Is(err, hitl.ErrExists) {
		t.Errorf("DeleteSession of another session's key freed it: err = %v", err)
	}

	openSession(t, st, "s4")
	if err := st.DeleteSession(ctx, "s4", ""); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Errorf("DeleteSession of an opened session: err = %v, want code %s", err, hitl.CodeConflict)
	}
	if _, err := st.GetSession(ctx, "s4"); err != nil {
		t.Errorf("an opened session was deleted: %v", err)
	}
}

func testOpened(t *testing.T, st hitl.Store) {
	s := createSession(t, st, "s1")
	if _, err := st.SessionByConversation(ctx, s.Provider, "conv-1"); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("SessionByConversation before Opened: err = %v, want ErrNotFound", err)
	}
	v := newVisitor("s1", t0.Add(time.Hour))
	at := t0.Add(time.Second)
	if err := st.Opened(ctx, s.ID, hitl.Opened{ConversationID: "conv-1", Visitor: v}, at); err != nil {
		t.Fatalf("Opened: %v", err)
	}
	want := s
	want.ProviderConversationID, want.Visitor, want.Status, want.UpdatedAt, want.OpenedAt = "conv-1", v, hitl.StatusWaiting, at, at
	wantSession(t, getSession(t, st, s.ID), want)

	byConv, err := st.SessionByConversation(ctx, s.Provider, "conv-1")
	if err != nil {
		t.Fatalf("SessionByConversation: %v", err)
	}
	wantSession(t, byConv, hitl.Session{
		ID: s.ID, UserID: s.UserID, Provider: s.Provider, Channel: s.Channel, BotConversationID: s.BotConversationID,
		ProviderConversationID: "conv-1", CreatedAt: s.CreatedAt, OpenedAt: at, Visitor: hitl.Visitor{ID: v.ID},
	})
	if _, err := st.SessionByConversation(ctx, hitl.Zoho, "conv-1"); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("SessionByConversation of another provider: err = %v, want ErrNotFound", err)
	}

	if err := st.Opened(ctx, s.ID, hitl.Opened{ConversationID: "conv-1", Visitor: v}, at); err != nil {
		t.Errorf("repeated Opened with the same conversation: %v", err)
	}
	if err := st.Opened(ctx, s.ID, hitl.Opened{ConversationID: "conv-2", Visitor: v}, at); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Errorf("Opened with another conversation: err = %v, want code %s", err, hitl.CodeConflict)
	}
	other := createSession(t, st, "s2")
	if err := st.Opened(ctx, other.ID, hitl.Opened{ConversationID: "conv-1", Visitor: v}, at); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Errorf("Opened with another session's conversation: err = %v, want code %s", err, hitl.CodeConflict)
	}
	if got := getSession(t, st, other.ID); got.Status != hitl.StatusOpening {
		t.Errorf("a failed Opened changed the session: %+v", got)
	}
	if err := st.Opened(ctx, "missing", hitl.Opened{ConversationID: "conv-3", Visitor: v}, at); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("Opened of a missing session: err = %v, want ErrNotFound", err)
	}
}

func testSaveVisitor(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	v := hitl.Visitor{ID: s.Visitor.ID, Credentials: hitl.Credentials("\x00renewed\xff"), CredentialsExpireAt: t0.Add(2 * time.Hour)}
	if err := st.SaveVisitor(ctx, s.ID, v); err != nil {
		t.Fatalf("SaveVisitor: %v", err)
	}
	want := s
	want.Visitor = v
	wantSession(t, getSession(t, st, s.ID), want)

	// Credentials that never expire, and none at all.
	for _, nv := range []hitl.Visitor{{ID: "v-2", Credentials: hitl.Credentials("forever")}, {ID: "v-3"}} {
		if err := st.SaveVisitor(ctx, s.ID, nv); err != nil {
			t.Fatalf("SaveVisitor: %v", err)
		}
		want.Visitor = nv
		wantSession(t, getSession(t, st, s.ID), want)
	}
	if err := st.SaveVisitor(ctx, s.ID, v); err != nil {
		t.Fatalf("SaveVisitor: %v", err)
	}

	if err := st.SaveVisitor(ctx, "missing", v); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("SaveVisitor of a missing session: err = %v, want ErrNotFound", err)
	}

	closeSession(t, st, s)
	if err := st.SaveVisitor(ctx, s.ID, newVisitor("x", t0)); err != nil {
		t.Errorf("SaveVisitor of a closed session: %v", err)
	}
	if got := getSession(t, st, s.ID); !reflect.DeepEqual(got.Visitor, v) {
		t.Errorf("SaveVisitor changed a closed session's visitor: %s", dumpVisitor(got.Visitor))
	}
}

func testVisitorsExpiring(t *testing.T, st hitl.Store) {
	a := openSessionWith(t, st, "a", newVisitor("a", t0.Add(time.Hour)))
	b := openSessionWith(t, st, "b", newVisitor("b", t0.Add(3*time.Hour)))
	c := openSessionWith(t, st, "c", newVisitor("c", t0.Add(30*time.Minute)))
	closeSession(t, st, c)
	openSessionWith(t, st, "d", hitl.Visitor{ID: "zoho-visitor"})                                       // no credentials
	openSessionWith(t, st, "e", hitl.Visitor{ID: "v-e", Credentials: hitl.Credentials("never expire")}) // no expiry
	createSession(t, st, "f")                                                                           // not opened

	expiring := func(before time.Time, limit int) []string {
		t.Helper()
		return listedIDs(t, "VisitorsExpiring", func() ([]hitl.ExpiringVisitor, error) { return st.VisitorsExpiring(ctx, before, limit) },
			func(v hitl.ExpiringVisitor) string { return v.SessionID })
	}
	if got := expiring(t0.Add(2*time.Hour), 10); !slices.Equal(got, []string{"a"}) {
		t.Errorf("VisitorsExpiring(t0+2h) = %v, want [a]", got)
	}
	if got := expiring(t0.Add(4*time.Hour), 10); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("VisitorsExpiring(t0+4h) = %v, want [a b]", got)
	}
	if got := expiring(t0.Add(4*time.Hour), 1); !slices.Equal(got, []string{"a"}) {
		t.Errorf("VisitorsExpiring(t0+4h, limit 1) = %v, want [a]", got)
	}
	if got := expiring(t0.Add(time.Hour), 10); len(got) != 0 {
		t.Errorf("VisitorsExpiring(t0+1h) = %v, want none: a expires at, not before, t0+1h", got)
	}

	got, err := st.VisitorsExpiring(ctx, t0.Add(2*time.Hour), 10)
	want := hitl.ExpiringVisitor{SessionID: a.ID, Provider: a.Provider, Visitor: a.Visitor}
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("VisitorsExpiring = %v, %v; want a's visitor %s", got, err, dumpVisitor(want.Visitor))
	}

	nb := newVisitor("b", t0.Add(10*time.Minute))
	if err := st.SaveVisitor(ctx, b.ID, nb); err != nil {
		t.Fatal(err)
	}
	if got := expiring(t0.Add(2*time.Hour), 10); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("after b's credentials changed, VisitorsExpiring(t0+2h) = %v, want [b a]", got)
	}
	if err := st.SaveVisitor(ctx, a.ID, newVisitor("a", t0.Add(5*time.Hour))); err != nil {
		t.Fatal(err)
	}
	if got := expiring(t0.Add(2*time.Hour), 10); !slices.Equal(got, []string{"b"}) {
		t.Errorf("after a's credentials were renewed, VisitorsExpiring(t0+2h) = %v, want [b]", got)
	}
	if err := st.SaveVisitor(ctx, b.ID, hitl.Visitor{ID: nb.ID, Credentials: nb.Credentials}); err != nil {
		t.Fatal(err)
	}
	if got := expiring(t0.Add(2*time.Hour), 10); len(got) != 0 {
		t.Errorf("after b's credentials stopped expiring, VisitorsExpiring(t0+2h) = %v, want none", got)
	}
}

func testRecord(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	c := newChange(s, "e1")
	c.Status, c.Agent, c.At = hitl.StatusAssigned, &hitl.Agent{ID: "ag1", Name: "Grace"}, t0.Add(time.Minute)
	c.Event.Type = hitl.EventAssigned
	r := record(t, st, c, "o1", t0.Add(2*time.Minute))
	if !r.Applied || !r.Leased {
		t.Fatalf("Record = %+v, want applied and leased", r)
	}
	wantEvents(t, "Pending", r.Pending, []hitl.Event{c.Event})
	want := s
	want.Status, want.Agent, want.UpdatedAt, want.AssignedAt = hitl.StatusAssigned, c.Agent, c.At, c.At
	wantSession(t, getSession(t, st, s.ID), want)

	// A change without a status keeps the status.
	c2 := newChange(s, "e2")
	c2.At = t0.Add(90 * time.Second)
	if r := record(t, st, c2, "o2", t0.Add(2*time.Minute)); !r.Applied || r.Leased || r.Pending != nil {
		t.Errorf("Record while o1 holds the lease = %+v, want applied, not leased, no pending", r)
	}
	want.UpdatedAt = c2.At
	wantSession(t, getSession(t, st, s.ID), want)

	if r := record(t, st, c, "o3", t0.Add(2*time.Minute)); r.Applied || r.Leased {
		t.Errorf("Record of a duplicate event = %+v, want not applied", r)
	}
	wantSession(t, getSession(t, st, s.ID), want)
	wantEvents(t, "pending", claim(t, st, s.ID, t0.Add(time.Hour)), []hitl.Event{c.Event, c2.Event})

	if _, err := st.Record(ctx, newChange(hitl.Session{ID: "missing"}, "e1"), "o4", t0.Add(time.Hour)); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("Record on a missing session: err = %v, want ErrNotFound", err)
	}
}

func testRecordClosing(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	c := newChange(s, "stop")
	c.Status, c.CloseReason, c.At = hitl.StatusClosed, hitl.ReasonAgentClosed, t0.Add(time.Minute)
	c.Event.Type, c.Event.Reason = hitl.EventStopped, hitl.ReasonAgentClosed
	if r := record(t, st, c, "o1", t0.Add(2*time.Minute)); !r.Applied || !r.Leased {
		t.Fatalf("Record of the closing change = %+v, want applied and leased", r)
	}
	want := s
	want.Status, want.CloseReason, want.UpdatedAt, want.ClosedAt = hitl.StatusClosed, hitl.ReasonAgentClosed, c.At, c.At
	wantSession(t, getSession(t, st, s.ID), want)

	late := newChange(s, "late")
	late.Status, late.At = hitl.StatusAssigned, t0.Add(2*time.Minute)
	if r := record(t, st, late, "o2", t0.Add(time.Hour)); r.Applied || r.Leased {
		t.Errorf("Record on a closed session = %+v, want not applied", r)
	}
	wantSession(t, getSession(t, st, s.ID), want)
	// The closed session's outbox is still delivered.
	wantEvents(t, "pending", claim(t, st, s.ID, t0.Add(time.Hour)), []hitl.Event{c.Event})
}

func testRecordLeaseHeld(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	record(t, st, newChange(s, "e1"), "o1", t0.Add(time.Minute))
	// Record takes a free lease only; an expired one is left to Claim.
	c := newChange(s, "e2")
	c.At = t0.Add(5 * time.Minute)
	if r := record(t, st, c, "o2", t0.Add(6*time.Minute)); !r.Applied || r.Leased {
		t.Errorf("Record over an expired lease = %+v, want applied, not leased", r)
	}
	if _, err := st.Ack(ctx, s.ID, "o1", 0, nil); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	r := record(t, st, newChange(s, "e3"), "o3", t0.Add(time.Hour))
	if !r.Applied || !r.Leased {
		t.Fatalf("Record after the lease was released = %+v, want applied and leased", r)
	}
	wantEvents(t, "Pending", r.Pending, []hitl.Event{newEvent(s, "e1"), c.Event, newEvent(s, "e3")})
}

func testRecordSameIDConcurrent(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	var applied, leased countRecorded
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			r, err := st.Record(ctx, newChange(s, "e1"), fmt.Sprintf("o%d", i), t0.Add(time.Minute))
			if err != nil {
				t.Errorf("Record: %v", err)
			}
			applied.add(r.Applied)
			leased.add(r.Leased)
		})
	}
	wg.Wait()
	if applied.n != 1 || leased.n != 1 {
		t.Errorf("%d of %d records of one event applied, %d leased; want 1 and 1", applied.n, racers, leased.n)
	}
	wantEvents(t, "pending", claim(t, st, s.ID, t0.Add(time.Hour)), []hitl.Event{newEvent(s, "e1")})
}

func testRecordDistinctConcurrent(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	const writers, each = 4, 5
	var leased countRecorded
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-e%d", w, i)
				r, err := st.Record(ctx, newChange(s, id), "o-"+id, t0.Add(time.Minute))
				if err != nil || !r.Applied {
					t.Errorf("Record %s = %+v, %v; want applied", id, r, err)
				}
				leased.add(r.Leased)
			}
		})
	}
	wg.Wait()
	if leased.n != 1 {
		t.Errorf("%d records took the lease, want 1", leased.n)
	}
	pending := claim(t, st, s.ID, t0.Add(time.Hour))
	if len(pending) != writers*each {
		t.Fatalf("%d events pending, want %d: %v", len(pending), writers*each, ids(pending))
	}
	next := make([]int, writers) // each writer's events must appear once, in its order
	for _, e := range pending {
		var w, i int
		if _, err := fmt.Sscanf(e.ID, "w%d-e%d", &w, &i); err != nil || i != next[w] {
			t.Fatalf("pending events out of order or repeated: %v", ids(pending))
		}
		next[w]++
		wantEvents(t, "pending event", []hitl.Event{e}, []hitl.Event{newEvent(s, e.ID)})
	}
}

func testClosingConcurrent(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	var applied countRecorded
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			c := newChange(s, fmt.Sprintf("stop-%d", i))
			c.Status, c.CloseReason = hitl.StatusClosed, fmt.Sprintf("reason-%d", i)
			r, err := st.Record(ctx, c, fmt.Sprintf("o%d", i), t0.Add(time.Minute))
			if err != nil {
				t.Errorf("Record: %v", err)
			}
			applied.add(r.Applied)
		})
	}
	wg.Wait()
	if applied.n != 1 {
		t.Fatalf("%d closing changes applied, want 1", applied.n)
	}
	// The applied change is the one whose event is pending.
	reason := getSession(t, st, s.ID).CloseReason
	if got := ids(claim(t, st, s.ID, t0.Add(time.Hour))); !slices.Equal(got, []string{"stop-" + strings.TrimPrefix(reason, "reason-")}) {
		t.Errorf("pending %v does not match the applied close reason %q", got, reason)
	}
}

func testRemembersRecentIDs(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	const remembered = 100
	// A backlog recorded under one lease, delivered at once...
	for i := range 120 {
		record(t, st, newChange(s, fmt.Sprintf("e%d", i)), "o-backlog", t0.Add(time.Minute))
	}
	p, ok := tryClaim(t, st, s.ID, "o-claim", t0.Add(time.Hour), t0.Add(2*time.Hour))
	if !ok || len(p) != 120 {
		t.Fatalf("Claim = %d events, %v; want 120", len(p), ok)
	}
	if more, err := st.Ack(ctx, s.ID, "o-claim", len(p), nil); err != nil || more {
		t.Fatalf("Ack = %v, %v", more, err)
	}
	// ...then events delivered one by one.
	for i := 120; i < 150; i++ {
		owner := fmt.Sprintf("o%d", i)
		r := record(t, st, newChange(s, fmt.Sprintf("e%d", i)), owner, t0.Add(time.Minute))
		if !r.Leased || len(r.Pending) != 1 {
			t.Fatalf("Record %d = %+v, want leased with one pending event", i, r)
		}
		if more, err := st.Ack(ctx, s.ID, owner, 1, nil); err != nil || more {
			t.Fatalf("Ack %d = %v, %v", i, more, err)
		}
	}
	for i := 150 - remembered; i < 150; i++ {
		if r := record(t, st, newChange(s, fmt.Sprintf("e%d", i)), "dup", t0.Add(time.Minute)); r.Applied {
			t.Fatalf("event e%d, one of the last %d, was applied again", i, remembered)
		}
	}
}

func testClaim(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	if p, ok := tryClaim(t, st, s.ID, "o0", t0, t0.Add(time.Minute)); ok || p != nil {
		t.Errorf("Claim with nothing pending = %v, %v; want nothing", ids(p), ok)
	}
	record(t, st, newChange(s, "e1"), "o1", t0.Add(time.Minute))
	if _, ok := tryClaim(t, st, s.ID, "o2", t0.Add(59*time.Second), t0.Add(2*time.Minute)); ok {
		t.Error("Claim of a live lease succeeded")
	}
	if _, ok := tryClaim(t, st, s.ID, "o1", t0.Add(59*time.Second), t0.Add(2*time.Minute)); ok {
		t.Error("Claim by the holder of a live lease succeeded")
	}
	p, ok := tryClaim(t, st, s.ID, "o2", t0.Add(time.Minute), t0.Add(2*time.Minute))
	if !ok {
		t.Fatal("Claim of an expired lease failed")
	}
	wantEvents(t, "Claim", p, []hitl.Event{newEvent(s, "e1")})
	if _, err := st.Ack(ctx, s.ID, "o1", 1, nil); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Errorf("Ack by the owner of the expired lease: err = %v, want code %s", err, hitl.CodeConflict)
	}
	if more, err := st.Ack(ctx, s.ID, "o2", 1, nil); err != nil || more {
		t.Errorf("Ack by the new owner = %v, %v", more, err)
	}
	if _, ok := tryClaim(t, st, "missing", "o3", t0, t0.Add(time.Minute)); ok {
		t.Error("Claim of a missing session succeeded")
	}
}

func testClaimConcurrent(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	record(t, st, newChange(s, "e1"), "o1", t0.Add(time.Minute))
	var won countRecorded
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			p, ok, err := st.Claim(ctx, s.ID, fmt.Sprintf("c%d", i), t0.Add(2*time.Minute), t0.Add(3*time.Minute))
			if err != nil {
				t.Errorf("Claim: %v", err)
			}
			if ok && len(p) != 1 {
				t.Errorf("Claim returned %v, want [e1]", ids(p))
			}
			won.add(ok)
		})
	}
	wg.Wait()
	if won.n != 1 {
		t.Errorf("%d claims succeeded, want 1", won.n)
	}
}

func testAck(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	r := record(t, st, newChange(s, "e1"), "o1", t0.Add(time.Minute))
	if !r.Leased {
		t.Fatal("Record did not take the free lease")
	}
	more, err := st.Ack(ctx, s.ID, "o1", 1, nil)
	if err != nil || more {
		t.Fatalf("Ack = %v, %v; want no more", more, err)
	}
	if p, ok := tryClaim(t, st, s.ID, "o2", t0.Add(time.Hour), t0.Add(2*time.Hour)); ok {
		t.Errorf("Claim after everything was acknowledged returned %v", ids(p))
	}
	if due := dueOutboxes(t, st, t0.Add(time.Hour), 10); len(due) != 0 {
		t.Errorf("DueOutboxes after everything was acknowledged = %v", due)
	}
	// The lease was released: the next Record takes it.
	if r := record(t, st, newChange(s, "e2"), "o3", t0.Add(time.Minute)); !r.Leased {
		t.Errorf("Record after Ack = %+v, want leased", r)
	}
	if _, err := st.Ack(ctx, s.ID, "o3", 2, nil); hitl.ErrorCode(err) != hitl.CodeInvalid {
		t.Errorf("Ack of more events than pending: err = %v, want code %s", err, hitl.CodeInvalid)
	}
}

func testAckKeepsAppended(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	record(t, st, newChange(s, "e1"), "o1", t0.Add(time.Minute))
	record(t, st, newChange(s, "e2"), "o2", t0.Add(time.Minute))
	record(t, st, newChange(s, "e3"), "o2", t0.Add(time.Minute))
	more, err := st.Ack(ctx, s.ID, "o1", 1, nil)
	if err != nil || !more {
		t.Fatalf("Ack with events appended meanwhile = %v, %v; want more", more, err)
	}
	// Released: free to claim at once.
	p, ok := tryClaim(t, st, s.ID, "o3", t0, t0.Add(time.Minute))
	if !ok {
		t.Fatal("Claim after Ack with more failed")
	}
	wantEvents(t, "Claim", p, []hitl.Event{newEvent(s, "e2"), newEvent(s, "e3")})
	if more, err := st.Ack(ctx, s.ID, "o3", 2, nil); err != nil || more {
		t.Errorf("Ack of the rest = %v, %v; want no more", more, err)
	}
}

func testAckConcurrentAppends(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	record(t, st, newChange(s, "e1"), "o1", t0.Add(time.Minute))
	var leased countRecorded
	var more bool
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			r, err := st.Record(ctx, newChange(s, fmt.Sprintf("a%02d", i)), fmt.Sprintf("o-a%02d", i), t0.Add(time.Minute))
			if err != nil || !r.Applied {
				t.Errorf("Record = %+v, %v", r, err)
			}
			leased.add(r.Leased)
		})
	}
	wg.Go(func() {
		var err error
		if more, err = st.Ack(ctx, s.ID, "o1", 1, nil); err != nil {
			t.Errorf("Ack: %v", err)
		}
	})
	wg.Wait()
	// Every appended event has a deliverer: the acknowledger was told there
	// is more, or a later Record took the lease.
	if !more && leased.n == 0 {
		t.Error("Ack reported nothing more and no Record took the lease")
	}
	pending := claim(t, st, s.ID, t0.Add(time.Hour))
	got := ids(pending)
	slices.Sort(got)
	var want []string
	for i := range racers {
		want = append(want, fmt.Sprintf("a%02d", i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("pending after Ack with concurrent appends = %v, want %v", got, want)
	}
}

func testAckNotOwner(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	record(t, st, newChange(s, "e1"), "o1", t0.Add(time.Minute))
	if _, err := st.Ack(ctx, s.ID, "o2", 1, nil); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Errorf("Ack by a non-owner: err = %v, want code %s", err, hitl.CodeConflict)
	}
	if err := st.Bury(ctx, s.ID, "o2", t0); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Errorf("Bury by a non-owner: err = %v, want code %s", err, hitl.CodeConflict)
	}
	wantEvents(t, "pending", claim(t, st, s.ID, t0.Add(time.Hour)), []hitl.Event{newEvent(s, "e1")})
}

func testRetry(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	if got, err := st.RetryState(ctx, s.ID); err != nil || got != (hitl.Retry{}) {
		t.Errorf("RetryState of a fresh session = %+v, %v; want zero", got, err)
	}
	record(t, st, newChange(s, "e1"), "o1", t0.Add(time.Minute))
	record(t, st, newChange(s, "e2"), "o2", t0.Add(time.Minute))
	record(t, st, newChange(s, "e3"), "o2", t0.Add(time.Minute))

	// e1 delivered, e2 refused.
	retry := hitl.Retry{At: t0.Add(10 * time.Minute), Attempts: 1, Since: t0.Add(time.Second)}
	more, err := st.Ack(ctx, s.ID, "o1", 1, &retry)
	if err != nil || !more {
		t.Fatalf("Ack with retry = %v, %v; want more", more, err)
	}
	if got, err := st.RetryState(ctx, s.ID); err != nil || !sameRetry(got, retry) {
		t.Errorf("RetryState = %+v, %v; want %+v", got, err, retry)
	}
	if due := dueOutboxes(t, st, t0.Add(9*time.Minute), 10); len(due) != 0 {
		t.Errorf("DueOutboxes before the retry time = %v", due)
	}
	if due := dueOutboxes(t, st, retry.At, 10); !slices.Equal(due, []string{s.ID}) {
		t.Errorf("DueOutboxes at the retry time = %v, want [%s]", due, s.ID)
	}

	// Nothing delivered on the second attempt.
	p, ok := tryClaim(t, st, s.ID, "o3", retry.At, retry.At.Add(time.Minute))
	if !ok {
		t.Fatal("Claim at the retry time failed")
	}
	wantEvents(t, "Claim", p, []hitl.Event{newEvent(s, "e2"), newEvent(s, "e3")})
	retry2 := hitl.Retry{At: t0.Add(30 * time.Minute), Attempts: 2, Since: retry.Since}
	if more, err := st.Ack(ctx, s.ID, "o3", 0, &retry2); err != nil || !more {
		t.Fatalf("Ack of nothing with retry = %v, %v; want more", more, err)
	}
	if got, _ := st.RetryState(ctx, s.ID); !sameRetry(got, retry2) {
		t.Errorf("RetryState = %+v, want %+v", got, retry2)
	}

	// Delivered at last: the run of failures ends.
	p, ok = tryClaim(t, st, s.ID, "o4", retry2.At, retry2.At.Add(time.Minute))
	if !ok || len(p) != 2 {
		t.Fatalf("Claim = %v, %v", ids(p), ok)
	}
	if more, err := st.Ack(ctx, s.ID, "o4", 2, nil); err != nil || more {
		t.Fatalf("Ack = %v, %v", more, err)
	}
	if got, err := st.RetryState(ctx, s.ID); err != nil || got != (hitl.Retry{}) {
		t.Errorf("RetryState after delivery = %+v, %v; want zero", got, err)
	}
	if _, err := st.RetryState(ctx, "missing"); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("RetryState of a missing session: err = %v, want ErrNotFound", err)
	}
}

func testDueOutboxes(t *testing.T, st hitl.Store) {
	a := openSession(t, st, "a")
	record(t, st, newChange(a, "a1"), "oa", t0.Add(time.Minute)) // due when its lease expires
	b := openSession(t, st, "b")
	record(t, st, newChange(b, "b1"), "ob", t0.Add(time.Minute))
	record(t, st, newChange(b, "b2"), "ob2", t0.Add(time.Minute))
	if _, err := st.Ack(ctx, b.ID, "ob", 1, &hitl.Retry{At: t0.Add(5 * time.Minute), Attempts: 1, Since: t0}); err != nil {
		t.Fatal(err)
	}
	c := openSession(t, st, "c") // everything delivered
	record(t, st, newChange(c, "c1"), "oc", t0.Add(time.Minute))
	if _, err := st.Ack(ctx, c.ID, "oc", 1, nil); err != nil {
		t.Fatal(err)
	}
	openSession(t, st, "d") // never had events

	for _, tc := range []struct {
		now   time.Time
		limit int
		want  []string
	}{
		{t0, 10, nil},
		{t0.Add(time.Minute), 10, []string{"a"}},
		{t0.Add(5 * time.Minute), 10, []string{"a", "b"}},
		{t0.Add(5 * time.Minute), 1, []string{"a"}},
	} {
		if got := dueOutboxes(t, st, tc.now, tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("DueOutboxes(t0+%v, %d) = %v, want %v", tc.now.Sub(t0), tc.limit, got, tc.want)
		}
	}
}

func testBuryReplay(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	record(t, st, newChange(s, "e1"), "o1", t0.Add(time.Minute))
	record(t, st, newChange(s, "e2"), "o2", t0.Add(time.Minute))
	if _, err := st.Ack(ctx, s.ID, "o1", 0, &hitl.Retry{At: t0.Add(time.Hour), Attempts: 5, Since: t0}); err != nil {
		t.Fatal(err)
	}
	if _, ok := tryClaim(t, st, s.ID, "o3", t0.Add(time.Hour), t0.Add(2*time.Hour)); !ok {
		t.Fatal("Claim failed")
	}
	buried := t0.Add(90 * time.Minute)
	if err := st.Bury(ctx, s.ID, "o3", buried); err != nil {
		t.Fatalf("Bury: %v", err)
	}
	dead, err := st.DeadLetters(ctx, 10)
	if err != nil {
		t.Fatalf("DeadLetters: %v", err)
	}
	wantDead(t, dead, []hitl.DeadLetter{{Event: newEvent(s, "e1"), DeadAt: buried}, {Event: newEvent(s, "e2"), DeadAt: buried}})
	if p, ok := tryClaim(t, st, s.ID, "o4", t0.Add(3*time.Hour), t0.Add(4*time.Hour)); ok {
		t.Errorf("Claim after Bury returned %v", ids(p))
	}
	if due := dueOutboxes(t, st, t0.Add(3*time.Hour), 10); len(due) != 0 {
		t.Errorf("DueOutboxes after Bury = %v", due)
	}
	if got, _ := st.RetryState(ctx, s.ID); got != (hitl.Retry{}) {
		t.Errorf("RetryState after Bury = %+v, want zero", got)
	}

	n, err := st.Replay(ctx, s.ID, t0.Add(3*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("Replay = %d, %v; want 2", n, err)
	}
	if dead, _ := st.DeadLetters(ctx, 10); len(dead) != 0 {
		t.Errorf("DeadLetters after Replay = %v", dead)
	}
	if due := dueOutboxes(t, st, t0.Add(3*time.Hour), 10); !slices.Equal(due, []string{s.ID}) {
		t.Errorf("DueOutboxes after Replay = %v, want [%s]", due, s.ID)
	}
	p, ok := tryClaim(t, st, s.ID, "o5", t0.Add(3*time.Hour), t0.Add(4*time.Hour))
	if !ok {
		t.Fatal("Claim after Replay failed")
	}
	wantEvents(t, "Claim after Replay", p, []hitl.Event{newEvent(s, "e1"), newEvent(s, "e2")})
	if n, err := st.Replay(ctx, s.ID, t0.Add(3*time.Hour)); err != nil || n != 0 {
		t.Errorf("second Replay = %d, %v; want 0", n, err)
	}
}

func testDeadLettersOrder(t *testing.T, st hitl.Store) {
	bury := func(id string, events int, at time.Time) hitl.Session {
		s := openSession(t, st, id)
		for i := range events {
			record(t, st, newChange(s, fmt.Sprintf("%s-e%d", id, i)), "o-"+id, t0.Add(time.Minute))
		}
		if err := st.Bury(ctx, s.ID, "o-"+id, at); err != nil {
			t.Fatalf("Bury: %v", err)
		}
		return s
	}
	a := bury("a", 2, t0.Add(2*time.Hour))
	b := bury("b", 1, t0.Add(time.Hour))
	got, err := st.DeadLetters(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	wantDead(t, got, []hitl.DeadLetter{
		{Event: newEvent(b, "b-e0"), DeadAt: t0.Add(time.Hour)},
		{Event: newEvent(a, "a-e0"), DeadAt: t0.Add(2 * time.Hour)},
		{Event: newEvent(a, "a-e1"), DeadAt: t0.Add(2 * time.Hour)},
	})
	got, err = st.DeadLetters(ctx, 2)
	if err != nil || len(got) != 2 || got[1].Event.ID != "a-e0" {
		t.Errorf("DeadLetters(2) = %v, %v; want [b-e0 a-e0]", got, err)
	}
}

func testAcquireLease(t *testing.T, st hitl.Store) {
	acquire := func(owner string, now, until time.Time) bool {
		t.Helper()
		ok, err := st.AcquireLease(ctx, "token-refresh", owner, now, until)
		if err != nil {
			t.Fatalf("AcquireLease: %v", err)
		}
		return ok
	}
	if !acquire("o1", t0, t0.Add(time.Minute)) {
		t.Fatal("AcquireLease of a free lease failed")
	}
	if acquire("o2", t0.Add(59*time.Second), t0.Add(2*time.Minute)) {
		t.Error("AcquireLease of a live lease succeeded")
	}
	if ok, err := st.AcquireLease(ctx, "other", "o2", t0, t0.Add(time.Minute)); err != nil || !ok {
		t.Errorf("AcquireLease of another name = %v, %v", ok, err)
	}
	if !acquire("o2", t0.Add(time.Minute), t0.Add(2*time.Minute)) {
		t.Error("AcquireLease of an expired lease failed")
	}
	if acquire("o1", t0.Add(90*time.Second), t0.Add(3*time.Minute)) {
		t.Error("AcquireLease of the new owner's live lease succeeded")
	}
}

func testAcquireLeaseConcurrent(t *testing.T, st hitl.Store) {
	var won countRecorded
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			ok, err := st.AcquireLease(ctx, "token-refresh", fmt.Sprintf("o%d", i), t0, t0.Add(time.Minute))
			if err != nil {
				t.Errorf("AcquireLease: %v", err)
			}
			won.add(ok)
		})
	}
	wg.Wait()
	if won.n != 1 {
		t.Errorf("%d owners acquired the lease, want 1", won.n)
	}
}

// Fixtures.

func newSession(id string) hitl.Session {
	return hitl.Session{
		ID: id, UserID: "usr_" + id, Provider: hitl.LiveChat, Channel: hitl.ChannelNative,
		BotConversationID: "bc-" + id, Status: hitl.StatusOpening, CreatedAt: t0, UpdatedAt: t0,
	}
}

// newVisitor is a visitor whose credentials are arbitrary bytes (neither
// text nor JSON): stores keep them without reading them.
func newVisitor(id string, expires time.Time) hitl.Visitor {
	return hitl.Visitor{ID: "v-" + id, Credentials: append(hitl.Credentials{0, 0xff, '{'}, id...), CredentialsExpireAt: expires}
}

func newEvent(s hitl.Session, id string) hitl.Event {
	return hitl.Event{
		ID: id, Type: hitl.EventMessage, SessionID: s.ID, BotConversationID: s.BotConversationID,
		Provider: s.Provider, OccurredAt: t0, Agent: &hitl.Agent{ID: "ag1", Name: "Grace"},
		Message: &hitl.Message{Type: hitl.TypeText, Text: "hello from " + id},
		Channel: s.Channel, UserID: s.UserID,
	}
}

func newChange(s hitl.Session, eventID string) hitl.Change {
	return hitl.Change{SessionID: s.ID, Event: newEvent(s, eventID), At: t0}
}

func createSession(t *testing.T, st hitl.Store, id string) hitl.Session {
	t.Helper()
	s, err := st.CreateSession(ctx, newSession(id), "")
	if err != nil {
		t.Fatalf("CreateSession %s: %v", id, err)
	}
	return s
}

func openSession(t *testing.T, st hitl.Store, id string) hitl.Session {
	t.Helper()
	return openSessionWith(t, st, id, newVisitor(id, t0.Add(24*time.Hour)))
}

func openSessionWith(t *testing.T, st hitl.Store, id string, v hitl.Visitor) hitl.Session {
	t.Helper()
	createSession(t, st, id)
	if err := st.Opened(ctx, id, hitl.Opened{ConversationID: "conv-" + id, Visitor: v}, t0); err != nil {
		t.Fatalf("Opened %s: %v", id, err)
	}
	return getSession(t, st, id)
}

func closeSession(t *testing.T, st hitl.Store, s hitl.Session) {
	t.Helper()
	c := newChange(s, "close-"+s.ID)
	c.Status, c.CloseReason, c.Event.Type = hitl.StatusClosed, hitl.ReasonBotStopped, hitl.EventStopped
	if r := record(t, st, c, "closer", t0.Add(time.Minute)); !r.Applied {
		t.Fatalf("closing %s was not applied", s.ID)
	}
}

func getSession(t *testing.T, st hitl.Store, id string) hitl.Session {
	t.Helper()
	s, err := st.GetSession(ctx, id)
	if err != nil {
		t.Fatalf("GetSession %s: %v", id, err)
	}
	return s
}

func record(t *testing.T, st hitl.Store, c hitl.Change, owner string, leaseUntil time.Time) hitl.Recorded {
	t.Helper()
	r, err := st.Record(ctx, c, owner, leaseUntil)
	if err != nil {
		t.Fatalf("Record %s: %v", c.Event.ID, err)
	}
	return r
}

func tryClaim(t *testing.T, st hitl.Store, id, owner string, now, until time.Time) ([]hitl.Event, bool) {
	t.Helper()
	p, ok, err := st.Claim(ctx, id, owner, now, until)
	if err != nil {
		t.Fatalf("Claim %s: %v", id, err)
	}
	return p, ok
}

// claim takes the lease as of now, which must be after every lease the test
// handed out, and returns what is pending.
func claim(t *testing.T, st hitl.Store, id string, now time.Time) []hitl.Event {
	t.Helper()
	p, ok := tryClaim(t, st, id, "claimer", now, now.Add(time.Minute))
	if !ok {
		t.Fatalf("Claim %s at t0+%v failed", id, now.Sub(t0))
	}
	return p
}

func dueOutboxes(t *testing.T, st hitl.Store, now time.Time, limit int) []string {
	t.Helper()
	due, err := st.DueOutboxes(ctx, now, limit)
	if err != nil {
		t.Fatalf("DueOutboxes: %v", err)
	}
	return due
}

// countRecorded counts true outcomes across goroutines.
type countRecorded struct {
	mu sync.Mutex
	n  int
}

func (c *countRecorded) add(ok bool) {
	if ok {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
}

// Assertions.

func ids(events []hitl.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

// listedIDs calls list and returns the session id of each thing it lists.
func listedIDs[T any](t *testing.T, what string, list func() ([]T, error), id func(T) string) []string {
	t.Helper()
	got, err := list()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var out []string
	for _, x := range got {
		out = append(out, id(x))
	}
	return out
}

func wantSession(t *testing.T, got, want hitl.Session) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("session\n got %s\nwant %s", dump(got), dump(want))
	}
}

func wantEvents(t *testing.T, what string, got, want []hitl.Event) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s\n got %s\nwant %s", what, dump(got), dump(want))
	}
}

func wantDead(t *testing.T, got, want []hitl.DeadLetter) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DeadLetters\n got %s\nwant %s", dump(got), dump(want))
	}
}

func sameRetry(a, b hitl.Retry) bool {
	return a.At.Equal(b.At) && a.Since.Equal(b.Since) && a.Attempts == b.Attempts
}

// dump shows a value with the fields JSON hides, for failure messages.
// dumpVisitor shows the test credentials, which print as "[redacted]".
func dumpVisitor(v hitl.Visitor) string {
	return fmt.Sprintf("{ID:%s Credentials:%q CredentialsExpireAt:%s}", v.ID, []byte(v.Credentials), v.CredentialsExpireAt)
}

func dump(v any) string {
	switch v := v.(type) {
	case hitl.Session:
		b, _ := json.Marshal(v)
		return fmt.Sprintf("%s visitor=%s", b, dumpVisitor(v.Visitor))
	case []hitl.Event:
		var parts []string
		for _, e := range v {
			b, _ := json.Marshal(e)
			parts = append(parts, fmt.Sprintf("%s channel=%q user=%q", b, e.Channel, e.UserID))
		}
		return fmt.Sprint(parts)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}
