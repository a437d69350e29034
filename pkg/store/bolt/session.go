package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// record is a stored session: its part in sessionsBucket and its
// delivery state in deliveriesBucket.
type record struct {
	sessionPart
	delivery
}

// sessionPart is a session's record in sessionsBucket.
type sessionPart struct {
	Session hitl.Session `json:"session"`
	// Visitor is stored apart: hitl.Visitor keeps its credentials out of JSON.
	Visitor visitor `json:"visitor"`
	// Transcript and Context are stored apart too: hitl.Session keeps them
	// out of JSON.
	Transcript []hitl.TranscriptEntry `json:"transcript,omitempty"`
	Context    map[string]string      `json:"context,omitempty"`
}

type visitor struct {
	ID                  string    `json:"id,omitempty"`
	Credentials         []byte    `json:"credentials,omitempty"`
	CredentialsExpireAt time.Time `json:"credentialsExpireAt,omitzero"`

	// Records written before visitor credentials were opaque hold
	// LiveChat's customer token, its expiry and its identity cookies
	// instead; loadRecord reads them into the fields above, in the layout
	// LiveChat encodes them in (pkg/livechat, credentials), and the next
	// save drops them. They may go when no session opened before that
	// change is still open.
	Token          string    `json:"token,omitempty"`
	TokenExpiresAt time.Time `json:"tokenExpiresAt,omitzero"`
	Cookies        []string  `json:"cookies,omitempty"`
}

func newVisitor(v hitl.Visitor) visitor {
	return visitor{ID: v.ID, Credentials: v.Credentials, CredentialsExpireAt: v.CredentialsExpireAt}
}

// upgrade converts a legacy visitor to the current fields.
func (v *visitor) upgrade() error {
	if len(v.Credentials) > 0 || v.Token == "" {
		return nil
	}
	creds, err := json.Marshal(struct {
		Token   string   `json:"token"`
		Cookies []string `json:"cookies,omitempty"`
	}{v.Token, v.Cookies})
	if err != nil {
		return err
	}
	*v = visitor{ID: v.ID, Credentials: creds, CredentialsExpireAt: v.TokenExpiresAt}
	return nil
}

func (r *record) session() hitl.Session {
	s := r.Session
	s.Visitor = hitl.Visitor{ID: r.Visitor.ID, Credentials: r.Visitor.Credentials, CredentialsExpireAt: r.Visitor.CredentialsExpireAt}
	s.Transcript, s.Context = r.Transcript, r.Context
	s.UpdatedAt, s.FirstReplyAt, s.IdleUntil = r.UpdatedAt, r.FirstReplyAt, r.IdleUntil
	return s
}

// indexEntry is a key of a session in an index bucket.
type indexEntry struct {
	bucket, key []byte
}

func entryOf(bucket []byte, at time.Time, id string) indexEntry {
	return indexEntry{bucket, []byte(timeKey(at) + "\x00" + id)}
}

// indexEntries returns the record's keys in the due, visitors and idle
// buckets, where it is indexed.
func (r *record) indexEntries() []indexEntry {
	out := r.delivery.indexEntries()
	if !r.Session.Closed() && !r.Visitor.CredentialsExpireAt.IsZero() {
		out = append(out, entryOf(visitorsBucket, r.Visitor.CredentialsExpireAt, r.Session.ID))
	}
	return out
}

