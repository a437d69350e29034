package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// Cases for deliveries that arrive while a conversation is opening, agents
// leaving, and how long ids are remembered.

func testKeepConversation(t *testing.T, st hitl.Store) {
	s := createSession(t, st, "s1")
	kept := t0.Add(time.Second)
	if err := st.KeepConversation(ctx, s.ID, []string{"conv-1"}, kept); err != nil {
		t.Fatalf("KeepConversation: %v", err)
	}
	if got := getSession(t, st, s.ID); got.Status != hitl.StatusOpening || got.ProviderConversationID != "conv-1" {
		t.Fatalf("after KeepConversation: status %s, conversation %q; want opening, conv-1", got.Status, got.ProviderConversationID)
	}
	byConv, err := st.SessionByConversation(ctx, s.Provider, "conv-1")
	if err != nil || byConv.ID != s.ID || !byConv.OpenedAt.Equal(kept) {
		t.Fatalf("SessionByConversation of a kept conversation = %+v, %v", byConv, err)
	}
	if err := st.KeepConversation(ctx, s.ID, []string{"conv-1"}, kept); err != nil {
		t.Errorf("repeated KeepConversation: %v", err)
	}
	if err := st.KeepConversation(ctx, s.ID, []string{"conv-2"}, kept); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Errorf("KeepConversation with another conversation: err = %v, want %s", err, hitl.CodeConflict)
	}
	other := createSession(t, st, "s2")
	if err := st.KeepConversation(ctx, other.ID, []string{"conv-1"}, kept); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Errorf("KeepConversation of another session's conversation: err = %v, want %s", err, hitl.CodeConflict)
	}

	// An agent routed in before the open call answered.
	c := newChange(s, "assigned")
	c.Status, c.Agent, c.Event.Type = hitl.StatusAssigned, &hitl.Agent{ID: "ag1", Name: "Grace"}, hitl.EventAssigned
	if r := record(t, st, c, "o1", t0.Add(time.Minute)); !r.Applied {
		t.Fatal("an event on a kept, still opening session was not applied")
	}
	v := newVisitor("s1", t0.Add(time.Hour))
	opened := t0.Add(2 * time.Second)
	if err := st.Opened(ctx, s.ID, hitl.Opened{ConversationID: "conv-1", Visitor: v}, opened); err != nil {
		t.Fatalf("Opened after KeepConversation: %v", err)
	}
	got := getSession(t, st, s.ID)
	if got.Status != hitl.StatusAssigned || got.Agent == nil || got.Agent.ID != "ag1" {
		t.Errorf("Opened undid the early assignment: status %s, agent %+v", got.Status, got.Agent)
	}
	if !reflect.DeepEqual(got.Visitor, v) || got.Transcript != nil || !got.OpenedAt.Equal(kept) {
		t.Errorf("Opened after KeepConversation: visitor %+v, transcript %v, openedAt %v", got.Visitor, got.Transcript, got.OpenedAt)
	}
	if err := st.KeepConversation(ctx, s.ID, []string{"conv-1"}, opened); err != nil {
		t.Errorf("KeepConversation after Opened with the same conversation: %v", err)
	}
	closeSession(t, st, s)
	if err := st.Opened(ctx, s.ID, hitl.Opened{ConversationID: "conv-1", Visitor: v}, opened); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Errorf("Opened of a closed session: err = %v, want %s", err, hitl.CodeConflict)
	}
}

func testKeepConversationDeleted(t *testing.T, st hitl.Store) {
	if _, err := st.CreateSession(ctx, newSession("s1"), "key-1"); err != nil {
		t.Fatal(err)
	}
	if err := st.KeepConversation(ctx, "s1", []string{"conv-1", "alias-1"}, t0); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteSession(ctx, "s1", "key-1"); err != nil {
		t.Fatalf("DeleteSession of a kept session: %v", err)
	}
	for _, id := range []string{"conv-1", "alias-1"} {
		if _, err := st.SessionByConversation(ctx, hitl.LiveChat, id); !errors.Is(err, hitl.ErrNotFound) {
			t.Errorf("conversation %s still maps to a deleted session: %v", id, err)
		}
	}
	// The conversation is free for the retry.
	createSession(t, st, "s2")
	if err := st.KeepConversation(ctx, "s2", []string{"conv-1"}, t0); err != nil {
		t.Errorf("KeepConversation of a freed conversation: %v", err)
	}
}

