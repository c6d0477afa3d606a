package audit_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/mod/sumdb/note"
	_ "modernc.org/sqlite"

	"github.com/warden-a2a/warden/internal/audit"
)

// backend is one Storage under test with raw SQL access for tampering.
type backend struct {
	name string
	db   *sql.DB
	st   audit.Storage
	ph   func(int) string
	// second opens another handle on the same database, as a second process would.
	second func(t testing.TB) audit.Storage
}

func openSQLiteDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newSQLiteBackend(t testing.TB) backend {
	t.Helper()
	path := filepath.Join(t.TempDir(), "warden.db")
	open := func(t testing.TB) audit.Storage {
		st, err := audit.NewSQLite(context.Background(), openSQLiteDB(t, path))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	db := openSQLiteDB(t, path)
	st, err := audit.NewSQLite(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return backend{name: "sqlite", db: db, st: st, ph: func(int) string { return "?" }, second: open}
}

// newPostgresBackend returns a Storage in a fresh schema of WARDEN_TEST_POSTGRES, or skips.
func newPostgresBackend(t testing.TB) backend {
	t.Helper()
	dsn := os.Getenv("WARDEN_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("WARDEN_TEST_POSTGRES is not set; skipping the PostgreSQL backend")
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "audit_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", dsn)
		if err == nil {
			a.Exec("DROP SCHEMA " + schema + " CASCADE")
			a.Close()
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	open := func(t testing.TB) (*sql.DB, audit.Storage) {
		db, err := sql.Open("pgx", dsn+sep+"search_path="+schema)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		st, err := audit.NewPostgres(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		return db, st
	}
	db, st := open(t)
	return backend{name: "postgres", db: db, st: st, ph: func(i int) string { return fmt.Sprintf("$%d", i) },
		second: func(t testing.TB) audit.Storage { _, st := open(t); return st }}
}

// eachBackend runs f against SQLite and, when configured, PostgreSQL.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) { f(t, newSQLiteBackend(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, newPostgresBackend(t)) })
}

func testKeys(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	s, v, err := audit.LoadOrCreateKeys(filepath.Join(t.TempDir(), "audit"), audit.NoteName("example.org"))
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

var t0 = time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)

// decisionEvent returns a realistic decision event number i.
func decisionEvent(i int) audit.Event {
	dec, reason := audit.DecisionAllow, ""
	if i%7 == 3 {
		dec, reason = audit.DecisionDeny, "replay"
	}
	return audit.Event{
		V: audit.SchemaVersion, ID: fmt.Sprintf("dec-%08d", i), Kind: audit.KindDecision,
		Time:       t0.Add(time.Duration(i) * time.Millisecond),
		WorkflowID: fmt.Sprintf("wf-%d", i%50), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
		Initiator: "spiffe://example.org/agent/demand-planner",
		Caller:    "spiffe://example.org/agent/procurement", Callee: "spiffe://example.org/agent/vendor-portal",
		CallerCertSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		IntentJTI:        fmt.Sprintf("jti-%d", i), Action: "purchase_order.create", Resource: "po/4711",
		DataObjects: []string{"po/4711", "vendor/acme"}, Purpose: "replenishment",
		Attestation:    &audit.Attestation{Tier: "affirming", AgeMS: 42000, ResultID: "ar-1"},
		PolicyRevision: "rev-17", DeterminingPolicies: []string{"po-create-within-budget"},
		Decision: dec, Reason: reason, Obligations: []string{"log"}, LatencyUS: 412,
		GateID: "gate-vendor-portal", Zone: "plant-1",
	}
}

func mustAppend(t testing.TB, l *audit.Log, evs ...audit.Event) {
	t.Helper()
	for _, ev := range evs {
		if _, err := l.Append(context.Background(), ev); err != nil {
			t.Fatalf("append %s: %v", ev.ID, err)
		}
	}
}
