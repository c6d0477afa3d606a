package witness

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	_ "modernc.org/sqlite" // driver "sqlite"

	"golang.org/x/mod/sumdb/tlog"
)

// Store is the witness's own state: for each log origin the newest checkpoint it
// cosigned (size, root, and the note with its cosignature), plus the refused checkpoints
// that were validly signed by a log (evidence of a truncation, rollback or fork). It is a
// SQLite file (synchronous=FULL): a cosignature is returned only after its state is on
// disk.
type Store struct {
	db *sql.DB
	mu sync.Mutex // one check-and-update at a time (tlog-witness requires it atomic)
}

// Latest is the newest cosigned checkpoint of one log.
type Latest struct {
	Size int64
	Root tlog.Hash
	Note []byte // checkpoint with the log's signatures and this witness's cosignature
	Time time.Time
}

// maxRefusals bounds the evidence table; the oldest rows go first.
const maxRefusals = 1000

// OpenStore opens (creating) the witness store at path.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("witness: open store: %w", err)
	}
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS witness_checkpoints (
			origin  TEXT PRIMARY KEY,
			size    INTEGER NOT NULL,
			root    BLOB NOT NULL,
			note    BLOB NOT NULL,
			time_ns INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS witness_refusals (
			id       INTEGER PRIMARY KEY AUTOINCREMENT,
			time_ns  INTEGER NOT NULL,
			origin   TEXT NOT NULL,
			status   INTEGER NOT NULL,
			reason   TEXT NOT NULL,
			old_size INTEGER NOT NULL,
			body     BLOB NOT NULL)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("witness: create store: %w", err)
		}
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Get returns the newest cosigned checkpoint of origin, ok false when there is none.
func (s *Store) Get(ctx context.Context, origin string) (Latest, bool, error) {
	return get(ctx, s.db, origin)
}

type rowQueryer interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func get(ctx context.Context, q rowQueryer, origin string) (Latest, bool, error) {
	var l Latest
	var root []byte
	var tns int64
	err := q.QueryRowContext(ctx, "SELECT size, root, note, time_ns FROM witness_checkpoints WHERE origin = ?", origin).Scan(&l.Size, &root, &l.Note, &tns)
	if errors.Is(err, sql.ErrNoRows) {
		return l, false, nil
	}
	if err != nil {
		return l, false, fmt.Errorf("witness: read store: %w", err)
	}
	if len(root) != tlog.HashSize {
		return l, false, fmt.Errorf("witness: stored root of %s is %d bytes", origin, len(root))
	}
	l.Root = tlog.Hash(root)
	l.Time = time.Unix(0, tns).UTC()
	return l, true, nil
}

// update runs check on the current state of origin and, when it returns a new state,
// stores it, all under one lock and one transaction.
func (s *Store) update(ctx context.Context, origin string, check func(cur Latest, ok bool) (Latest, error)) (Latest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Latest{}, fmt.Errorf("witness: store: %w", err)
	}
	defer tx.Rollback()
	cur, ok, err := get(ctx, tx, origin)
	if err != nil {
		return Latest{}, err
	}
	next, err := check(cur, ok)
	if err != nil {
		return Latest{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO witness_checkpoints (origin, size, root, note, time_ns) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, note = excluded.note, time_ns = excluded.time_ns`,
		origin, next.Size, next.Root[:], next.Note, next.Time.UnixNano()); err != nil {
		return Latest{}, fmt.Errorf("witness: store: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Latest{}, fmt.Errorf("witness: store: %w", err)
	}
	return next, nil
}

// refused keeps a validly signed checkpoint the witness refused, as evidence.
func (s *Store) refused(ctx context.Context, now time.Time, origin string, status int, reason string, old int64, body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.db.ExecContext(ctx, "INSERT INTO witness_refusals (time_ns, origin, status, reason, old_size, body) VALUES (?, ?, ?, ?, ?, ?)",
		now.UnixNano(), origin, status, reason, old, body); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, "DELETE FROM witness_refusals WHERE id <= (SELECT MAX(id) FROM witness_refusals) - ?", maxRefusals)
	return err
}

// Refusal is one refused, validly signed checkpoint.
type Refusal struct {
	Time    time.Time
	Origin  string
	Status  int
	Reason  string
	OldSize int64
	Body    []byte
}

// Refusals returns the kept refusals, newest first.
func (s *Store) Refusals(ctx context.Context) ([]Refusal, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT time_ns, origin, status, reason, old_size, body FROM witness_refusals ORDER BY id DESC")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Refusal
	for rows.Next() {
		var r Refusal
		var tns int64
		if err := rows.Scan(&tns, &r.Origin, &r.Status, &r.Reason, &r.OldSize, &r.Body); err != nil {
			return nil, err
		}
		r.Time = time.Unix(0, tns).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
