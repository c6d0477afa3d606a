package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/storetest"
)

func open(tb testing.TB, dsn string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, storetest.PostgresDSN(t)) })
}

// Two *Store on one database behave like two server replicas.
func TestTwoReplicas(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"ConsumeOneWinner", storetest.ConcurrentConsume},
		{"PutTrustStateOneWinner", storetest.ConcurrentPutTrustState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := storetest.PostgresDSN(t)
			a, b := open(t, dsn), open(t, dsn)
			defer a.Close()
			defer b.Close()
			tc.fn(t, a, b)
		})
	}
}

// Replicas starting together on an empty schema migrate it once, without errors.
func TestConcurrentStartMigratesOnce(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	const n = 6
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(context.Background(), dsn)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Open: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	// One row per migration (0001_init, 0002_outbox): nobody applied one twice.
	var rows, versions int
	if err := stores[0].DB().QueryRow("SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_version").Scan(&rows, &versions); err != nil || rows != 2 || versions != 2 {
		t.Errorf("schema_version has %d rows of %d versions (%v), want 2 of 2", rows, versions, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	s := open(t, dsn)
	if _, err := s.DB().Exec("INSERT INTO schema_version (version) VALUES (99)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := postgres.Open(context.Background(), dsn); err == nil {
		s.Close()
		t.Fatal("Open of a version-99 schema: no error")
	}
}

func TestBadDSNDoesNotLeakPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:hunter2@127.0.0.1:1/x?sslmode=bogus",   // parse error
		"postgres://u:hunter2@127.0.0.1:1/x?sslmode=disable", // connection refused
	} {
		_, err := postgres.Open(context.Background(), dsn)
		if err == nil {
			t.Fatalf("Open(%s): no error", dsn)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error reveals the password: %v", err)
		}
	}
}

func BenchmarkRecordSVID(b *testing.B) {
	storetest.BenchRecordSVID(b, func(b *testing.B) store.Store { return open(b, storetest.PostgresDSN(b)) })
}
