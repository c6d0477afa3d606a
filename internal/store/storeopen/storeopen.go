// Package storeopen opens a store.Store backend from a one-string spec, as given on the
// command line (--store) or in the server's Config. It lives apart from package store so
// that the backends can import store without a cycle.
package storeopen

import (
	"context"
	"errors"
	"strings"

	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/sqlite"
)

// Open opens the store named by spec:
//
//	postgres://... or postgresql://...   PostgreSQL (pgx DSN; see package postgres)
//	sqlite:PATH                          SQLite file at PATH
//	PATH                                 SQLite file at PATH
//
// A SQLite file is created (mode 0600) if absent; its directory must exist.
func Open(ctx context.Context, spec string) (store.Store, error) {
	switch {
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return postgres.Open(ctx, spec)
	case strings.HasPrefix(spec, "sqlite:"):
		spec = strings.TrimPrefix(spec, "sqlite:")
	}
	if spec == "" {
		return nil, errors.New("store: empty store spec")
	}
	if i := strings.Index(spec, "://"); i > 0 && !strings.ContainsAny(spec[:i], `/\`) {
		// Fail closed on a URL we don't know (mysql://, postgress://) rather than create a
		// SQLite file with that name.
		return nil, errors.New("store: unknown store scheme " + spec[:i] + "://; want postgres://, postgresql://, sqlite:PATH or a file path")
	}
	return sqlite.Open(spec)
}
