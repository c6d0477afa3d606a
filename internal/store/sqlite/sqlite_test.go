package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/store/storetest"
)

func openTemp(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), sqlite.DefaultFileName))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// Two *Store on one file behave like two warden processes sharing it: their writes are
// serialised by SQLite's file locks (busy_timeout), not by the in-process mutex.
func TestTwoHandlesOnOneFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"ConsumeOneWinner", storetest.ConcurrentConsume},
		{"PutTrustStateOneWinner", storetest.ConcurrentPutTrustState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "shared.db")
			a, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			tc.fn(t, a, b)
		})
	}
}

func TestFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "private.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Force a write so that the -wal and -shm files exist too.
	if err := s.UpdateEntryAttrs(t.Context(), "x", nil); err == nil {
		t.Fatal("UpdateEntryAttrs on empty store: no error")
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			if p != path && os.IsNotExist(err) {
				continue
			}
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group/other access", filepath.Base(p), m)
		}
	}
}

func TestPragmas(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	for _, tc := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"synchronous", "2"}, // FULL
		{"busy_timeout", "10000"},
	} {
		var got string
		if err := s.DB().QueryRow("PRAGMA " + tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
		}
	}
}

// Reopening runs the migrations again as a no-op and keeps the data.
func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reopen.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutTrustState(t.Context(), store.TrustState{Version: 1, Signed: []byte("v1"), CreatedAt: storetest.T0}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	ts, err := s.LatestTrustState(t.Context())
	if err != nil || ts.Version != 1 {
		t.Fatalf("after reopen: %v, %v", ts, err)
	}
}

// A database written by a newer binary is refused, not silently used.
func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "newer.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec("INSERT INTO schema_version (version) VALUES (99)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := sqlite.Open(path); err == nil {
		s.Close()
		t.Fatal("Open of a version-99 database: no error")
	}
}

// BenchmarkRecordSVID measures the shipped setting, synchronous=FULL, against NORMAL as
// the baseline: the difference is the price of one fsync per commit.
func BenchmarkRecordSVID(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("sync="+sync, func(b *testing.B) {
			defer sqlite.SetSynchronous(sync)()
			storetest.BenchRecordSVID(b, func(b *testing.B) store.Store { return openTemp(b) })
		})
	}
}
