// Package sqlcore is the store.Store implementation shared by the SQL backends (sqlite,
// postgres). The backends differ only in their Dialect: placeholder syntax, how a time is
// encoded, how a driver error maps to a constraint violation, and whether writes are
// group-committed (SQLite). Every write is one SQL statement (ConsumeJoinToken adds a read
// to explain a refusal) plus, when the caller passes audit events, their insert into the
// outbox table in the same transaction (package outbox); so atomicity comes from the
// database, not from locks in Go:
//
//   - ConsumeJoinToken is a single conditional UPDATE ... RETURNING; of any number of
//     concurrent callers exactly one sees the row with used_at IS NULL (SQLite serialises
//     writers; PostgreSQL re-evaluates the WHERE clause after the winner's row lock).
//   - PutTrustState is INSERT ... SELECT ... WHERE version = max+1; a concurrent writer
//     with the same version loses on the primary key and gets store.ErrConflict.
//
// Times are sent with microsecond precision (truncated) and returned in UTC.
package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/warden-a2a/warden/internal/sqlschema"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/outbox"
)

// Violation is a constraint violation reported by a driver, as classified by a Dialect.
type Violation int

// Constraint violations a Dialect reports.
const (
	NoViolation Violation = iota
	Unique                // unique or primary-key constraint
	ForeignKey            // foreign-key constraint
)

// Dialect holds what differs between SQL backends.
type Dialect struct {
	// Dollar selects $1, $2, ... placeholders (PostgreSQL) instead of ? (SQLite).
	Dollar bool
	// TimeAsMicros stores times as INTEGER microseconds since the Unix epoch (SQLite);
	// otherwise times are passed as time.Time (PostgreSQL timestamptz).
	TimeAsMicros bool
	// Classify maps a driver error to a constraint violation.
	Classify func(error) Violation
	// GroupCommit runs concurrent writes of this process in shared transactions (see
	// batcher). For SQLite, which has one writer per file and pays an fsync per commit;
	// writers in other processes still queue on the file lock (busy_timeout).
	GroupCommit bool
}

// Store implements store.Store on a *sql.DB. Backends embed it.
type Store struct {
	db    *sql.DB
	d     Dialect
	sd    sqlschema.Dialect // placeholders of the outbox statements
	q     queries
	batch *batcher // nil without GroupCommit
}

var _ store.Store = (*Store)(nil)

// New returns a Store on db (whose schema is already migrated) speaking dialect d.
func New(db *sql.DB, d Dialect) *Store {
	s := &Store{db: db, d: d, sd: sqlschema.Dialect{Dollar: d.Dollar}}
	s.q = buildQueries(d)
	if d.GroupCommit {
		s.batch = &batcher{db: db}
	}
	return s
}

// DB returns the underlying database handle, e.g. for health checks.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database handle.
func (s *Store) Close() error { return s.db.Close() }

type queries struct {
	createEntry, getEntry, getEntryByID, listEntries, updateAttrs, deleteEntry string
	createToken, consumeToken, getToken                                        string
	recordSVID, getSVID, countSVIDs, latestSVID                                string
	latestTS, putTS                                                            string
}

const (
	entryCols = "name, spiffe_id, role, class, zone, created_at, attrs"
	tokenCols = "hash, entry_name, created_at, expires_at, used_at"
	svidCols  = "serial, spiffe_id, entry_name, kind, not_before, not_after, issued_at"
)

