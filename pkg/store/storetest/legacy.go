package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// The visitor of a legacy session: stores wrote LiveChat's customer token,
// its expiry and its identity cookies as visitor fields of their own before
// visitor credentials became opaque. Each store's own test writes such a
// session in its old layout, with these values, for LegacyVisitor.
var (
	LegacyVisitorID = "v1"
	LegacyToken     = "dal:tok"
	LegacyCookies   = []string{"__lc_cid=v1", "__lc_cst=secret"}
)

// LegacyVisitor checks a store's read of a legacy session s, not closed,
// whose token expires at expiry (after t0): its visitor reads as
// credentials in the layout pkg/livechat decodes, is due by that expiry,
// and takes a new visitor, after which legacyLeft, asked of the stored
// session, must report false.
func LegacyVisitor(t *testing.T, st hitl.Store, s hitl.Session, expiry time.Time, legacyLeft func() bool) {
	t.Helper()
	want := hitl.Visitor{
		ID:                  LegacyVisitorID,
		Credentials:         hitl.Credentials(`{"token":"dal:tok","cookies":["__lc_cid=v1","__lc_cst=secret"]}`),
		CredentialsExpireAt: expiry,
	}
	if got := getSession(t, st, s.ID); !reflect.DeepEqual(got.Visitor, want) {
		t.Fatalf("legacy visitor read as %s, want %s", dumpVisitor(got.Visitor), dumpVisitor(want))
	}
	due, err := st.VisitorsExpiring(ctx, expiry.Add(time.Minute), 10)
	if err != nil || len(due) != 1 || !reflect.DeepEqual(due[0], hitl.ExpiringVisitor{SessionID: s.ID, Provider: s.Provider, Visitor: want}) {
		t.Fatalf("VisitorsExpiring = %v, %v; want the legacy visitor", due, err)
	}

	renewed := hitl.Visitor{ID: want.ID, Credentials: hitl.Credentials("renewed"), CredentialsExpireAt: expiry.Add(8 * time.Hour)}
	if err := st.SaveVisitor(ctx, s.ID, renewed); err != nil {
		t.Fatalf("SaveVisitor: %v", err)
	}
	if due, err := st.VisitorsExpiring(ctx, expiry.Add(time.Minute), 10); err != nil || len(due) != 0 {
		t.Errorf("VisitorsExpiring after the save = %v, %v; want none: the legacy expiry is gone", due, err)
	}
	if got := getSession(t, st, s.ID); !reflect.DeepEqual(got.Visitor, renewed) {
		t.Errorf("visitor after the save %s, want %s", dumpVisitor(got.Visitor), dumpVisitor(renewed))
	}
	if legacyLeft() {
		t.Error("the saved session keeps its legacy visitor fields")
	}
}
