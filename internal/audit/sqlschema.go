package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// dialect holds what differs between SQLite and PostgreSQL.
type dialect struct {
	name   string
	blob   string           // column type of byte strings
	ph     func(int) string // placeholder of the i-th (1-based) argument
	schema []string
	// begin starts the writer's transaction on conn, holding the log's write lock.
	begin func(ctx context.Context, conn *sql.Conn) error
}

// schemaVersion 2 added the action and reason filter columns and audit_cosignatures.
const schemaVersion = 2

func schemaFor(blob, bigint string) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS audit_schema (version ` + bigint + ` NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS audit_records (
			idx      ` + bigint + ` PRIMARY KEY,
			id       TEXT NOT NULL UNIQUE,
			kind     TEXT NOT NULL,
			time_ns  ` + bigint + ` NOT NULL,
			workflow TEXT NOT NULL,
			caller   TEXT NOT NULL,
			callee   TEXT NOT NULL,
			decision TEXT NOT NULL,
			data     ` + blob + ` NOT NULL,
			hashes   ` + blob + ` NOT NULL,
			action   TEXT NOT NULL DEFAULT '',
			reason   TEXT NOT NULL DEFAULT '')`,
		`CREATE TABLE IF NOT EXISTS audit_checkpoints (
			size    ` + bigint + ` PRIMARY KEY,
			root    ` + blob + ` NOT NULL,
			note    ` + blob + ` NOT NULL,
			time_ns ` + bigint + ` NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS audit_cosignatures (
			size     ` + bigint + ` NOT NULL,
			witness  TEXT NOT NULL,
			key_hash ` + bigint + ` NOT NULL,
			sig      TEXT NOT NULL,
			time_ns  ` + bigint + ` NOT NULL,
			PRIMARY KEY (size, witness, key_hash))`,
	}
}

var sqliteDialect = dialect{
	name:   "sqlite",
	blob:   "BLOB",
	ph:     func(int) string { return "?" },
	schema: schemaFor("BLOB", "INTEGER"),
	begin: func(ctx context.Context, c *sql.Conn) error {
		// synchronous=FULL: a commit is on disk (fsync of the WAL) before it returns.
		// busy_timeout: wait for another process's writer instead of failing.
		for _, q := range []string{"PRAGMA synchronous=FULL", "PRAGMA busy_timeout=10000", "BEGIN IMMEDIATE"} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	},
}

// pgLockKey is the pg_advisory_xact_lock key of the audit log writer ("wardaudt").
const pgLockKey = 0x7761726461756474

var postgresDialect = dialect{
	name:   "postgres",
	blob:   "BYTEA",
	ph:     func(i int) string { return "$" + strconv.Itoa(i) },
	schema: schemaFor("BYTEA", "BIGINT"),
	begin: func(ctx context.Context, c *sql.Conn) error {
		if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
			return err
		}
		_, err := c.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(pgLockKey))
		return err
	},
}

// NewSQLite returns the Storage on an open modernc.org/sqlite database (driver "sqlite"),
// creating or migrating the audit_* tables and switching the file to WAL mode.
func NewSQLite(ctx context.Context, db *sql.DB) (Storage, error) {
	if _, err := db.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
		return nil, fmt.Errorf("audit: sqlite WAL: %w", err)
	}
	return newSQLStorage(ctx, db, sqliteDialect)
}

// NewPostgres returns the Storage on an open PostgreSQL database (pgx stdlib, driver
// "pgx"), creating or migrating the audit_* tables.
func NewPostgres(ctx context.Context, db *sql.DB) (Storage, error) {
	return newSQLStorage(ctx, db, postgresDialect)
}

type sqlStorage struct {
	db *sql.DB
	d  dialect

	mu       sync.Mutex
	frontier map[int64]tlog.Hash // stored hashes a next append needs; immutable values
}

func newSQLStorage(ctx context.Context, db *sql.DB, d dialect) (*sqlStorage, error) {
	s := &sqlStorage{db: db, d: d, frontier: map[int64]tlog.Hash{}}
	if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("audit: migrate %s: %w", d.name, err)
	}
	return s, nil
}

func (s *sqlStorage) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := s.d.begin(ctx, conn); err != nil {
		return err
	}
	err = func() error {
		for _, q := range s.d.schema {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		var v int64
		switch err := conn.QueryRowContext(ctx, "SELECT version FROM audit_schema").Scan(&v); {
		case errors.Is(err, sql.ErrNoRows):
			_, err = conn.ExecContext(ctx, "INSERT INTO audit_schema (version) VALUES ("+s.d.ph(1)+")", schemaVersion)
			return err
		case err != nil:
			return err
		case v > schemaVersion:
			return fmt.Errorf("schema version %d is newer than this binary's %d", v, schemaVersion)
		case v == 1:
			if err := s.migrateV2(ctx, conn); err != nil {
				return fmt.Errorf("to version 2: %w", err)
			}
		}
		return nil
	}()
	return finish(ctx, conn, err)
}

// migrateV2 adds the action and reason columns to a version-1 audit_records table and
// fills them from each record's canonical bytes (inside the migration's transaction,
// holding the writer's lock, so no append interleaves).
func (s *sqlStorage) migrateV2(ctx context.Context, conn *sql.Conn) error {
	for _, q := range []string{
		"ALTER TABLE audit_records ADD COLUMN action TEXT NOT NULL DEFAULT ''",
		"ALTER TABLE audit_records ADD COLUMN reason TEXT NOT NULL DEFAULT ''",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	upd := "UPDATE audit_records SET action = " + s.d.ph(1) + ", reason = " + s.d.ph(2) + " WHERE idx = " + s.d.ph(3)
	for start := int64(0); ; start += verifyChunk {
		type fill struct {
			idx            int64
			action, reason string
		}
		var fills []fill
		rows, err := conn.QueryContext(ctx, "SELECT idx, data FROM audit_records WHERE idx >= "+s.d.ph(1)+" AND idx < "+s.d.ph(2), start, start+verifyChunk)
		if err != nil {
			return err
		}
		for rows.Next() {
			var idx int64
			var data []byte
			if err := rows.Scan(&idx, &data); err != nil {
				rows.Close()
				return err
			}
			// A record that does not parse keeps empty columns; verify names it.
			if c, err := columnsFromCanonical(data); err == nil && (c.Action != "" || c.Reason != "") {
				fills = append(fills, fill{idx, c.Action, c.Reason})
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, f := range fills {
			if _, err := conn.ExecContext(ctx, upd, f.action, f.reason, f.idx); err != nil {
				return err
			}
		}
		var more bool
		if err := conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM audit_records WHERE idx >= "+s.d.ph(1)+")", start+verifyChunk).Scan(&more); err != nil {
			return err
		}
		if !more {
			break
		}
	}
	_, err := conn.ExecContext(ctx, "UPDATE audit_schema SET version = "+s.d.ph(1), schemaVersion)
	return err
}

// finish commits when err is nil and rolls back otherwise.
func finish(ctx context.Context, conn *sql.Conn, err error) error {
	if err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	if _, err = conn.ExecContext(ctx, "COMMIT"); err != nil {
		// A failed COMMIT can leave the transaction open (SQLite BUSY); never hand the
		// connection back to the pool inside it.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	}
	return err
}

func (s *sqlStorage) placeholders(start, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.d.ph(start + i))
	}
	return b.String()
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}
