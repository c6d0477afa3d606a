package approval

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/warden-a2a/warden/internal/sqlschema"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/outbox"
)

//go:embed schema/sqlite/*.sql schema/postgres/*.sql
var schemaFS embed.FS

// dialect is what differs between SQLite and PostgreSQL here: placeholders and the
// migration lock (sqlschema.Dialect) and how a driver reports a constraint violation.
// Times are INTEGER / BIGINT microseconds in both, so no time encoding differs.
type dialect struct {
	sqlschema.Dialect
	unique func(err error) bool // unique / primary-key violation
	fk     func(err error) bool // foreign-key violation
}

var sqliteDialect = dialect{
	Dialect: sqlschema.SQLite,
	unique: func(err error) bool {
		var e *sqlite3.Error
		return errors.As(err, &e) && (e.Code() == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY)
	},
	fk: func(err error) bool {
		var e *sqlite3.Error
		return errors.As(err, &e) && e.Code() == sqlite3lib.SQLITE_CONSTRAINT_FOREIGNKEY
	},
}

var postgresDialect = dialect{
	// Replicas starting together migrate once; keyed per schema like the main store.
	Dialect: sqlschema.Postgres("warden-approval-migrate"),
	unique:  func(err error) bool { var e *pgconn.PgError; return errors.As(err, &e) && e.Code == "23505" },
	fk:      func(err error) bool { var e *pgconn.PgError; return errors.As(err, &e) && e.Code == "23503" },
}

type sqlStore struct {
	db *sql.DB
	d  dialect
}

// NewSQLite returns the Store on a SQLite database (the control plane's own file, opened
// with foreign keys on and BEGIN IMMEDIATE transactions) after migrating its approval_*
// tables.
func NewSQLite(ctx context.Context, db *sql.DB) (Store, error) { return newSQL(ctx, db, sqliteDialect) }

// NewPostgres returns the Store on a PostgreSQL database after migrating its approval_*
// tables (in the connection's current schema).
func NewPostgres(ctx context.Context, db *sql.DB) (Store, error) {
	return newSQL(ctx, db, postgresDialect)
}

func newSQL(ctx context.Context, db *sql.DB, d dialect) (*sqlStore, error) {
	s := &sqlStore{db: db, d: d}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// migrate applies schema/<dialect>/NNNN_*.sql, versioned in approval_schema_version.
func (s *sqlStore) migrate(ctx context.Context) error {
	return sqlschema.Migrate(ctx, s.db, s.d.Dialect, schemaFS, "schema", "approval")
}

// q rebinds ? placeholders for PostgreSQL.
func (s *sqlStore) q(query string) string { return s.d.Q(query) }

func micros(t time.Time) int64      { return t.UnixMicro() }
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

const reqCols = "id, requester, filed_by, action, resource, amount, currency, intent_hash, required, policy_id, workflow, created_at, expires_at, audience, consumed_at, consumed_by"

func (s *sqlStore) CreateRequest(ctx context.Context, r Request) error {
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO approval_requests ("+reqCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		r.ID, r.Requester, r.FiledBy, r.Action, r.Resource, r.Amount, r.Currency, r.IntentHash, r.Required,
		r.PolicyID, r.Workflow, micros(r.CreatedAt), micros(r.ExpiresAt), r.Audience, consumedMicros(r.ConsumedAt), r.ConsumedBy)
	if err != nil && s.d.unique(err) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("approval: %w", err)
	}
	return nil
}

type scanner interface{ Scan(...any) error }

func scanRequest(sc scanner) (Request, error) {
	var r Request
	var created, expires, consumed int64
	err := sc.Scan(&r.ID, &r.Requester, &r.FiledBy, &r.Action, &r.Resource, &r.Amount, &r.Currency,
		&r.IntentHash, &r.Required, &r.PolicyID, &r.Workflow, &created, &expires, &r.Audience, &consumed, &r.ConsumedBy)
	r.CreatedAt, r.ExpiresAt = fromMicros(created), fromMicros(expires)
	if consumed != 0 {
		r.ConsumedAt = fromMicros(consumed)
	}
	return r, err
}

func (s *sqlStore) GetRequest(ctx context.Context, id string) (Request, []Decision, error) {
	r, err := scanRequest(s.db.QueryRowContext(ctx, s.q("SELECT "+reqCols+" FROM approval_requests WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, nil, ErrNotFound
	} else if err != nil {
		return Request{}, nil, fmt.Errorf("approval: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, s.q("SELECT approval_id, approver, decision, reason, statement, signature, key_id, decided_at "+
		"FROM approval_decisions WHERE approval_id = ? ORDER BY decided_at, approver"), id)
	if err != nil {
		return Request{}, nil, fmt.Errorf("approval: %w", err)
	}
	defer rows.Close()
	var ds []Decision
	for rows.Next() {
		var d Decision
		var at int64
		if err := rows.Scan(&d.ApprovalID, &d.Approver, &d.Decision, &d.Reason, &d.Statement, &d.Signature, &d.KeyID, &at); err != nil {
			return Request{}, nil, fmt.Errorf("approval: %w", err)
		}
		d.DecidedAt = fromMicros(at)
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return Request{}, nil, fmt.Errorf("approval: %w", err)
	}
	return r, ds, nil
}

func (s *sqlStore) ListRequests(ctx context.Context, limit int) ([]Request, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+reqCols+" FROM approval_requests ORDER BY created_at DESC, id LIMIT ?"), limit)
	if err != nil {
		return nil, fmt.Errorf("approval: %w", err)
	}
	defer rows.Close()
	var out []Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("approval: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *sqlStore) AddDecision(ctx context.Context, d Decision) error {
	// The primary key (approval_id, approver) makes a second decision of one approver
	// fail, whichever replica or goroutine tries.
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO approval_decisions (approval_id, approver, decision, reason, statement, signature, key_id, decided_at) "+
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
		d.ApprovalID, d.Approver, d.Decision, d.Reason, d.Statement, d.Signature, d.KeyID, micros(d.DecidedAt))
	switch {
	case err == nil:
		return nil
	case s.d.unique(err):
		return ErrExists
	case s.d.fk(err):
		return ErrNotFound
	}
	return fmt.Errorf("approval: %w", err)
}