func buildQueries(d Dialect) queries {
	r := func(q string) string { return rebind(d.Dollar, q) }
	return queries{
		createEntry:  r("INSERT INTO entries (" + entryCols + ") VALUES (?, ?, ?, ?, ?, ?, ?)"),
		getEntry:     r("SELECT " + entryCols + " FROM entries WHERE name = ?"),
		getEntryByID: r("SELECT " + entryCols + " FROM entries WHERE spiffe_id = ?"),
		listEntries:  "SELECT " + entryCols + " FROM entries ORDER BY name",
		updateAttrs:  r("UPDATE entries SET attrs = ? WHERE name = ?"),
		deleteEntry:  r("DELETE FROM entries WHERE name = ?"),
		createToken:  r("INSERT INTO join_tokens (" + tokenCols + ") VALUES (?, ?, ?, ?, NULL)"),
		// The single statement that makes a token one-time: it matches only while unused
		// and unexpired (expires_at > now, i.e. now is before ExpiresAt).
		consumeToken: r("UPDATE join_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ? RETURNING " + tokenCols),
		getToken:     r("SELECT " + tokenCols + " FROM join_tokens WHERE hash = ?"),
		recordSVID:   r("INSERT INTO svids (" + svidCols + ") VALUES (?, ?, ?, ?, ?, ?, ?)"),
		getSVID:      r("SELECT " + svidCols + " FROM svids WHERE serial = ?"),
		countSVIDs:   r("SELECT COUNT(*) FROM svids WHERE spiffe_id = ?"),
		latestSVID:   r("SELECT " + svidCols + " FROM svids WHERE spiffe_id = ? ORDER BY not_before DESC, issued_at DESC, serial DESC LIMIT 1"),
		latestTS:     "SELECT version, signed, created_at FROM trust_states ORDER BY version DESC LIMIT 1",
		// Compare-and-set: inserts only when version = latest+1 (1 on an empty table).
		putTS: r("INSERT INTO trust_states (version, signed, created_at) SELECT ?, ?, ? " +
			"WHERE ? = (SELECT COALESCE(MAX(version), 0) + 1 FROM trust_states)"),
	}
}

// rebind turns ? placeholders into $1, $2, ... when dollar is set. Our queries have no ?
// inside literals.
func rebind(dollar bool, q string) string { return sqlschema.Dialect{Dollar: dollar}.Q(q) }

// t encodes a time for the backend: microsecond precision, UTC.
func (s *Store) t(v time.Time) any {
	v = v.UTC().Truncate(time.Microsecond)
	if s.d.TimeAsMicros {
		return v.UnixMicro()
	}
	return v
}

// nt is t, with the zero time as NULL.
func (s *Store) nt(v time.Time) any {
	if v.IsZero() {
		return nil
	}
	return s.t(v)
}

// timeCol scans an INTEGER microsecond count, a time.Time or NULL (the zero time).
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return fmt.Errorf("sqlcore: cannot scan %T as time", src)
	}
	return nil
}

