package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/server"
)

// FuzzEnrollBody sends arbitrary bodies to the unauthenticated enrollment endpoint: every
// answer must be a 4xx with a reason code, never a 5xx or a panic.
func FuzzEnrollBody(f *testing.F) {
	srv, err := server.New(context.Background(), server.Config{TrustDomain: td.Name(), DataDir: f.TempDir(), Store: sqliteStore(f)})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	f.Add([]byte(`{"token":"wdn1.AAAA.BBBB","csr":"AAAA"}`))
	f.Add([]byte(`{"token":"","csr":null,"evidence":{"a":1}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, api.PathEnroll, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if !bytes.Contains(rec.Body.Bytes(), []byte(`"error":"`)) {
			t.Fatalf("no reason code: %s", rec.Body)
		}
	})
}