// consumedMicros stores the zero time as 0, the "not used" marker.
func consumedMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(micros(t), 1)
}

func (s *sqlStore) Consume(ctx context.Context, id, by string, at time.Time) error {
	// One statement: the row's write lock (PostgreSQL re-evaluates the WHERE clause on
	// the locked row under READ COMMITTED; SQLite serialises writers) makes the
	// consumed_at = 0 test and the write atomic, so exactly one concurrent caller wins.
	res, err := s.db.ExecContext(ctx, s.q("UPDATE approval_requests SET consumed_at = ?, consumed_by = ? "+
		"WHERE id = ? AND consumed_at = 0 AND expires_at > ? "+
		"AND NOT EXISTS (SELECT 1 FROM approval_decisions WHERE approval_id = ? AND decision = 'deny')"),
		max(micros(at), 1), by, id, micros(at), id)
	if err != nil {
		return fmt.Errorf("approval: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("approval: %w", err)
	} else if n == 1 {
		return nil
	}
	var one int
	err = s.db.QueryRowContext(ctx, s.q("SELECT 1 FROM approval_requests WHERE id = ?"), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	} else if err != nil {
		return fmt.Errorf("approval: %w", err)
	}
	return ErrNotConsumable
}

func (s *sqlStore) PurgeExpired(ctx context.Context, before time.Time) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, s.q("DELETE FROM approval_decisions WHERE approval_id IN "+
		"(SELECT id FROM approval_requests WHERE expires_at < ?)"), micros(before)); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, s.q("DELETE FROM approval_requests WHERE expires_at < ?"), micros(before))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

func (s *sqlStore) PutApprover(ctx context.Context, a Approver, events ...store.Event) error {
	err := s.withEvents(ctx, events, func(q outbox.Execer) error {
		_, err := q.ExecContext(ctx, s.q("INSERT INTO approval_approvers (name, public_key, spiffe_id, created_at) VALUES (?, ?, ?, ?)"),
			a.Name, a.PublicKeyPEM, a.SPIFFEID, micros(a.CreatedAt))
		if err != nil && s.d.unique(err) {
			return ErrExists
		}
		return err
	})
	if err != nil && !errors.Is(err, ErrExists) {
		return fmt.Errorf("approval: %w", err)
	}
	return err
}

// withEvents runs write and stages events (the control plane's outbox) in one
// transaction; without events, write runs alone on the pool.
func (s *sqlStore) withEvents(ctx context.Context, events []store.Event, write func(q outbox.Execer) error) error {
	if len(events) == 0 {
		return write(s.db)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := write(tx); err != nil {
		return err
	}
	if err := outbox.Insert(ctx, tx, s.d.Dialect, time.Now(), events); err != nil {
		return err
	}
	return tx.Commit()
}

func scanApprover(sc scanner) (Approver, error) {
	var a Approver
	var at int64
	err := sc.Scan(&a.Name, &a.PublicKeyPEM, &a.SPIFFEID, &at)
	a.CreatedAt = fromMicros(at)
	return a, err
}

func (s *sqlStore) GetApprover(ctx context.Context, name string) (Approver, error) {
	a, err := scanApprover(s.db.QueryRowContext(ctx, s.q("SELECT name, public_key, spiffe_id, created_at FROM approval_approvers WHERE name = ?"), name))
	if errors.Is(err, sql.ErrNoRows) {
		return Approver{}, ErrNotFound
	} else if err != nil {
		return Approver{}, fmt.Errorf("approval: %w", err)
	}
	return a, nil
}

func (s *sqlStore) ListApprovers(ctx context.Context) ([]Approver, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, public_key, spiffe_id, created_at FROM approval_approvers ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("approval: %w", err)
	}
	defer rows.Close()
	var out []Approver
	for rows.Next() {
		a, err := scanApprover(rows)
		if err != nil {
			return nil, fmt.Errorf("approval: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *sqlStore) DeleteApprover(ctx context.Context, name string, events ...store.Event) error {
	err := s.withEvents(ctx, events, func(q outbox.Execer) error {
		res, err := q.ExecContext(ctx, s.q("DELETE FROM approval_approvers WHERE name = ?"), name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("approval: %w", err)
	}
	return err
}
