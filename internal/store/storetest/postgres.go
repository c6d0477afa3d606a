package storetest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// PostgresDSN returns a DSN for a fresh, empty schema in the PostgreSQL database named by
// $WARDEN_TEST_POSTGRES (its search_path points at the schema), and drops the schema
// when tb ends. It skips tb when the variable is unset.
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("WARDEN_TEST_POSTGRES")
	if base == "" {
		tb.Skip("WARDEN_TEST_POSTGRES is not set; set it to a PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("WARDEN_TEST_POSTGRES is not a URL")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { admin.Close() })
	var b [8]byte
	rand.Read(b[:])
	name := "warden_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE SCHEMA " + name); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + name + " CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", name, err)
		}
	})
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}
