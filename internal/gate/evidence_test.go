package gate_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/inventory"
)

const evidenceCatalog = `
trust_domain: supplychain.example
agents:
  - {name: procurement, owner: p, environment: cloud, zone: cloud, class: transactional, role: procurement}
  - {name: vendor-portal, owner: v, environment: cloud, zone: cloud, class: transactional, role: vendor}
interactions:
  - {from: procurement, to: vendor-portal, action: purchase_order.create, data: [purchase_order, pricing], classification: transactional}
`

// TestDecisionCarriesEvidence: an inbound decision records what a third party needs to
// re-verify it later: the intent as verified, the caller's chain it is bound to, the
// data objects the catalog declares for the step, the caller's attestation result id and
// the policy revision; a refusal before the policy ran still names the revision in force.
func TestDecisionCarriesEvidence(t *testing.T) {
	e := newEnv(t)
	cat, err := inventory.Parse("catalog.yaml", []byte(evidenceCatalog))
	if err != nil {
		t.Fatal(err)
	}
	ag := startAgent(t)
	in, _ := e.inbound(ag.url, func(c *gate.Config) { c.Catalog = inventory.NewIndex(cat) })
	caller := e.svid("/agent/procurement")
	out := e.outbound("https://"+startGate(t, in, "tcp"), &rotSVID{s: caller})
	client := a2aClient(t, startGate(t, out, "unix"), a2a.TransportProtocolJSONRPC, "/")
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("create PO-1"))
	msg.Metadata = map[string]any{"warden.action": "purchase_order.create", "warden.resource": "Order/PO-1", "warden.amount": 1200, "warden.currency": "EUR"}
	if _, err := client.SendMessage(context.Background(), &a2a.SendMessageRequest{Message: msg}); err != nil {
		t.Fatal(err)
	}
	var ev gate.Event
	for _, x := range e.events.all() {
		if x.Mode == gate.ModeInbound {
			ev = x
		}
	}
	if !ev.Allow {
		t.Fatalf("inbound decision %+v", ev)
	}
	if len(ev.CallerChain) == 0 || !bytes.Equal(ev.CallerChain[0], caller.Certificates[0].Raw) {
		t.Fatal("the caller's leaf is not recorded")
	}
	if c, err := intent.VerifyRecorded(ev.Intent, caller.Certificates[0], ev.Time); err != nil || c.ID != ev.IntentID {
		t.Fatalf("recorded intent: %v", err)
	}
	if !slices.Equal(ev.DataObjects, []string{"purchase_order", "pricing"}) || ev.AttestationResultID != "test-procurement" || ev.Revision == "" {
		t.Errorf("data objects %v, attestation result %q, policy revision %q", ev.DataObjects, ev.AttestationResultID, ev.Revision)
	}
	a := gate.ToAuditEvent(ev, "cloud")
	b, err := a.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	a2 := a
	a2.Intent, a2.CallerChain = "", nil
	b2, _ := a2.Canonical()
	t.Logf("decision event: %d bytes, %d without intent and chain", len(b), len(b2))
	if a.Intent != ev.Intent || len(a.CallerChain) != len(ev.CallerChain) || !slices.Equal(a.DataObjects, ev.DataObjects) ||
		a.Attestation == nil || a.Attestation.ResultID != "test-procurement" || a.PolicyRevision != ev.Revision {
		t.Errorf("audit event %+v", a)
	}

	// A call without an intent is refused before the policy runs: no intent is
	// recorded, the revision in force is.
	inAddr := startGate(t, in, "tcp")
	if _, ans := e.caller(t, inAddr, caller).do(rpcBody("purchase_order.create", "Order/PO-1"), ""); ans.Error == nil {
		t.Fatal("a call without an intent passed")
	}
	ref := e.events.last()
	if ref.Allow || ref.Reason == "" || ref.Intent != "" || ref.Revision != ev.Revision {
		t.Errorf("refusal recorded %+v: want no intent and policy revision %q", ref, ev.Revision)
	}
}
