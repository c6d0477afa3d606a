package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/warden-a2a/warden/internal/store"
)

// querier is what a write runs its statements on: the pool, or a batch's transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// writeFn is one store write: one or more statements, returning nil, an expected outcome
// (an error wrapping a store sentinel such as ErrExists), or a failure.
type writeFn func(ctx context.Context, q querier) error

// maxBatch bounds how many writes share one transaction.
const maxBatch = 256

// batcher implements group commit: concurrent writes in this process are run, in arrival
// order, inside one BEGIN IMMEDIATE transaction and committed with one fsync. The writer
// at the head of the queue is the leader: it takes the queue (up to maxBatch writes),
// commits it, wakes those writers with their results, and hands leadership to the next
// waiting writer, if any. So each caller commits at most one batch (no caller is kept
// serving others under sustained load), and learns its outcome only after the commit
// that made it durable.
//
// Invariant: leading is false only when pending is empty.
//
// Semantics are those of running the writes one after another: SQLite rolls back only the
// failing statement on a constraint violation, so one write's ErrExists does not affect
// its neighbours. Any other error (I/O, disk full) aborts the whole batch and every write
// in it reports that error; nothing of the batch is committed.
type batcher struct {
	db      *sql.DB
	mu      sync.Mutex
	pending []*batchOp
	leading bool
}

type batchOp struct {
	ctx      context.Context
	fn       writeFn
	err      error
	finished bool          // set before wake when err is final
	wake     chan struct{} // buffered 1: finished, or promoted to leader
}

func (b *batcher) do(ctx context.Context, fn writeFn) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &batchOp{ctx: ctx, fn: fn, wake: make(chan struct{}, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, op)
	lead := !b.leading
	b.leading = true
	b.mu.Unlock()
	if !lead {
		<-op.wake
		if op.finished {
			return op.err
		}
		// Promoted: op is at the head of the queue.
	}
	b.mu.Lock()
	n := min(len(b.pending), maxBatch)
	ops := b.pending[:n:n]
	b.pending = b.pending[n:]
	b.mu.Unlock()

	b.commit(ops)

	b.mu.Lock()
	var next *batchOp
	if len(b.pending) > 0 {
		next = b.pending[0]
	} else {
		b.leading = false
	}
	b.mu.Unlock()
	for _, o := range ops {
		o.finished = true
		o.wake <- struct{}{}
	}
	if next != nil {
		next.wake <- struct{}{}
	}
	return op.err
}

func (b *batcher) commit(ops []*batchOp) {
	fail := func(err error) {
		for _, op := range ops {
			op.err = err
		}
	}
	// The batch is not tied to any caller's context: a caller giving up must not roll
	// back its neighbours' writes (sqlite3_interrupt rolls back the transaction).
	tx, err := b.db.BeginTx(context.Background(), nil)
	if err != nil {
		fail(fmt.Errorf("store: begin: %w", err))
		return
	}
	for _, op := range ops {
		if err := op.ctx.Err(); err != nil {
			op.err = err // skipped, never ran
			continue
		}
		op.err = op.fn(context.WithoutCancel(op.ctx), tx)
		if op.err != nil && !expected(op.err) {
			tx.Rollback()
			fail(fmt.Errorf("store: write batch aborted: %w", op.err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		tx.Rollback()
		fail(fmt.Errorf("store: commit: %w", err))
	}
}

// expected reports whether err is an outcome the store reports to callers (the statement
// failed cleanly and the transaction is intact), not a failure of the database.
func expected(err error) bool {
	for _, s := range []error{store.ErrNotFound, store.ErrExists, store.ErrTokenUsed, store.ErrTokenExpired, store.ErrConflict} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
