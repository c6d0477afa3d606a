// Package postgres is the store.Store backend for several warden server replicas sharing
// one PostgreSQL database, through database/sql and pgx (github.com/jackc/pgx/v5/stdlib).
//
// Every method is one statement under READ COMMITTED; the one-winner guarantees of the
// store package hold across replicas (see internal/store/internal/sqlcore). Schema
// migrations run on Open inside one transaction holding a transaction-level advisory lock
// keyed by the current schema, so replicas that start together migrate once.
//
// The DSN is a pgx connection string, e.g.
//
//	postgres://warden@db.example:5432/warden?sslmode=verify-full&search_path=warden
//
// Unknown query parameters such as search_path are sent as run-time parameters, so a
// search_path places the tables in that (existing) schema.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/internal/sqlcore"
)

//go:embed schema/*.sql
var schema embed.FS

// Store is the PostgreSQL store.Store. All methods come from the shared SQL implementation.
type Store struct {
	*sqlcore.Store
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at dsn, checks it answers, and migrates the schema.
func Open(ctx context.Context, dsn string) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	// The DSN is parsed on first connect; pgx masks the password in its errors
	// (TestBadDSNDoesNotLeakPassword).
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: postgres: connect: %w", err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{sqlcore.New(db, sqlcore.Dialect{Dollar: true, Classify: classify})}, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: postgres: migrate: %w", err)
	}
	defer tx.Rollback()
	// Held until commit; the key is per schema so that separate schemas (tests) do not
	// wait for each other.
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext('warden-store-migrate:' || current_schema()))"); err != nil {
		return fmt.Errorf("store: postgres: migrate: %w", err)
	}
	if err := sqlcore.Migrate(ctx, tx, schema, "schema", true); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: postgres: migrate: %w", err)
	}
	return nil
}

func classify(err error) sqlcore.Violation {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return sqlcore.NoViolation
	}
	switch e.Code {
	case "23505": // unique_violation
		return sqlcore.Unique
	case "23503": // foreign_key_violation
		return sqlcore.ForeignKey
	}
	return sqlcore.NoViolation
}
