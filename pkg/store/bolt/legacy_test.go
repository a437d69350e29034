package bolt

import (
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
		return putJSON(tx.Bucket(sessionsBucket), s.ID, &record{Session: s, Visitor: old})
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
