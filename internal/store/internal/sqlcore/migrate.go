package sqlcore

import (
	"context"
	"database/sql"
	"io/fs"

	"github.com/warden-a2a/warden/internal/sqlschema"
)

// Migrate brings the schema in tx up to the newest migration in dir of fsys. Migrations
// are files NNNN_name.sql applied in order; schema_version holds one row per applied
// version. The caller holds whatever lock keeps two processes from migrating at once
// (BEGIN IMMEDIATE on SQLite, pg_advisory_xact_lock on PostgreSQL) and commits tx.
// A database newer than this binary is refused rather than used.
func Migrate(ctx context.Context, tx *sql.Tx, fsys fs.FS, dir string, dollar bool) error {
	return sqlschema.MigrateTx(ctx, tx, sqlschema.Dialect{Dollar: dollar}, fsys, dir, "schema_version", "store")
}