// blob normalises nil to empty (columns are NOT NULL) and returns a copy.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// unblob returns nil for an empty value, so nil and empty compare equal for callers.
func unblob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// write runs fn and stages events in one transaction: in a group-commit batch (SQLite),
// in a transaction of its own when there are events (PostgreSQL), or else as fn's one
// statement on the pool. Events are staged only when fn returns nil.
func (s *Store) write(ctx context.Context, events []store.Event, fn writeFn) error {
	run := fn
	if len(events) > 0 {
		run = func(ctx context.Context, q querier) error {
			if err := fn(ctx, q); err != nil {
				return err
			}
			return outbox.Insert(ctx, q, s.sd, time.Now(), events)
		}
	}
	switch {
	case s.batch != nil:
		return s.batch.do(ctx, run)
	case len(events) == 0:
		return run(ctx, s.db)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := run(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// execWrite runs one statement as a write with its events. check, if not nil, turns the
// affected row count into the write's outcome (ErrNotFound when nothing matched) before
// the events are staged.
func (s *Store) execWrite(ctx context.Context, events []store.Event, classify func(error) error, check func(n int64) error, query string, args ...any) error {
	return s.write(ctx, events, func(ctx context.Context, q querier) error {
		res, err := q.ExecContext(ctx, query, args...)
		if err != nil {
			return classify(err)
		}
		n, err := affected(res)
		if err != nil || check == nil {
			return err
		}
		return check(n)
	})
}

func affected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: rows affected: %w", err)
	}
	return n, nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanEntry(r rowScanner) (store.Entry, error) {
	var e store.Entry
	err := r.Scan(&e.Name, &e.SPIFFEID, &e.Role, &e.Class, &e.Zone, timeCol{&e.CreatedAt}, &e.Attrs)
	e.Attrs = unblob(e.Attrs)
	return e, err
}

func scanToken(r rowScanner) (store.JoinToken, error) {
	var t store.JoinToken
	err := r.Scan(&t.Hash, &t.EntryName, timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timeCol{&t.UsedAt})
	return t, err
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// CreateEntry implements store.Store.
func (s *Store) CreateEntry(ctx context.Context, e store.Entry, events ...store.Event) error {
	return s.execWrite(ctx, events, func(err error) error {
		if s.d.Classify(err) == Unique {
			return fmt.Errorf("store: entry %q or SPIFFE ID %q: %w", e.Name, e.SPIFFEID, store.ErrExists)
		}
		return fmt.Errorf("store: create entry: %w", err)
	}, nil, s.q.createEntry, e.Name, e.SPIFFEID, e.Role, e.Class, e.Zone, s.t(e.CreatedAt), blob(e.Attrs))
}

// GetEntry implements store.Store.
func (s *Store) GetEntry(ctx context.Context, name string) (store.Entry, error) {
	e, err := scanEntry(s.db.QueryRowContext(ctx, s.q.getEntry, name))
	if err != nil {
		return store.Entry{}, notFound(err, fmt.Sprintf("entry %q", name))
	}
	return e, nil
}

// GetEntryBySPIFFEID implements store.Store.
func (s *Store) GetEntryBySPIFFEID(ctx context.Context, id string) (store.Entry, error) {
	e, err := scanEntry(s.db.QueryRowContext(ctx, s.q.getEntryByID, id))
	if err != nil {
		return store.Entry{}, notFound(err, fmt.Sprintf("entry with SPIFFE ID %q", id))
	}
	return e, nil
}

// ListEntries implements store.Store. The result is non-nil.
func (s *Store) ListEntries(ctx context.Context) ([]store.Entry, error) {
	rows, err := s.db.QueryContext(ctx, s.q.listEntries)
	if err != nil {
		return nil, fmt.Errorf("store: list entries: %w", err)
	}
	defer rows.Close()
	out := []store.Entry{}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list entries: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list entries: %w", err)
	}
	return out, nil
}

// entryFound is the row-count check of a write to one entry.
func entryFound(name string) func(int64) error {
	return func(n int64) error {
		if n == 0 {
			return fmt.Errorf("store: entry %q: %w", name, store.ErrNotFound)
		}
		return nil
	}
}

// UpdateEntryAttrs implements store.Store.
func (s *Store) UpdateEntryAttrs(ctx context.Context, name string, attrs []byte, events ...store.Event) error {
	return s.execWrite(ctx, events, func(err error) error {
		return fmt.Errorf("store: update entry %q: %w", name, err)
	}, entryFound(name), s.q.updateAttrs, blob(attrs), name)
}

// DeleteEntry implements store.Store. Its join tokens go with it (ON DELETE CASCADE).
func (s *Store) DeleteEntry(ctx context.Context, name string, events ...store.Event) error {
	return s.execWrite(ctx, events, func(err error) error {
		return fmt.Errorf("store: delete entry %q: %w", name, err)
	}, entryFound(name), s.q.deleteEntry, name)
}

// CreateJoinToken implements store.Store. t.Hash must be 32 bytes and t.UsedAt zero.
func (s *Store) CreateJoinToken(ctx context.Context, t store.JoinToken, events ...store.Event) error {
	if len(t.Hash) != 32 {
		return fmt.Errorf("store: join token hash is %d bytes, want 32 (SHA-256)", len(t.Hash))
	}
	if !t.UsedAt.IsZero() {
		return errors.New("store: a new join token must not be used")
	}
	return s.execWrite(ctx, events, func(err error) error {
		switch s.d.Classify(err) {
		case Unique:
			return fmt.Errorf("store: join token: %w", store.ErrExists)
		case ForeignKey:
			return fmt.Errorf("store: join token for entry %q: %w", t.EntryName, store.ErrNotFound)
		}
		return fmt.Errorf("store: create join token: %w", err)
	}, nil, s.q.createToken, t.Hash, t.EntryName, s.t(t.CreatedAt), s.t(t.ExpiresAt))
}

// ConsumeJoinToken implements store.Store.
func (s *Store) ConsumeJoinToken(ctx context.Context, hash []byte, now time.Time) (store.JoinToken, error) {
	var t store.JoinToken
	err := s.write(ctx, nil, func(ctx context.Context, q querier) error {
		var err error
		t, err = scanToken(q.QueryRowContext(ctx, s.q.consumeToken, s.t(now), hash, s.t(now)))
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: consume join token: %w", err)
		}
		// Nothing matched: say why. A used token never becomes unused again, so this read
		// cannot contradict the UPDATE above; a token deleted in between is ErrNotFound.
		got, err := scanToken(q.QueryRowContext(ctx, s.q.getToken, hash))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("store: join token: %w", store.ErrNotFound)
		case err != nil:
			return fmt.Errorf("store: consume join token: %w", err)
		case !got.UsedAt.IsZero():
			return fmt.Errorf("store: join token: %w", store.ErrTokenUsed)
		default:
			// Unused, so it failed expires_at > now.
			return fmt.Errorf("store: join token: %w", store.ErrTokenExpired)
		}
	})
	if err != nil {
		return store.JoinToken{}, err
	}
	return t, nil
}

