package storeopen_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/store/storeopen"
	"github.com/warden-a2a/warden/internal/store/storetest"
)

func TestOpenSQLiteSpecs(t *testing.T) {
	dir := t.TempDir()
	for _, spec := range []string{
		filepath.Join(dir, "plain.db"),
		"sqlite:" + filepath.Join(dir, "prefixed.db"),
	} {
		s, err := storeopen.Open(context.Background(), spec)
		if err != nil {
			t.Fatalf("Open(%q): %v", spec, err)
		}
		if _, ok := s.(*sqlite.Store); !ok {
			t.Errorf("Open(%q) = %T, want *sqlite.Store", spec, s)
		}
		s.Close()
	}
	for _, name := range []string{"plain.db", "prefixed.db"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s not created: %v", name, err)
		}
	}
}

func TestOpenRejectsBadSpecs(t *testing.T) {
	dir := t.TempDir()
	for _, spec := range []string{
		"",
		"sqlite:",
		"mysql://root@localhost/db",
		"postgress://typo@localhost/db",
		filepath.Join(dir, "missing-dir", "x.db"),
	} {
		if s, err := storeopen.Open(context.Background(), spec); err == nil {
			s.Close()
			t.Errorf("Open(%q): no error", spec)
		}
	}
}

func TestOpenPostgres(t *testing.T) {
	s, err := storeopen.Open(context.Background(), storetest.PostgresDSN(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if _, ok := s.(*postgres.Store); !ok {
		t.Errorf("Open = %T, want *postgres.Store", s)
	}
}
