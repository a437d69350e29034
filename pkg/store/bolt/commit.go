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
// Batch waits MaxBatchDelay for company first). Durability is unchanged:
// a call returns once the transaction holding its writes is on disk.
type committer struct {
	db    *bbolt.DB
	mu    sync.RWMutex // held to send on calls; Close takes it to close calls
	calls chan *call
	done  chan struct{}
}

type call struct {
	fn  func(*bbolt.Tx) error
	err chan error
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
	cl := &call{fn: fn, err: make(chan error, 1)}
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
// run again together.
func (c *committer) commit(batch []*call) {
	for len(batch) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bbolt.Tx) error {
			for i, cl := range batch {
				if err := cl.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, cl := range batch {
				cl.err <- err
			}
			return
		}
		solo := batch[failed]
		solo.err <- c.db.Update(solo.fn)
		batch = slices.Delete(batch, failed, failed+1)
	}
}
