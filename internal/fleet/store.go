package fleet

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/sqlschema"
)

//go:embed schema/sqlite/*.sql schema/postgres/*.sql
var schemaFS embed.FS

// ErrNotFound: no bundle with that revision.
var ErrNotFound = errors.New("fleet: not found")

// Bundle is one stored signed policy bundle.
type Bundle struct {
	Revision string
	Signed   []byte // exactly as pushed
	KeyID    string
	Created  time.Time // signed at (from the bundle)
	Pushed   time.Time // first pushed at
}

// Store keeps bundles and gate reports in the control plane's database.
type Store struct {
	db *sql.DB
	d  sqlschema.Dialect
}

// NewSQLite opens the store on the control plane's SQLite database, migrating fleet_*.
func NewSQLite(ctx context.Context, db *sql.DB) (*Store, error) {
	return open(ctx, db, sqlschema.SQLite)
}

// NewPostgres opens the store on a PostgreSQL database (current schema), migrating fleet_*.
func NewPostgres(ctx context.Context, db *sql.DB) (*Store, error) {
	return open(ctx, db, sqlschema.Postgres("warden-fleet-migrate"))
}

func open(ctx context.Context, db *sql.DB, d sqlschema.Dialect) (*Store, error) {
	if err := sqlschema.Migrate(ctx, db, d, schemaFS, "schema", "fleet"); err != nil {
		return nil, err
	}
	return &Store{db: db, d: d}, nil
}

// PutBundle stores b unless its revision is already stored (the first push is kept; a
// revision names its content, so the bytes cannot differ in what they decide).
func (s *Store) PutBundle(ctx context.Context, b Bundle) error {
	_, err := s.db.ExecContext(ctx, s.d.Q(`INSERT INTO fleet_bundles (revision, signed, key_id, created_at, pushed_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (revision) DO NOTHING`),
		b.Revision, b.Signed, b.KeyID, b.Created.UnixMicro(), b.Pushed.UnixMicro())
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	return nil
}

// GetBundle returns the bundle of a revision, or ErrNotFound.
func (s *Store) GetBundle(ctx context.Context, revision string) (Bundle, error) {
	var b Bundle
	var created, pushed int64
	err := s.db.QueryRowContext(ctx, s.d.Q(`SELECT revision, signed, key_id, created_at, pushed_at FROM fleet_bundles WHERE revision = ?`), revision).
		Scan(&b.Revision, &b.Signed, &b.KeyID, &created, &pushed)
	if errors.Is(err, sql.ErrNoRows) {
		return Bundle{}, ErrNotFound
	}
	if err != nil {
		return Bundle{}, fmt.Errorf("fleet: %w", err)
	}
	b.Created, b.Pushed = time.UnixMicro(created).UTC(), time.UnixMicro(pushed).UTC()
	return b, nil
}

// ListBundles returns up to limit bundles, most recently pushed first, without their bytes.
func (s *Store) ListBundles(ctx context.Context, limit int) ([]Bundle, error) {
	rows, err := s.db.QueryContext(ctx, s.d.Q(`SELECT revision, key_id, created_at, pushed_at FROM fleet_bundles ORDER BY pushed_at DESC LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	defer rows.Close()
	var out []Bundle
	for rows.Next() {
		var b Bundle
		var created, pushed int64
		if err := rows.Scan(&b.Revision, &b.KeyID, &created, &pushed); err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
		b.Created, b.Pushed = time.UnixMicro(created).UTC(), time.UnixMicro(pushed).UTC()
		out = append(out, b)
	}
	return out, rows.Err()
}

// PutReport records a gate's heartbeat, replacing its previous one.
func (s *Store) PutReport(ctx context.Context, gateID string, r api.GateReport, at time.Time) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	_, err = s.db.ExecContext(ctx, s.d.Q(`INSERT INTO fleet_gates (gate_id, report, reported_at) VALUES (?, ?, ?)
		ON CONFLICT (gate_id) DO UPDATE SET report = excluded.report, reported_at = excluded.reported_at`),
		gateID, data, at.UnixMicro())
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	return nil
}

// Reports returns every gate's last report, ordered by gate id (flags not filled).
func (s *Store) Reports(ctx context.Context) ([]api.GateStatus, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT gate_id, report, reported_at FROM fleet_gates ORDER BY gate_id`)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	defer rows.Close()
	var out []api.GateStatus
	for rows.Next() {
		var g api.GateStatus
		var data []byte
		var at int64
		if err := rows.Scan(&g.GateID, &data, &at); err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
		if err := json.Unmarshal(data, &g.GateReport); err != nil {
			return nil, fmt.Errorf("fleet: report of %s: %w", g.GateID, err)
		}
		g.ReportedAt = time.UnixMicro(at).UTC()
		out = append(out, g)
	}
	return out, rows.Err()
}