// moveEntries deletes the index entries in old but not in entries, and
// puts those in entries but not in old.
func moveEntries(tx *bbolt.Tx, old, entries []indexEntry) error {
	for _, e := range old {
		if !slices.ContainsFunc(entries, e.equal) {
			if err := tx.Bucket(e.bucket).Delete(e.key); err != nil {
				return err
			}
		}
	}
	for _, e := range entries {
		if !slices.ContainsFunc(old, e.equal) {
			if err := tx.Bucket(e.bucket).Put(e.key, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e indexEntry) equal(o indexEntry) bool {
	return bytes.Equal(e.bucket, o.bucket) && bytes.Equal(e.key, o.key)
}

// loadRecord reads session id; found is false when there is none.
//
// A record stored before delivery state was stored apart holds that state
// itself, under the names delivery uses, and the session's fields that
// events change in its session: the next save moves them.
func loadRecord(tx *bbolt.Tx, id string) (r *record, found bool, err error) {
	raw := tx.Bucket(sessionsBucket).Get([]byte(id))
	if raw == nil {
		return nil, false, nil
	}
	r = &record{}
	err = json.Unmarshal(raw, &r.sessionPart)
	if err == nil {
		err = r.Visitor.upgrade()
	}
	if err != nil {
		return nil, false, fmt.Errorf("decode session %s: %w", id, err)
	}
	d, found, err := loadDelivery(tx, id)
	switch {
	case err != nil:
		return nil, false, err
	case found:
		r.delivery = *d
	default:
		if err := json.Unmarshal(raw, &r.delivery); err != nil {
			return nil, false, fmt.Errorf("decode delivery state in session %s: %w", id, err)
		}
		s := &r.Session
		r.delivery.id, r.UpdatedAt, r.FirstReplyAt, r.IdleUntil = id, s.UpdatedAt, s.FirstReplyAt, s.IdleUntil
		s.UpdatedAt, s.FirstReplyAt, s.IdleUntil = time.Time{}, time.Time{}, time.Time{}
		r.Channel, r.UserID, r.Closed = s.Channel, s.UserID, s.Closed()
	}
	return r, true, nil
}

// loadExisting reads session id, or returns hitl.ErrNotFound.
func loadExisting(tx *bbolt.Tx, id string) (*record, error) {
	r, found, err := loadRecord(tx, id)
	if err == nil && !found {
		err = notFound("session", id)
	}
	return r, err
}

// save writes r, both parts, and moves its index entries from where old
// had them.
func save(tx *bbolt.Tx, old, r *record) error {
	var entries []indexEntry
	if old != nil {
		entries = old.indexEntries()
	}
	r.delivery.id, r.Channel, r.UserID, r.Closed = r.Session.ID, r.Session.Channel, r.Session.UserID, r.Session.Closed()
	if err := moveEntries(tx, entries, r.indexEntries()); err != nil {
		return err
	}
	if err := putJSON(tx.Bucket(sessionsBucket), r.Session.ID, &r.sessionPart); err != nil {
		return err
	}
	return putJSON(tx.Bucket(deliveriesBucket), r.Session.ID, &r.delivery)
}

// change loads session id, lets fn modify a copy and saves it, unless fn
// returns an error or skip.
func change(tx *bbolt.Tx, id string, fn func(r *record) (skip bool, err error)) error {
	old, err := loadExisting(tx, id)
	if err != nil {
		return err
	}
	r := *old
	if skip, err := fn(&r); err != nil || skip {
		return err
	}
	return save(tx, old, &r)
}

func (s *Store) CreateUser(_ context.Context, u hitl.User) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(usersBucket)
		if b.Get([]byte(u.ID)) != nil {
			return hitl.ErrExists
		}
		return putJSON(b, u.ID, u)
	})
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.ID, err)
	}
	return nil
}

func (s *Store) GetUser(_ context.Context, id string) (hitl.User, error) {
	var u hitl.User
	err := s.db.View(func(tx *bbolt.Tx) error {
		found, err := getJSON(tx.Bucket(usersBucket), id, &u)
		if err == nil && !found {
			err = hitl.ErrNotFound
		}
		return err
	})
	if err != nil {
		return hitl.User{}, fmt.Errorf("get user %s: %w", id, err)
	}
	return u, nil
}

