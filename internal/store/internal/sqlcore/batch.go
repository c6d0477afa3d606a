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
// order, inside one BEGIN IMMEDIATE transaction and committed with one fsync. The first
// writer to arrive while none is committing becomes the leader and commits batches until
// the queue is empty; the others wait for their result. Every caller learns its outcome
// only after the commit that made it durable.
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
	ctx  context.Context
	fn   writeFn
	err  error
	done chan struct{}
}

func (b *batcher) do(ctx context.Context, fn writeFn) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &batchOp{ctx: ctx, fn: fn, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, op)
	lead := !b.leading
	b.leading = true
	b.mu.Unlock()
	if lead {
		b.lead()
	}
	<-op.done
	return op.err
}

func (b *batcher) lead() {
	for {
		b.mu.Lock()
		n := min(len(b.pending), maxBatch)
		if n == 0 {
			b.leading = false
			b.mu.Unlock()
			return
		}
		ops := b.pending[:n:n]
		b.pending = b.pending[n:]
		b.mu.Unlock()
		b.commit(ops)
		for _, op := range ops {
			close(op.done)
		}
	}
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
