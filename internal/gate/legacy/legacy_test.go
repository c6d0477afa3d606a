package legacy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/gate/legacy"
)

// FuzzVerify: whatever arrives in Authorization, only credentials the gate minted pass.
func FuzzVerify(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	good, _ := gate.MintLegacyToken(key, "spiffe://supplychain.example/agent/erp", "spiffe://supplychain.example/agent/procurement", "erp", "purchase_order.create", "Order/1", now, 30*time.Second)
	f.Add("Bearer " + good)
	f.Add("Bearer eyJhbGciOiJub25lIn0.e30.")
	f.Add("Basic dXNlcjpwYXNz")
	f.Add("Bearer a.b.c")
	f.Fuzz(func(t *testing.T, auth string) {
		v := &legacy.Verifier{Key: &key.PublicKey, Audience: "erp", Now: func() time.Time { return now }}
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", auth)
		c, err := v.Verify(r)
		if err == nil && auth != "Bearer "+good {
			t.Fatalf("accepted %q as %+v", auth, c)
		}
	})
}
