// Package sqlite is the embedded store.Store backend: one SQLite file (pure Go,
// modernc.org/sqlite) under the server's data directory.
//
// The file is opened in WAL mode (readers never block the writer), with foreign keys on,
// a 10 s busy_timeout for writers in other processes, and synchronous=FULL: in WAL mode
// NORMAL can lose the last commits on power loss, and a lost commit here is a consumed
// join token that becomes usable again or a revocation that is undone, so we pay one
// fsync per commit instead, and group-commit concurrent writes of this process so that
// they share one fsync (see sqlcore's batcher and docs/benchmarks.md). Writers in another
// process on the same file wait in SQLite's busy handler. Transactions begin IMMEDIATE,
// so a transaction never has to upgrade a read lock to a write lock (the SQLITE_BUSY
// deadlock of deferred transactions).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/internal/sqlcore"
)

// DefaultFileName is the database file name the server uses inside its data directory.
const DefaultFileName = "warden.db"

//go:embed schema/*.sql
var schema embed.FS

// synchronous is the PRAGMA synchronous setting; a variable only so that the benchmark
// can measure what FULL costs against NORMAL.
var synchronous = "FULL"

// Store is the SQLite store.Store. All methods come from the shared SQL implementation.
type Store struct {
	*sqlcore.Store
}

var _ store.Store = (*Store)(nil)

// Open opens (creating with mode 0600 if absent) the SQLite database at path and migrates
// its schema. The parent directory must exist.
func Open(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	// Create the file ourselves so that it is 0600 from the first byte; SQLite gives the
	// -wal and -shm files the permissions of the database file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	f.Close()

	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+synchronous+")")
	q.Add("_pragma", "foreign_keys(1)")
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	// A handful of connections for concurrent readers (WAL); writes go through the
	// group-commit queue, so they need one at a time.
	// Idle connections are kept: opening one re-runs the pragmas.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)

	if err := migrate(db); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{sqlcore.New(db, sqlcore.Dialect{
		TimeAsMicros: true,
		Classify:     classify,
		GroupCommit:  true,
	})}, nil
}

func migrate(db *sql.DB) error {
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one migrator at a time
	if err != nil {
		return fmt.Errorf("store: sqlite: %w", err)
	}
	defer tx.Rollback()
	if err := sqlcore.Migrate(ctx, tx, schema, "schema", false); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: sqlite: migrate: %w", err)
	}
	return nil
}

func classify(err error) sqlcore.Violation {
	var e *sqlite3.Error
	if !errors.As(err, &e) {
		return sqlcore.NoViolation
	}
	switch e.Code() {
	case sqlite3lib.SQLITE_CONSTRAINT_UNIQUE, sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY:
		return sqlcore.Unique
	case sqlite3lib.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sqlcore.ForeignKey
	}
	return sqlcore.NoViolation
}
