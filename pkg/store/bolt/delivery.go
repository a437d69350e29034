package bolt

import (
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// delivery is a session's delivery state, with the session's fields its
// events change, stored in deliveriesBucket beside the session's record:
// an agent message's Record and Ack, inside the commit every other write
// waits for, then decode and encode this small record only, not the
// session with its visitor credentials (as the DynamoDB store's delivery
// item beside its session item).
type delivery struct {
	id string // the session's, for index keys

	// Copies of the session's, which save keeps: Channel and UserID route
	// the events read back; Closed refuses events.
	Channel string `json:"channel"`
	UserID  string `json:"userId,omitempty"`
	Closed  bool   `json:"closed,omitempty"`

	// Outbox holds the undelivered events, oldest first. Their Channel and
	// UserID are the session's and are restored on reading.
	Outbox     []hitl.Event `json:"outbox,omitempty"`
	LeaseOwner string       `json:"leaseOwner,omitempty"`
	LeaseUntil time.Time    `json:"leaseUntil,omitzero"`
	Retry      retry        `json:"retry,omitzero"`
	// Due is when the outbox is next due for an attempt; zero when empty.
	Due time.Time `json:"due,omitzero"`

	// The session's fields that events change are kept here only; the
	// session's own are zero.
	UpdatedAt    time.Time `json:"updatedAt"`
	FirstReplyAt time.Time `json:"firstReplyAt,omitzero"`
	IdleUntil    time.Time `json:"idleUntil,omitzero"`
}

type retry struct {
	At       time.Time `json:"at"`
	Attempts int       `json:"attempts"`
	Since    time.Time `json:"since"`
}

func (d *delivery) pending() []hitl.Event {
	if len(d.Outbox) == 0 {
		return nil
	}
	events := make([]hitl.Event, len(d.Outbox))
	for i, e := range d.Outbox {
		e.Channel, e.UserID = d.Channel, d.UserID
		events[i] = e
	}
	return events
}

// indexEntries returns the session's keys in the due and idle buckets,
// where its delivery state indexes it.
func (d *delivery) indexEntries() []indexEntry {
	var out []indexEntry
	if !d.Due.IsZero() {
		out = append(out, entryOf(dueBucket, d.Due, d.id))
	}
	if !d.Closed && !d.IdleUntil.IsZero() {
		out = append(out, entryOf(idleBucket, d.IdleUntil, d.id))
	}
	return out
}

// admits reports whether the session takes c's event: it is open (or c
// comes after its end) and did not record the event before.
func (d *delivery) admits(tx *bbolt.Tx, c hitl.Change) (bool, error) {
	if d.Closed && !c.AfterClose {
		return false, nil
	}
	seen, err := remembered(tx, d.id, c.Event.ID, c.At)
	return !seen, err
}

// add appends c's event to the outbox, remembers its id, and takes the
// delivery lease for owner if it is free.
func (d *delivery) add(tx *bbolt.Tx, c hitl.Change, owner string, leaseUntil time.Time) (hitl.Recorded, error) {
	if c.AgentReplied && d.FirstReplyAt.IsZero() {
		d.FirstReplyAt = c.At
	}
	d.UpdatedAt = c.At
	d.Outbox = append(slices.Clip(d.Outbox), c.Event)
	if err := remember(tx, d.id, c.Event.ID, c.At); err != nil {
		return hitl.Recorded{}, err
	}
	if d.LeaseOwner == "" {
		d.LeaseOwner, d.LeaseUntil = owner, leaseUntil
	}
	if d.Due.IsZero() {
		d.Due = leaseUntil
	}
	out := hitl.Recorded{Applied: true, IdleUntil: d.IdleUntil}
	if d.LeaseOwner == owner && d.LeaseUntil.Equal(leaseUntil) {
		out.Leased, out.Pending = true, d.pending()
	}
	return out, nil
}

// loadDelivery reads the delivery state of session id; found is false when
// there is none: no such session, or one stored before delivery state was
// stored apart (loadRecord reads that).
func loadDelivery(tx *bbolt.Tx, id string) (d *delivery, found bool, err error) {
	d = &delivery{id: id}
	found, err = getJSON(tx.Bucket(deliveriesBucket), id, d)
	if err != nil {
		return nil, false, fmt.Errorf("decode delivery state of session %s: %w", id, err)
	}
	return d, found, nil
}

// saveDelivery writes d and moves its index entries from where old had
// them.
func saveDelivery(tx *bbolt.Tx, old, d *delivery) error {
	if err := moveEntries(tx, old.indexEntries(), d.indexEntries()); err != nil {
		return err
	}
	return putJSON(tx.Bucket(deliveriesBucket), d.id, d)
}

// changeDelivery is change for the delivery state alone: it reads and
// writes the session's record only when that still holds the state.
func changeDelivery(tx *bbolt.Tx, id string, fn func(d *delivery) (skip bool, err error)) error {
	old, found, err := loadDelivery(tx, id)
	if err != nil {
		return err
	}
	if !found {
		return change(tx, id, func(r *record) (bool, error) { return fn(&r.delivery) })
	}
	d := *old
	if skip, err := fn(&d); err != nil || skip {
		return err
	}
	return saveDelivery(tx, old, &d)
}

// readDelivery reads the delivery state of session id, or returns
// hitl.ErrNotFound.
func readDelivery(tx *bbolt.Tx, id string) (*delivery, error) {
	d, found, err := loadDelivery(tx, id)
	if err != nil || found {
		return d, err
	}
	r, err := loadExisting(tx, id)
	if err != nil {
		return nil, err
	}
	return &r.delivery, nil
}
