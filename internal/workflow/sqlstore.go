package workflow

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"github.com/warden-a2a/warden/internal/sqlschema"
)

//go:embed schema/sqlite/*.sql schema/postgres/*.sql
var schemaFS embed.FS

// SQLStore keeps workflow state in the control plane's database (tables workflow_*),
// behind the control plane's API (RemoteStore is its client). Begin is one transaction;
// the primary key of workflow_once makes exactly one of concurrent identical
// non-repeatable steps win.
type SQLStore struct {
	db  *sql.DB
	d   sqlschema.Dialect
	now func() time.Time
}

var _ Store = (*SQLStore)(nil)

// NewSQLite opens the store on the control plane's SQLite database, migrating workflow_*.
func NewSQLite(ctx context.Context, db *sql.DB) (*SQLStore, error) {
	return openSQL(ctx, db, sqlschema.SQLite)
}

// NewPostgres opens the store on PostgreSQL (current schema), migrating workflow_*.
func NewPostgres(ctx context.Context, db *sql.DB) (*SQLStore, error) {
	return openSQL(ctx, db, sqlschema.Postgres("warden-workflow-migrate"))
}

func openSQL(ctx context.Context, db *sql.DB, d sqlschema.Dialect) (*SQLStore, error) {
	if err := sqlschema.Migrate(ctx, db, d, schemaFS, "schema", "workflow"); err != nil {
		return nil, err
	}
	return &SQLStore{db: db, d: d, now: time.Now}, nil
}

func unavailable(err error) error { return fmt.Errorf("%w: %v", ErrUnavailable, err) }

// Begin implements Store.
func (s *SQLStore) Begin(ctx context.Context, st Step) (verdict string, err error) {
	if err := st.Validate(); err != nil {
		return "", err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", unavailable(err)
	}
	defer func() { _ = tx.Rollback() }()
	exists := func(query string, args ...any) (bool, error) {
		var one int
		err := tx.QueryRowContext(ctx, s.d.Q(query), args...).Scan(&one)
		if err == sql.ErrNoRows {
			return false, nil
		}
		return err == nil, err
	}
	var qerr error
	ok := satisfied(st.After, func(a, c string) bool {
		found, err := exists(`SELECT 1 FROM workflow_steps WHERE workflow = ? AND wf_id = ? AND action = ? AND callee = ? LIMIT 1`, st.Workflow, st.ID, a, c)
		qerr = firstErr(qerr, err)
		return found
	}, func(a string) bool {
		found, err := exists(`SELECT 1 FROM workflow_steps WHERE workflow = ? AND wf_id = ? AND action = ? LIMIT 1`, st.Workflow, st.ID, a)
		qerr = firstErr(qerr, err)
		return found
	})
	if qerr != nil {
		return "", unavailable(qerr)
	}
	if !ok {
		verdict = OutOfOrder
	}
	dup, err := exists(`SELECT 1 FROM workflow_once WHERE workflow = ? AND action = ? AND callee = ? AND resource = ?`, st.Workflow, st.Action, st.Callee, st.Resource)
	if err != nil {
		return "", unavailable(err)
	}
	if verdict == "" && !st.Repeatable && dup {
		verdict = Duplicate
	}
	if verdict != "" && st.Enforce {
		return verdict, nil
	}
	if _, err := tx.ExecContext(ctx, s.d.Q(`INSERT INTO workflow_steps (token, workflow, wf_id, action, callee, resource, done, at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)`),
		st.Token, st.Workflow, st.ID, st.Action, st.Callee, st.Resource, s.now().UnixMicro()); err != nil {
		return "", unavailable(err)
	}
	if !st.Repeatable && !dup {
		res, err := tx.ExecContext(ctx, s.d.Q(`INSERT INTO workflow_once (workflow, action, callee, resource, token) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
			st.Workflow, st.Action, st.Callee, st.Resource, st.Token)
		if err != nil {
			return "", unavailable(err)
		}
		if n, _ := res.RowsAffected(); n == 0 { // a concurrent Begin won
			if verdict == "" {
				verdict = Duplicate
			}
			if st.Enforce {
				return verdict, nil
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return "", unavailable(err)
	}
	return verdict, nil
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Finish implements Store.
func (s *SQLStore) Finish(ctx context.Context, st Step, done bool) error {
	if done {
		if _, err := s.db.ExecContext(ctx, s.d.Q(`UPDATE workflow_steps SET done = 1 WHERE token = ? AND callee = ?`), st.Token, st.Callee); err != nil {
			return unavailable(err)
		}
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range []string{`DELETE FROM workflow_steps WHERE token = ? AND callee = ?`, `DELETE FROM workflow_once WHERE token = ? AND callee = ?`} {
		if _, err := tx.ExecContext(ctx, s.d.Q(q), st.Token, st.Callee); err != nil {
			return unavailable(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return unavailable(err)
	}
	return nil
}
