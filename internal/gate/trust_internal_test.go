package gate

import (
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/policy"
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

func TestPeerAgent(t *testing.T) {
	doc := &truststate.Document{Directory: map[string]truststate.DirectoryEntry{
		"spiffe://supplychain.example/agent/procurement": {Name: "procurement", Role: "procurement", Class: "transactional", Zone: "cloud"},
	}}
	peers := map[string]policy.Agent{
		"spiffe://supplychain.example/agent/procurement": {Role: "payments", Class: "regulated"}, // stale local config
		"spiffe://partner.example/agent/carrier":         {Role: "carrier", Class: "advisory", Partner: true},
	}
	if a, ok := peerAgent(peers, doc, "spiffe://supplychain.example/agent/procurement"); !ok || a.Role != "procurement" || a.Class != "transactional" {
		t.Errorf("directory must win over local config: %+v", a)
	}
	if a, ok := peerAgent(peers, doc, "spiffe://partner.example/agent/carrier"); !ok || !a.Partner || a.Role != "carrier" {
		t.Errorf("partner from peers: %+v", a)
	}
	if _, ok := peerAgent(peers, doc, "spiffe://supplychain.example/agent/unknown"); ok {
		t.Error("unknown caller found")
	}
}

// TestTrustViewLiveControls: an incident limited to a zone is the gate's own when the gate
// is in that zone, and the caller's zone otherwise; switch expiry and zone names carry over.
func TestTrustViewLiveControls(t *testing.T) {
	exp := time.Now().Add(time.Minute).UTC()
	doc := &truststate.Document{
		IncidentMode: true, Responders: []string{"logistics"},
		Incident:     &truststate.Incident{Reason: "INC-1", Zone: "finance"},
		KillSwitches: []truststate.KillSwitch{{ID: "ks-1", Scope: "action", Value: "payment.release", Reason: "r", Expires: exp}},
		Zones:        map[string]truststate.Zone{"old": {State: truststate.ZoneHealthy}, "edge": {State: truststate.ZoneQuarantined}},
	}
	in := trustView(doc, "finance")
	if !in.IncidentMode || in.IncidentZone != "" {
		t.Errorf("gate in the incident's zone: mode %v zone %q, want every call in incident mode", in.IncidentMode, in.IncidentZone)
	}
	out := trustView(doc, "cloud")
	if !out.IncidentMode || out.IncidentZone != "finance" {
		t.Errorf("gate elsewhere: mode %v zone %q, want incident for callers of finance", out.IncidentMode, out.IncidentZone)
	}
	if len(out.KillSwitches) != 1 || !out.KillSwitches[0].Expires.Equal(exp) {
		t.Errorf("switches %+v", out.KillSwitches)
	}
	if out.ZoneStates["old"] != truststate.ZoneNormal || out.ZoneStates["edge"] != truststate.ZoneQuarantined {
		t.Errorf("zones %v", out.ZoneStates)
	}
	doc.Incident.Zone = ""
	if v := trustView(doc, "cloud"); !v.IncidentMode || v.IncidentZone != "" {
		t.Errorf("incident everywhere: %+v", v)
	}
}
