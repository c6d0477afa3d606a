// Package sqlschema applies one component's numbered SQL migrations to the database it
// shares with the rest of the control plane (the SQLite file or the PostgreSQL schema),
// versioned in a table of the component's own, so that components evolve independently.
// It also rebinds ? placeholders for PostgreSQL.
package sqlschema

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Dialect is what differs between the backends for a migration and a query.
type Dialect struct {
	Name   string // "sqlite" or "postgres": the directory of its migrations
	Dollar bool   // $1, $2 placeholders instead of ?
	Lock   string // statement run first in the migration transaction ("" for none)
}

// SQLite is the embedded backend: its transactions are serialised by the database.
var SQLite = Dialect{Name: "sqlite"}

// Postgres is the PostgreSQL backend; replicas starting together migrate once, under an
// advisory lock keyed by key and the current schema.
func Postgres(key string) Dialect {
	return Dialect{Name: "postgres", Dollar: true,
		Lock: "SELECT pg_advisory_xact_lock(hashtext('" + key + ":' || current_schema()))"}
}

// Migrate applies root/<dialect>/NNNN_*.sql of fsys in order inside one transaction
// (after the dialect's lock), recording each version in <component>_schema_version.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, fsys fs.FS, root, component string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: migrate: %w", component, err)
	}
	defer func() { _ = tx.Rollback() }()
	if d.Lock != "" {
		if _, err := tx.ExecContext(ctx, d.Lock); err != nil {
			return fmt.Errorf("%s: migrate: %w", component, err)
		}
	}
	if err := MigrateTx(ctx, tx, d, fsys, path.Join(root, d.Name), component+"_schema_version", component); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: migrate: %w", component, err)
	}
	return nil
}

// MigrateTx brings the schema in tx up to the newest migration in dir of fsys: files
// NNNN_name.sql, counted from 0001 without gaps, applied in order, each recorded as a row
// of table. The caller holds whatever lock keeps two processes from migrating at once and
// commits tx. A database newer than these files is refused rather than used. Errors
// start with component.
func MigrateTx(ctx context.Context, tx *sql.Tx, d Dialect, fsys fs.FS, dir, table, component string) error {
	fail := func(err error) error { return fmt.Errorf("%s: migrate: %w", component, err) }
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+table+" (version INTEGER NOT NULL PRIMARY KEY)"); err != nil {
		return fail(err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+table).Scan(&cur); err != nil {
		return fail(err)
	}
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return fail(err)
	}
	sort.Strings(names)
	latest := 0
	for _, name := range names {
		num, _, ok := strings.Cut(path.Base(name), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != latest+1 {
			return fail(fmt.Errorf("bad migration file name %q", path.Base(name)))
		}
		latest = v
		if v <= cur {
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fail(err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("%s: migrate to version %d: %w", component, v, err)
		}
		if _, err := tx.ExecContext(ctx, d.Q("INSERT INTO "+table+" (version) VALUES (?)"), v); err != nil {
			return fmt.Errorf("%s: migrate to version %d: %w", component, v, err)
		}
	}
	if cur > latest {
		return fmt.Errorf("%s: database schema version %d is newer than this binary's %d", component, cur, latest)
	}
	return nil
}

// Q rebinds ? placeholders to $1, $2, ... for PostgreSQL. It does not parse SQL: no ?
// may appear inside a literal.
func (d Dialect) Q(query string) string {
	if !d.Dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}
