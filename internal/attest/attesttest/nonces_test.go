package attesttest_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/attest/attesttest"
	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/store/storetest"
)

func TestMemoryNonces(t *testing.T) {
	attesttest.RunNonceStore(t, func(_ *testing.T, ttl time.Duration, max int) attest.NonceStore {
		return attest.NewMemoryNonces(ttl, max)
	})
}

func TestSQLiteNonces(t *testing.T) {
	attesttest.RunNonceStore(t, func(t *testing.T, ttl time.Duration, max int) attest.NonceStore {
		st, err := sqlite.Open(filepath.Join(t.TempDir(), "warden.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s, err := attest.NewSQLiteState(context.Background(), st.DB(), ttl, max)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPostgresNonces(t *testing.T) {
	attesttest.RunNonceStore(t, func(t *testing.T, ttl time.Duration, max int) attest.NonceStore {
		st, err := postgres.Open(context.Background(), storetest.PostgresDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s, err := attest.NewPostgresState(context.Background(), st.DB(), ttl, max)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