func (s *Store) CreateSession(_ context.Context, sess hitl.Session, idempotencyKey string) (hitl.Session, error) {
	var first *hitl.Session
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if idempotencyKey != "" {
			if id := tx.Bucket(idemBucket).Get([]byte(idempotencyKey)); id != nil {
				r, err := loadExisting(tx, string(id))
				if err != nil {
					return err
				}
				f := r.session()
				first = &f
				return nil
			}
		}
		if _, found, err := loadRecord(tx, sess.ID); err != nil || found {
			if found {
				err = hitl.ErrExists
			}
			return err
		}
		if idempotencyKey != "" {
			if err := tx.Bucket(idemBucket).Put([]byte(idempotencyKey), []byte(sess.ID)); err != nil {
				return err
			}
		}
		r := &record{
			sessionPart: sessionPart{Session: sess, Visitor: newVisitor(sess.Visitor), Transcript: sess.Transcript, Context: sess.Context},
			delivery:    delivery{UpdatedAt: sess.UpdatedAt, FirstReplyAt: sess.FirstReplyAt, IdleUntil: sess.IdleUntil},
		}
		r.Session.UpdatedAt, r.Session.FirstReplyAt, r.Session.IdleUntil = time.Time{}, time.Time{}, time.Time{}
		return save(tx, nil, r)
	})
	switch {
	case err != nil:
		return hitl.Session{}, fmt.Errorf("create session %s: %w", sess.ID, err)
	case first != nil:
		return *first, fmt.Errorf("create session %s: idempotency key already used by session %s: %w", sess.ID, first.ID, hitl.ErrExists)
	}
	return sess, nil
}

func (s *Store) GetSession(_ context.Context, id string) (hitl.Session, error) {
	var sess hitl.Session
	err := s.db.View(func(tx *bbolt.Tx) error {
		r, err := loadExisting(tx, id)
		if err == nil {
			sess = r.session()
		}
		return err
	})
	if err != nil {
		return hitl.Session{}, fmt.Errorf("get session: %w", err)
	}
	return sess, nil
}

func convKey(provider, conversationID string) []byte {
	return []byte(provider + "\x00" + conversationID)
}

func (s *Store) SessionByConversation(_ context.Context, provider, conversationID string) (hitl.Session, error) {
	var sess hitl.Session
	err := s.db.View(func(tx *bbolt.Tx) error {
		id := tx.Bucket(convsBucket).Get(convKey(provider, conversationID))
		if id == nil {
			return hitl.ErrNotFound
		}
		r, err := loadExisting(tx, string(id))
		if err != nil {
			return err
		}
		full := r.session()
		sess = hitl.Session{
			ID: full.ID, UserID: full.UserID, Provider: full.Provider, Channel: full.Channel,
			BotConversationID: full.BotConversationID, ProviderConversationID: full.ProviderConversationID,
			AltConversationIDs: full.AltConversationIDs, CreatedAt: full.CreatedAt, OpenedAt: full.OpenedAt,
			Visitor: hitl.Visitor{ID: full.Visitor.ID},
		}
		return nil
	})
	if err != nil {
		return hitl.Session{}, fmt.Errorf("find session of %s conversation %s: %w", provider, conversationID, err)
	}
	return sess, nil
}

func (s *Store) KeepConversation(_ context.Context, id string, ids []string, at time.Time) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return change(tx, id, func(r *record) (bool, error) {
			if r.Session.Status != hitl.StatusOpening {
				if sameConversation(r.Session, ids) {
					return true, nil // a repeated call
				}
				return false, hitl.Errorf(hitl.CodeConflict, "session %s is %s, not opening", id, r.Session.Status)
			}
			return false, mapConversation(tx, r, ids, at)
		})
	})
	if err != nil {
		return fmt.Errorf("keep conversation %v of session %s: %w", ids, id, err)
	}
	return nil
}

func (s *Store) Opened(_ context.Context, id string, o hitl.Opened, at time.Time) error {
	ids := append([]string{o.ConversationID}, o.AltConversationIDs...)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return change(tx, id, func(r *record) (bool, error) {
			switch {
			case r.Session.Status == hitl.StatusOpening:
				r.Session.Status = hitl.StatusWaiting
			case r.Session.Closed() || r.Session.ProviderConversationID != o.ConversationID:
				return false, hitl.Errorf(hitl.CodeConflict, "session %s is %s, not opening", id, r.Session.Status)
			}
			if err := mapConversation(tx, r, ids, at); err != nil {
				return false, err
			}
			r.UpdatedAt = at
			r.Visitor, r.Transcript, r.Context = newVisitor(o.Visitor), nil, nil
			return false, nil
		})
	})
	if err != nil {
		return fmt.Errorf("record session %s opened as conversation %s: %w", id, o.ConversationID, err)
	}
	return nil
}

