package gate

import (
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/truststate"
)

func TestAttestationOf(t *testing.T) {
	now := time.Now()
	peer := "spiffe://supplychain.example/agent/payment-release"
	doc := &truststate.Document{Attestations: map[string]truststate.Attestation{
		peer:                                   {Tier: "affirming", At: now.Add(-90 * time.Second), ResultID: "r1", Action: "allow"},
		"spiffe://supplychain.example/agent/x": {Tier: "affirming", Reason: "quote_replay", At: now},
		"spiffe://supplychain.example/agent/y": {Tier: "contraindicated", Reason: "tampered_binary", At: now},
	}}
	cases := map[string]struct {
		tier string
		age  int64
	}{
		peer:                                      {"affirming", 90},
		"spiffe://supplychain.example/agent/x":    {"warning", 0},
		"spiffe://supplychain.example/agent/y":    {"contraindicated", 0},
		"spiffe://supplychain.example/agent/none": {"none", 0},
	}
	for id, want := range cases {
		got := attestationOf(doc, id, now)
		if got.Tier != want.tier || got.AgeSeconds != want.age {
			t.Errorf("%s: got %+v, want %+v", id, got, want)
		}
	}
}
