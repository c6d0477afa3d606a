package gate_test

import (
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/gate"
)

func TestToAuditEvent(t *testing.T) {
	ev := gate.Event{DecisionID: "dec_1", Time: time.Now(), Gate: "spiffe://supplychain.example/agent/vendor-portal",
		Mode: gate.ModeInbound, Peer: "spiffe://supplychain.example/agent/procurement", Action: "purchase_order.create",
		Allow: true, Reason: "policy_allow", PolicyIDs: []string{"procurement-permits"}, Undeclared: true, TrustVer: 7}
	a := gate.ToAuditEvent(ev, "cloud")
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if a.Kind != audit.KindDecision || a.Decision != audit.DecisionAllow || a.Caller != ev.Peer || a.Callee != ev.Gate ||
		a.GateID != ev.Gate || a.Detail["undeclared_path"] != "true" || a.Detail["trust_state_version"] != "7" || a.Zone != "cloud" {
		t.Errorf("mapped %+v", a)
	}
	ev.Mode, ev.Allow = gate.ModeOutbound, false
	a = gate.ToAuditEvent(ev, "cloud")
	if a.Caller != ev.Gate || a.Callee != ev.Peer || a.Decision != audit.DecisionDeny {
		t.Errorf("outbound mapped %+v", a)
	}
}
