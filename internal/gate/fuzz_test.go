package gate_test

import (
	"encoding/json"
	"testing"

	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/gate"
)

func FuzzVerifyCard(f *testing.F) {
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	e := &env{t: f, ca: c}
	svid := e.svid("/gate/vendor-portal")
	card, _ := gate.SignCard(&cardFixture, svid)
	f.Add(card)
	f.Add([]byte(`{"name":"x","signatures":[{"protected":"e30","signature":"AA"}]}`))
	f.Add([]byte(`{}`))
	bundle := c.X509Bundle()
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := gate.VerifyCard(raw, bundle, svid.ID)
		if err == nil && string(raw) != string(card) {
			// Only the signed bytes, or an equal JSON form of them, may verify.
			a, _ := gate.SignCard(got, svid) // fresh signature over what was accepted
			_ = a
			var x, y any
			_ = json.Unmarshal(raw, &x)
			_ = json.Unmarshal(card, &y)
			bx, _ := json.Marshal(x)
			by, _ := json.Marshal(y)
			if string(bx) != string(by) {
				t.Fatalf("a changed card verified: %q", raw)
			}
		}
	})
}