func testOpenedAliases(t *testing.T, st hitl.Store) {
	s := createSession(t, st, "s1")
	o := hitl.Opened{ConversationID: "100000000000000001", AltConversationIDs: []string{"vc-1"}, Visitor: newVisitor("s1", time.Time{})}
	if err := st.Opened(ctx, s.ID, o, t0); err != nil {
		t.Fatalf("Opened with an alias: %v", err)
	}
	for _, id := range []string{"100000000000000001", "vc-1"} {
		got, err := st.SessionByConversation(ctx, s.Provider, id)
		if err != nil || got.ID != s.ID || got.ProviderConversationID != o.ConversationID || !slices.Equal(got.AltConversationIDs, []string{"vc-1"}) {
			t.Errorf("SessionByConversation(%s) = %+v, %v", id, got, err)
		}
	}
	if got := getSession(t, st, s.ID); !slices.Equal(got.AltConversationIDs, []string{"vc-1"}) {
		t.Errorf("session aliases = %v", got.AltConversationIDs)
	}
	other := createSession(t, st, "s2")
	o2 := hitl.Opened{ConversationID: "conv-2", AltConversationIDs: []string{"vc-1"}}
	if err := st.Opened(ctx, other.ID, o2, t0); hitl.ErrorCode(err) != hitl.CodeConflict {
		t.Errorf("Opened with another session's alias: err = %v, want %s", err, hitl.CodeConflict)
	}
	if _, err := st.SessionByConversation(ctx, s.Provider, "conv-2"); !errors.Is(err, hitl.ErrNotFound) {
		t.Errorf("a refused Opened mapped its conversation: %v", err)
	}
}

func heldEvent(conv, key string) hitl.ProviderEvent {
	return hitl.ProviderEvent{
		Provider: hitl.Zoho, ConversationID: conv, AltConversationIDs: []string{"alt-" + conv}, Key: key,
		Type: hitl.EventMessage, OccurredAt: t0, Agent: &hitl.Agent{ID: "op1", Name: "Op"},
		Message: &hitl.Message{Type: hitl.TypeText, Text: "hi " + key}, MaybeOpening: true,
	}
}

