// Package outbox is the SQL of the control plane's transactional outbox: the table
// `outbox` in the store's database holds audit events that were committed in the same
// transaction as the state change they record (an entry created, a trust-state version,
// an approver added, ...). The server then appends them to the Merkle audit log and
// deletes them here; after a crash it appends what is left before it serves. So a change
// and its event commit together or not at all (docs/store.md, "Outbox").
//
// The table is created by the store's migrations (internal/store/*/schema); components
// with tables of their own in the same database (approvals) stage through Insert inside
// their own transactions.
package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/warden-a2a/warden/internal/sqlschema"
	"github.com/warden-a2a/warden/internal/store"
)

// Execer is what Insert runs on: the caller's *sql.Tx (or *sql.Conn inside BEGIN).
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Insert stages evs in the transaction of q. An id already staged is an error (the
// transaction must then roll back): event ids are random, so it means a bug.
func Insert(ctx context.Context, q Execer, d sqlschema.Dialect, now time.Time, evs []store.Event) error {
	if len(evs) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO outbox (id, data, created_at) VALUES ")
	args := make([]any, 0, 3*len(evs))
	for i, ev := range evs {
		if ev.ID == "" || len(ev.Data) == 0 {
			return fmt.Errorf("store: outbox: event %d has no id or no data", i)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?, ?, ?)")
		args = append(args, ev.ID, ev.Data, now.UTC().UnixMicro())
	}
	if _, err := q.ExecContext(ctx, d.Q(b.String()), args...); err != nil {
		return fmt.Errorf("store: outbox: %w", err)
	}
	return nil
}

// Pending returns up to limit staged events, oldest first.
func Pending(ctx context.Context, db *sql.DB, d sqlschema.Dialect, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.QueryContext(ctx, d.Q("SELECT id, data FROM outbox ORDER BY seq LIMIT ?"), limit)
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var ev store.Event
		if err := rows.Scan(&ev.ID, &ev.Data); err != nil {
			return nil, fmt.Errorf("store: outbox: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	return out, nil
}

// Delete removes the staged events with these ids; ids not staged are ignored.
func Delete(ctx context.Context, q Execer, d sqlschema.Dialect, ids []string) error {
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		stmt := "DELETE FROM outbox WHERE id IN (?" + strings.Repeat(", ?", len(chunk)-1) + ")"
		if _, err := q.ExecContext(ctx, d.Q(stmt), args...); err != nil {
			return fmt.Errorf("store: outbox: %w", err)
		}
	}
	return nil
}
