package sqlcore

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

// Migrate brings the schema in tx up to the newest migration in dir of fsys. Migrations
// are files NNNN_name.sql applied in order; schema_version holds one row per applied
// version. The caller holds whatever lock keeps two processes from migrating at once
// (BEGIN IMMEDIATE on SQLite, pg_advisory_xact_lock on PostgreSQL) and commits tx.
// A database newer than this binary is refused rather than used.
func Migrate(ctx context.Context, tx *sql.Tx, fsys fs.FS, dir string, dollar bool) error {
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY)"); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&cur); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	sort.Strings(names)
	latest := 0
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != latest+1 {
			return fmt.Errorf("store: migrate: bad migration file name %q", base)
		}
		latest = v
		if v <= cur {
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("store: migrate to version %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, rebind(dollar, "INSERT INTO schema_version (version) VALUES (?)"), v); err != nil {
			return fmt.Errorf("store: migrate to version %d: %w", v, err)
		}
	}
	if cur > latest {
		return fmt.Errorf("store: database schema version %d is newer than this binary's %d", cur, latest)
	}
	return nil
}
