package bolt

import (
	"errors"
	"slices"
	"sync"

	"go.etcd.io/bbolt"
)

// committer is group commit without a wait: one goroutine runs the write
// functions of concurrent callers in shared transactions, so that one
// commit, and its syncs to disk, serve every call that arrived while the
// previous commit was syncing. A lone call commits at once (bbolt's own
// Batch waits MaxBatchDelay for company first). An update returns once the
// transaction holding its writes is on disk; an apply returns as soon as
// that transaction's functions have all run, while it syncs.
type committer struct {
	db    *bbolt.DB
	mu    sync.RWMutex // held to send on calls; Close takes it to close calls
	calls chan *call
	done  chan struct{}
	// syncing, when not nil, is closed once the transaction being
	// committed is: it is set before an apply of it is answered.
	syncingMu sync.Mutex
	syncing   chan struct{}
}

type call struct {
	fn    func(*bbolt.Tx) error
	err   chan error
	early bool // an apply: answered before the commit syncs
}

// maxBatch bounds the functions of one transaction.
const maxBatch = 256

var errClosed = errors.New("the store is closed")

func newCommitter(db *bbolt.DB) *committer {
	c := &committer{db: db, calls: make(chan *call, maxBatch), done: make(chan struct{})}
	go c.run(c.calls)
	return c
}

// update runs fn in a write transaction shared with concurrent calls and
// returns once it is committed. fn may run more than once, the last time
// alone: it must start afresh each time.
func (c *committer) update(fn func(*bbolt.Tx) error) error {
	return c.send(&call{fn: fn, err: make(chan error, 1)})
}

// apply is update for writes whose loss in a crash is harmless: it returns
// once fn's writes are final, that is once every function of its
// transaction has run without error, and does not wait for the commit's
// syncs to disk. The next transaction starts after that commit, and is on
// disk only after it; until then, a crash undoes fn, and so does an I/O
// error of the commit. Readers of what fn writes call settled first.
func (c *committer) apply(fn func(*bbolt.Tx) error) error {
	return c.send(&call{fn: fn, err: make(chan error, 1), early: true})
}

// settled returns once the writes of every apply that has returned are
// committed, so that a read transaction begun afterwards sees them. Write
// transactions need not call it: bbolt begins them after that commit.
func (c *committer) settled() {
	c.syncingMu.Lock()
	syncing := c.syncing
	c.syncingMu.Unlock()
	if syncing != nil {
		<-syncing
	}
}

// setSyncing sets syncing, and returns it.
func (c *committer) setSyncing(ch chan struct{}) chan struct{} {
	c.syncingMu.Lock()
	c.syncing = ch
	c.syncingMu.Unlock()
	return ch
}

func (c *committer) send(cl *call) error {
	c.mu.RLock()
	if c.calls == nil {
		c.mu.RUnlock()
		return errClosed
	}
	c.calls <- cl
	c.mu.RUnlock()
	return <-cl.err
}

// close commits what is queued and stops.
func (c *committer) close() {
	c.mu.Lock()
	if c.calls != nil {
		close(c.calls)
		c.calls = nil
	}
	c.mu.Unlock()
	<-c.done
}

func (c *committer) run(calls <-chan *call) {
	defer close(c.done)
	for first := range calls {
		batch := []*call{first}
	more:
		for len(batch) < maxBatch {
			select {
			case next, ok := <-calls:
				if !ok {
					break more
				}
				batch = append(batch, next)
			default:
				break more
			}
		}
		c.commit(batch)
	}
}

// commit runs batch in one transaction. A function that fails rolls the
// transaction back: it then runs alone, for its own error, and the others
// run again together. Applies are answered once every function has run,
// before the commit: nothing but an I/O error can undo them then.
func (c *committer) commit(batch []*call) {
	for len(batch) > 0 {
		failed := -1
		var answered chan struct{}
		err := c.db.Update(func(tx *bbolt.Tx) error {
			for i, cl := range batch {
				if err := cl.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			for _, cl := range batch {
				if cl.early {
					if answered == nil {
						answered = c.setSyncing(make(chan struct{}))
					}
					cl.err <- nil
				}
			}
			return nil
		})
		if answered != nil {
			c.setSyncing(nil)
			close(answered)
		}
		if failed < 0 {
			for _, cl := range batch {
				if !cl.early {
					cl.err <- err
				}
			}
			return
		}
		solo := batch[failed]
		solo.err <- c.db.Update(solo.fn)
		batch = slices.Delete(batch, failed, failed+1)
	}
}