// sameConversation reports whether s was kept or opened as ids[0].
func sameConversation(s hitl.Session, ids []string) bool {
	return len(ids) > 0 && s.ProviderConversationID == ids[0]
}

// mapConversation makes r findable by each of ids (the conversation, then
// its aliases), which must be r's or no one's.
func mapConversation(tx *bbolt.Tx, r *record, ids []string, at time.Time) error {
	if len(ids) == 0 || ids[0] == "" {
		return hitl.Errorf(hitl.CodeInvalid, "no conversation id")
	}
	if r.Session.ProviderConversationID != "" && r.Session.ProviderConversationID != ids[0] {
		return hitl.Errorf(hitl.CodeConflict, "session %s has conversation %s", r.Session.ID, r.Session.ProviderConversationID)
	}
	convs := tx.Bucket(convsBucket)
	for _, cid := range ids {
		key := convKey(r.Session.Provider, cid)
		switch owner := convs.Get(key); {
		case owner == nil:
			if err := convs.Put(key, []byte(r.Session.ID)); err != nil {
				return err
			}
		case string(owner) != r.Session.ID:
			return hitl.Errorf(hitl.CodeConflict, "conversation %s belongs to session %s", cid, owner)
		}
		if cid != ids[0] && !slices.Contains(r.Session.AltConversationIDs, cid) {
			r.Session.AltConversationIDs = append(slices.Clip(r.Session.AltConversationIDs), cid)
		}
	}
	if r.Session.ProviderConversationID == "" {
		r.Session.ProviderConversationID, r.Session.OpenedAt = ids[0], at
	}
	return nil
}

func (s *Store) SaveVisitor(_ context.Context, id string, v hitl.Visitor) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return change(tx, id, func(r *record) (bool, error) {
			r.Visitor = newVisitor(v)
			return r.Session.Closed(), nil
		})
	})
	if err != nil {
		return fmt.Errorf("save visitor of session %s: %w", id, err)
	}
	return nil
}

func (s *Store) DeleteSession(_ context.Context, id, idempotencyKey string) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		r, found, err := loadRecord(tx, id)
		if err != nil {
			return err
		}
		if found {
			if r.Session.Status != hitl.StatusOpening {
				return hitl.Errorf(hitl.CodeConflict, "session %s has opened", id)
			}
			if err := moveEntries(tx, r.indexEntries(), nil); err != nil {
				return err
			}
			for _, cid := range append([]string{r.Session.ProviderConversationID}, r.Session.AltConversationIDs...) {
				key := convKey(r.Session.Provider, cid)
				if string(tx.Bucket(convsBucket).Get(key)) == id {
					if err := tx.Bucket(convsBucket).Delete(key); err != nil {
						return err
					}
				}
			}
			if err := tx.Bucket(sessionsBucket).Delete([]byte(id)); err != nil {
				return err
			}
			if err := tx.Bucket(deliveriesBucket).Delete([]byte(id)); err != nil {
				return err
			}
		}
		idem := tx.Bucket(idemBucket)
		if idempotencyKey != "" && string(idem.Get([]byte(idempotencyKey))) == id {
			return idem.Delete([]byte(idempotencyKey))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete session %s: %w", id, err)
	}
	return nil
}

func (s *Store) VisitorsExpiring(_ context.Context, t time.Time, limit int) ([]hitl.ExpiringVisitor, error) {
	before := timeKey(t)
	out, err := indexedRecords(s, visitorsBucket, limit, func(at string) bool { return at < before }, func(r *record) hitl.ExpiringVisitor {
		return hitl.ExpiringVisitor{SessionID: r.Session.ID, Provider: r.Session.Provider, Visitor: r.session().Visitor}
	})
	if err != nil {
		return nil, fmt.Errorf("list visitors expiring before %s: %w", before, err)
	}
	return out, nil
}