// RecordSVID implements store.Store.
func (s *Store) RecordSVID(ctx context.Context, v store.SVID, events ...store.Event) error {
	return s.execWrite(ctx, events, func(err error) error {
		if s.d.Classify(err) == Unique {
			return fmt.Errorf("store: SVID serial %s: %w", v.Serial, store.ErrExists)
		}
		return fmt.Errorf("store: record SVID: %w", err)
	}, nil, s.q.recordSVID, v.Serial, v.SPIFFEID, v.EntryName, v.Kind, s.t(v.NotBefore), s.t(v.NotAfter), s.t(v.IssuedAt))
}

// GetSVID implements store.Store.
func (s *Store) GetSVID(ctx context.Context, serial string) (store.SVID, error) {
	var v store.SVID
	err := s.db.QueryRowContext(ctx, s.q.getSVID, serial).Scan(&v.Serial, &v.SPIFFEID, &v.EntryName, &v.Kind,
		timeCol{&v.NotBefore}, timeCol{&v.NotAfter}, timeCol{&v.IssuedAt})
	if err != nil {
		return store.SVID{}, notFound(err, "SVID serial "+serial)
	}
	return v, nil
}

// CountSVIDs implements store.Store.
func (s *Store) CountSVIDs(ctx context.Context, spiffeID string) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, s.q.countSVIDs, spiffeID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count SVIDs: %w", err)
	}
	return n, nil
}

// LatestSVID implements store.Store.
func (s *Store) LatestSVID(ctx context.Context, spiffeID string) (store.SVID, error) {
	var v store.SVID
	err := s.db.QueryRowContext(ctx, s.q.latestSVID, spiffeID).Scan(&v.Serial, &v.SPIFFEID, &v.EntryName, &v.Kind,
		timeCol{&v.NotBefore}, timeCol{&v.NotAfter}, timeCol{&v.IssuedAt})
	if err != nil {
		return store.SVID{}, notFound(err, "SVID of "+spiffeID)
	}
	return v, nil
}

// LatestTrustState implements store.Store.
func (s *Store) LatestTrustState(ctx context.Context) (store.TrustState, error) {
	var ts store.TrustState
	err := s.db.QueryRowContext(ctx, s.q.latestTS).Scan(&ts.Version, &ts.Signed, timeCol{&ts.CreatedAt})
	if err != nil {
		return store.TrustState{}, notFound(err, "trust state")
	}
	return ts, nil
}

// PutTrustState implements store.Store.
func (s *Store) PutTrustState(ctx context.Context, ts store.TrustState, events ...store.Event) error {
	return s.execWrite(ctx, events, func(err error) error {
		if s.d.Classify(err) == Unique {
			// A concurrent writer inserted this version first.
			return fmt.Errorf("store: trust state version %d: %w", ts.Version, store.ErrConflict)
		}
		return fmt.Errorf("store: put trust state: %w", err)
	}, func(n int64) error {
		if n == 0 {
			return fmt.Errorf("store: trust state version %d is not latest+1: %w", ts.Version, store.ErrConflict)
		}
		return nil
	}, s.q.putTS, ts.Version, blob(ts.Signed), s.t(ts.CreatedAt), ts.Version)
}

// PendingEvents implements store.Store.
func (s *Store) PendingEvents(ctx context.Context, limit int) ([]store.Event, error) {
	return outbox.Pending(ctx, s.db, s.sd, limit)
}

// DeleteEvents implements store.Store.
func (s *Store) DeleteEvents(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.write(ctx, nil, func(ctx context.Context, q querier) error {
		return outbox.Delete(ctx, q, s.sd, ids)
	})
}
