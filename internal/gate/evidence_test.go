package gate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/warden-a2a/warden/internal/audit/auditdoc"
	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/inventory"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
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

// TestDocumentedDecisionFieldsAreWritten: every kind docs/audit-events.md says a gate
// writes, and every field it documents for decisions (and for all events), is in the
// audit event of some real decision of an inbound gate: an allow with workflow, purpose
// and a caller's traceparent, and a denial with an obligation.
func TestDocumentedDecisionFieldsAreWritten(t *testing.T) {
	doc, err := auditdoc.Load("../../docs/audit-events.md")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	cat, err := inventory.Parse("catalog.yaml", []byte(evidenceCatalog))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := e.inbound(startAgent(t).url, func(c *gate.Config) { c.Catalog = inventory.NewIndex(cat) })
	cl := e.caller(t, startGate(t, in, "tcp"), e.svid("/agent/procurement"))
	call := func() {
		body := rpcBody("purchase_order.create", "Order/PO-1")
		in := poIntent()
		in.Workflow, in.Purpose = "wf-fields", "restock"
		req, _ := http.NewRequest(http.MethodPost, cl.url+"/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(sdk.IntentHeader, cl.sign(in, body))
		req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		res, err := cl.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	call() // allowed
	e.publish(func(d *truststate.Document) { delete(d.Attestations, agentID("procurement").String()) })
	call() // denied: attestation_required, obligation reattest

	written := map[string]bool{}
	kinds := map[string]bool{}
	evs := e.events.all()
	if len(evs) != 2 || !evs[0].Allow || evs[1].Allow || len(evs[1].Obligations) == 0 {
		t.Fatalf("%d decisions; want an allow and a denial with an obligation", len(evs))
	}
	for _, ev := range evs {
		b, err := gate.ToAuditEvent(ev, "cloud").Canonical()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for k := range m {
			written[k] = true
		}
		kinds[m["kind"].(string)] = true
	}
	for _, k := range doc.KindsWrittenBy("gate") {
		if !kinds[k] {
			t.Errorf("docs/audit-events.md: kind %q is written by a gate, but no gate decision wrote it", k)
		}
	}
	for _, f := range doc.FieldsIn("decision", "all") {
		if !written[f] {
			t.Errorf("docs/audit-events.md: field %q is documented for decisions, but no decision event carries it", f)
		}
	}
}
