package bolt

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// TestLegacyVisitor: a record written before visitor credentials were
// opaque (LiveChat's token, its expiry and cookies as visitor fields, and
// indexed by that expiry) reads as credentials in LiveChat's layout, stays
// due by its expiry, and is rewritten in the new shape when its visitor is
// saved.
func TestLegacyVisitor(t *testing.T) {
	ctx := context.Background()
	st, err := Open(filepath.Join(t.TempDir(), "hitl.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	expiry := t0.Add(30 * time.Minute)
	s := hitl.Session{ID: "s1", UserID: "usr_1", Provider: hitl.LiveChat, Channel: hitl.ChannelNative, Status: hitl.StatusWaiting, CreatedAt: t0, UpdatedAt: t0}
	err = st.db.Update(func(tx *bbolt.Tx) error {
		r := &record{Session: s, Visitor: visitor{ID: "v1", Token: "dal:tok", TokenExpiresAt: expiry, Cookies: []string{"__lc_cid=v1", "__lc_cst=secret"}}}
		if err := tx.Bucket(visitorsBucket).Put([]byte(timeKey(expiry)+"\x00s1"), nil); err != nil {
			return err
		}
		return putJSON(tx.Bucket(sessionsBucket), s.ID, r)
	})
	if err != nil {
		t.Fatal(err)
	}

	want := hitl.Visitor{ID: "v1", Credentials: hitl.Credentials(`{"token":"dal:tok","cookies":["__lc_cid=v1","__lc_cst=secret"]}`), CredentialsExpireAt: expiry}
	got, err := st.GetSession(ctx, s.ID)
	if err != nil || !reflect.DeepEqual(got.Visitor, want) {
		t.Fatalf("legacy visitor read as %q %v, %v; want %s", []byte(got.Visitor.Credentials), got.Visitor.CredentialsExpireAt, err, want.Credentials)
	}
	due, err := st.VisitorsExpiring(ctx, t0.Add(time.Hour), 10)
	if err != nil || len(due) != 1 || !reflect.DeepEqual(due[0], hitl.ExpiringVisitor{SessionID: s.ID, Provider: s.Provider, Visitor: want}) {
		t.Fatalf("VisitorsExpiring = %v, %v; want the legacy visitor", due, err)
	}

	renewed := hitl.Visitor{ID: "v1", Credentials: hitl.Credentials("new"), CredentialsExpireAt: t0.Add(8 * time.Hour)}
	if err := st.SaveVisitor(ctx, s.ID, renewed); err != nil {
		t.Fatal(err)
	}
	if due, err := st.VisitorsExpiring(ctx, t0.Add(time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("VisitorsExpiring after the save = %v, %v; want the legacy index entry gone", due, err)
	}
	var raw string
	if err := st.db.View(func(tx *bbolt.Tx) error { raw = string(tx.Bucket(sessionsBucket).Get([]byte(s.ID))); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, `"token"`) || strings.Contains(raw, "cookies") {
		t.Errorf("the saved record keeps legacy fields: %s", raw)
	}
	if got, err := st.GetSession(ctx, s.ID); err != nil || !reflect.DeepEqual(got.Visitor, renewed) {
		t.Errorf("visitor after save %q, %v", []byte(got.Visitor.Credentials), err)
	}
}
