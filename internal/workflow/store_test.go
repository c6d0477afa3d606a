package workflow_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/store/storetest"
	"github.com/warden-a2a/warden/internal/workflow"
	"github.com/warden-a2a/warden/internal/workflow/workflowtest"
)

func TestMemoryStore(t *testing.T) {
	s := workflow.NewMemoryStore()
	workflowtest.Run(t, func(*testing.T, string) workflow.Store { return s })
}

func TestSQLiteStore(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := workflow.NewSQLite(context.Background(), st.DB())
	if err != nil {
		t.Fatal(err)
	}
	workflowtest.Run(t, func(*testing.T, string) workflow.Store { return s })
}

func TestRedisStore(t *testing.T) {
	url := os.Getenv("WARDEN_TEST_REDIS")
	if url == "" {
		t.Skip("WARDEN_TEST_REDIS not set")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	s := workflow.NewRedisStore(rdb, "warden-test:wf:"+hex.EncodeToString(b[:])+":")
	workflowtest.Run(t, func(*testing.T, string) workflow.Store { return s })
}

func TestPostgresStore(t *testing.T) {
	st, err := postgres.Open(context.Background(), storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := workflow.NewPostgres(context.Background(), st.DB())
	if err != nil {
		t.Fatal(err)
	}
	workflowtest.Run(t, func(*testing.T, string) workflow.Store { return s })
}