func testHoldHeld(t *testing.T, st hitl.Store) {
	until := t0.Add(10 * time.Minute)
	var want []hitl.ProviderEvent
	for i := range 3 {
		pe := heldEvent("c1", fmt.Sprintf("k%d", i))
		want = append(want, pe)
		if err := st.Hold(ctx, pe, until); err != nil {
			t.Fatalf("Hold: %v", err)
		}
		time.Sleep(2 * time.Millisecond) // hold order is by the wall clock
	}
	if err := st.Hold(ctx, heldEvent("c1", "k0"), until.Add(time.Hour)); err != nil {
		t.Errorf("holding an event again: %v", err)
	}
	if err := st.Hold(ctx, heldEvent("c2", "k9"), until); err != nil {
		t.Fatal(err)
	}
	got, err := st.Held(ctx, hitl.Zoho, "c1", t0)
	if err != nil {
		t.Fatalf("Held: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Held = %d events, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Key != want[i].Key || got[i].Message.Text != want[i].Message.Text || !got[i].OccurredAt.Equal(t0) ||
			!slices.Equal(got[i].AltConversationIDs, want[i].AltConversationIDs) || got[i].Agent.Name != "Op" {
			t.Errorf("held event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got, _ := st.Held(ctx, hitl.LiveChat, "c1", t0); len(got) != 0 {
		t.Errorf("Held of another provider = %+v", got)
	}
	if got, _ := st.Held(ctx, hitl.Zoho, "c1", until); len(got) != 0 {
		t.Errorf("Held after expiry = %+v", got)
	}
}

func testUnassign(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	assign := newChange(s, "a1")
	assign.Status, assign.Agent, assign.Event.Type = hitl.StatusAssigned, &hitl.Agent{ID: "ag2", Name: "Ann"}, hitl.EventAssigned
	record(t, st, assign, "o1", t0.Add(time.Minute))

	left := func(id, agent string) hitl.Change {
		c := newChange(s, id)
		c.Status, c.Unassign, c.Event.Type = hitl.StatusWaiting, agent, hitl.EventUnassigned
		return c
	}
	if r := record(t, st, left("u1", "ag1"), "o2", t0.Add(time.Minute)); r.Applied {
		t.Error("another agent's leaving was applied")
	}
	if got := getSession(t, st, s.ID); got.Status != hitl.StatusAssigned || got.Agent == nil || got.Agent.ID != "ag2" {
		t.Errorf("after another agent left: status %s, agent %+v", got.Status, got.Agent)
	}
	if r := record(t, st, left("u2", "ag2"), "o3", t0.Add(time.Minute)); !r.Applied {
		t.Error("the assignee's leaving was not applied")
	}
	if got := getSession(t, st, s.ID); got.Status != hitl.StatusWaiting || got.Agent != nil {
		t.Errorf("after the assignee left: status %s, agent %+v", got.Status, got.Agent)
	}
	p := claim(t, st, s.ID, t0.Add(2*time.Minute))
	if got := ids(p); !slices.Equal(got, []string{"a1", "u2"}) {
		t.Errorf("outbox = %v, want [a1 u2]", got)
	}
}

// testRemembersIDsWithinSpan: ids are remembered for hitl.DedupeSpan
// whatever the number of events in between, and forgotten long after it.
func testRemembersIDsWithinSpan(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	deliver := func(id string, at time.Time) hitl.Recorded {
		t.Helper()
		c := newChange(s, id)
		c.At = at
		owner := "o-" + id
		r := record(t, st, c, owner, at.Add(time.Minute))
		if r.Applied && r.Leased {
			if _, err := st.Ack(ctx, s.ID, owner, len(r.Pending), nil); err != nil {
				t.Fatalf("Ack %s: %v", id, err)
			}
		}
		return r
	}
	// 250 events within a few minutes, each delivered at once.
	for i := range 250 {
		deliver(fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Second))
	}
	if r := deliver("e0", t0.Add(5*time.Minute)); r.Applied {
		t.Error("the first of 250 events within the span was applied again")
	}
	// Long after, more events: the old ids go.
	later := t0.Add(hitl.DedupeSpan + time.Hour)
	for i := range 120 {
		deliver(fmt.Sprintf("f%d", i), later.Add(time.Duration(i)*time.Second))
	}
	if r := deliver("e1", later.Add(5*time.Minute)); !r.Applied {
		t.Error("an id recorded more than an hour beyond the span is still remembered: the memory grows without bound")
	}
}

func testSettings(t *testing.T, st hitl.Store) {
	if v, err := st.Setting(ctx, "zoho.webhook"); err != nil || v != nil {
		t.Fatalf("Setting of nothing = %q, %v; want nil", v, err)
	}
	for _, want := range []string{`{"keys":["a"]}`, `{"keys":["b"]}`} {
		if err := st.SaveSetting(ctx, "zoho.webhook", []byte(want)); err != nil {
			t.Fatal(err)
		}
		if got, err := st.Setting(ctx, "zoho.webhook"); err != nil || string(got) != want {
			t.Fatalf("Setting = %q, %v; want %s", got, err, want)
		}
	}
	if v, _ := st.Setting(ctx, "other"); v != nil {
		t.Errorf("another setting = %q", v)
	}
}

// A rating given after the end is recorded; nothing else is.
func testRecordAfterClose(t *testing.T, st hitl.Store) {
	s := openSession(t, st, "s1")
	closeSession(t, st, s)
	other := newChange(s, "late-message")
	if r := record(t, st, other, "o1", t0.Add(time.Hour)); r.Applied {
		t.Error("a message was recorded on a closed session")
	}
	rated := newChange(s, "rated")
	rated.Event.Type, rated.AfterClose = hitl.EventRated, true
	if r := record(t, st, rated, "o2", t0.Add(time.Hour)); !r.Applied {
		t.Fatal("a rating after the end was not recorded")
	}
	if r := record(t, st, rated, "o3", t0.Add(time.Hour)); r.Applied {
		t.Error("a repeated rating was recorded twice")
	}
	if got := getSession(t, st, s.ID); got.Status != hitl.StatusClosed {
		t.Errorf("status after a late rating = %s", got.Status)
	}
	// Everything delivered, then another late rating: recorded and pending.
	p := claim(t, st, s.ID, t0.Add(2*time.Hour))
	if _, err := st.Ack(ctx, s.ID, "claimer", len(p), nil); err != nil {
		t.Fatal(err)
	}
	again := newChange(s, "rated-again")
	again.Event.Type, again.AfterClose, again.At = hitl.EventRated, true, t0.Add(3*time.Hour)
	if r := record(t, st, again, "o4", t0.Add(3*time.Hour)); !r.Applied {
		t.Fatal("a rating after everything was delivered was not recorded")
	}
	if p := claim(t, st, s.ID, t0.Add(4*time.Hour)); len(p) != 1 || p[0].ID != "rated-again" || p[0].UserID != s.UserID {
		t.Fatalf("pending after the late rating = %v", ids(p))
	}
	if _, err := st.Ack(ctx, s.ID, "claimer", 1, nil); err != nil {
		t.Fatal(err)
	}
	// The provider retries it once it was delivered: still once.
	again.At = t0.Add(3*time.Hour + time.Minute)
	if r := record(t, st, again, "o5", t0.Add(5*time.Hour)); r.Applied {
		t.Error("a retried late rating was recorded twice")
	}
}

func testOpenSessions(t *testing.T, st hitl.Store) {
	for i, id := range []string{"s1", "s2", "s3"} {
		s := newSession(id)
		s.CreatedAt = t0.Add(time.Duration(i) * time.Minute)
		if _, err := st.CreateSession(ctx, s, ""); err != nil {
			t.Fatal(err)
		}
	}
	closeSession(t, st, getSession(t, st, "s2"))
	got, err := st.OpenSessions(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.ID)
	}
	if !slices.Equal(names, []string{"s3", "s1"}) {
		t.Errorf("OpenSessions = %v, want [s3 s1] (newest first, closed left out)", names)
	}
	if got, _ := st.OpenSessions(ctx, 1); len(got) != 1 || got[0].ID != "s3" {
		t.Errorf("OpenSessions(limit 1) = %+v", got)
	}
}
