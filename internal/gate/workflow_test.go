package gate_test

import (
	"sync"
	"testing"

	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/inventory"
	"github.com/warden-a2a/warden/internal/workflow"
	"github.com/warden-a2a/warden/sdk"
)

const workflowCatalog = `
trust_domain: supplychain.example
agents:
  - {name: procurement, owner: o, environment: cloud, zone: cloud, class: transactional, role: procurement}
  - {name: vendor-portal, owner: o, environment: cloud, zone: cloud, class: transactional, role: vendor}
  - {name: payment-release, owner: o, environment: cloud, zone: finance, class: regulated, role: payments}
interactions:
  - {id: create, workflow: procure-to-pay, from: procurement, to: vendor-portal, action: purchase_order.create, classification: transactional}
  - {id: approve, workflow: procure-to-pay, from: procurement, to: vendor-portal, action: purchase_order.approve, classification: transactional}
  - {id: forecast, workflow: replenishment, from: procurement, to: vendor-portal, action: forecast.publish, classification: advisory}
  - {id: pay, workflow: treasury, from: payment-release, to: vendor-portal, action: payment.release, classification: regulated}
workflows:
  - name: procure-to-pay
    mode: enforce
    steps:
      - action: purchase_order.create
      - action: purchase_order.approve
        after: [purchase_order.create]
  - name: replenishment
    steps:
      - action: inventory_feed.read
      - action: forecast.publish
        after: [inventory_feed.read]
        repeatable: true
  - name: treasury
    mode: observe
    steps:
      - action: invoice.post
      - action: payment.release
        after: [invoice.post]
`

func workflowGate(t *testing.T, e *env, upstream string, store workflow.Store) string {
	t.Helper()
	cat, err := inventory.Parse("catalog.yaml", []byte(workflowCatalog))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range inventory.Check(cat, nil) {
		if (f.Code == inventory.CodeWorkflowStep || f.Code == inventory.CodeBadValue) && f.Severity == inventory.SevError {
			t.Fatalf("catalog: %v", f)
		}
	}
	g, _ := e.inbound(upstream, func(c *gate.Config) { c.Workflows, c.WorkflowStore = cat, store })
	return startGate(t, g, "tcp")
}

func stepIntent(action, res, wf string) sdk.Intent {
	return sdk.Intent{Audience: agentID("vendor-portal").String(), Action: action, Resource: res, Workflow: wf}
}

// TestWorkflowSteps: in enforce mode a step out of order, without a workflow id, or a
// second execution for the same resource (fresh jti, even in another workflow id) is
// refused and never reaches the agent; in observe mode the call is forwarded and audited
// would_deny; a regulated action is enforced even in an observe workflow.
func TestWorkflowSteps(t *testing.T) {
	e := newEnv(t)
	ag := startAgent(t)
	c := e.caller(t, workflowGate(t, e, ag.url, workflow.NewMemoryStore()), e.svid("/agent/procurement"))
	call := func(c *caller, in sdk.Intent) string {
		body := rpcBody(in.Action, in.Resource)
		if _, a := c.do(body, c.sign(in, body)); a.Error != nil {
			return a.Error.reason()
		}
		return ""
	}
	seen := func() int { ag.mu.Lock(); defer ag.mu.Unlock(); return len(ag.seen) }
	for _, s := range []struct {
		name string
		in   sdk.Intent
		want string
	}{
		{"approve before create", stepIntent("purchase_order.approve", "Order/PO-1", "wf-1"), gate.ReasonOutOfOrder},
		{"create", stepIntent("purchase_order.create", "Order/PO-1", "wf-1"), ""},
		{"approve after create", stepIntent("purchase_order.approve", "Order/PO-1", "wf-1"), ""},
		{"create again, fresh jti", stepIntent("purchase_order.create", "Order/PO-1", "wf-1"), gate.ReasonDuplicateStep},
		{"create again in another workflow id", stepIntent("purchase_order.create", "Order/PO-1", "wf-2"), gate.ReasonDuplicateStep},
		{"approve in a workflow id with no create", stepIntent("purchase_order.approve", "Order/PO-1", "wf-2"), gate.ReasonOutOfOrder},
		{"a step without a workflow id", stepIntent("purchase_order.create", "Order/PO-2", ""), gate.ReasonOutOfOrder},
		{"another resource", stepIntent("purchase_order.create", "Order/PO-3", "wf-3"), ""},
		{"a read is no step", stepIntent("purchase_order.read", "Order/PO-1", "wf-1"), ""},
	} {
		before := seen()
		if got := call(c, s.in); got != s.want {
			t.Errorf("%s: %q, want %q", s.name, got, s.want)
			continue
		}
		if reached := seen() > before; reached != (s.want == "") {
			t.Errorf("%s: reached the agent %v", s.name, reached)
		}
		if ev := e.events.last(); s.want != "" && (ev.Allow || ev.Reason != s.want) {
			t.Errorf("%s: event %+v", s.name, ev)
		}
	}

	// Observe: forwarded, audited would_deny.
	before := seen()
	if got := call(c, stepIntent("forecast.publish", "Forecast/F-1", "wf-9")); got != "" || seen() == before {
		t.Fatalf("observe-mode step out of order: %q (forwarded %v)", got, seen() > before)
	}
	ev := e.events.last()
	if !ev.Allow || ev.WouldDeny != gate.ReasonOutOfOrder || ev.ActionClass != "advisory" {
		t.Errorf("observe event %+v", ev)
	}
	if a := gate.ToAuditEvent(ev, "cloud"); a.Reason != gate.ReasonWouldDeny || a.Detail["would_deny"] != gate.ReasonOutOfOrder || a.Decision != "allow" ||
		a.Detail["action_class"] != "advisory" {
		t.Errorf("audit event %+v", a)
	}

	// A regulated action in an observe workflow is enforced.
	payer := e.caller(t, c.url[len("https://"):], e.svid("/agent/payment-release"))
	if got := call(payer, stepIntent("payment.release", "Invoice/INV-7", "pay-7")); got != gate.ReasonOutOfOrder {
		t.Errorf("regulated step out of order in observe mode: %q", got)
	}
}

// TestWorkflowReplicasShareState: two gates of one agent share the workflow state; a
// call whose upstream failed releases its reservation so the retry (through the other
// replica) runs; of concurrent identical steps exactly one reaches the agent.
func TestWorkflowReplicasShareState(t *testing.T) {
	e := newEnv(t)
	ag := startAgent(t)
	store := workflow.NewMemoryStore()
	dead := workflowGate(t, e, "http://127.0.0.1:1", store) // its upstream does not answer
	live := workflowGate(t, e, ag.url, store)
	proc := e.svid("/agent/procurement")
	in := stepIntent("purchase_order.create", "Order/PO-9", "wf-9")
	body := rpcBody(in.Action, in.Resource)
	c := e.caller(t, dead, proc)
	if _, a := c.do(body, c.sign(in, body)); a.Error == nil || a.Error.reason() != gate.ReasonUpstream {
		t.Fatalf("dead upstream: %+v", a.Error)
	}
	c = e.caller(t, live, proc)
	if _, a := c.do(body, c.sign(in, body)); a.Error != nil {
		t.Fatalf("retry after a failed upstream: %+v", a.Error)
	}

	const n = 12
	live2 := workflowGate(t, e, ag.url, store)
	in = stepIntent("purchase_order.create", "Order/PO-C", "wf-c")
	body = rpcBody(in.Action, in.Resource)
	var wg sync.WaitGroup
	reasons := make(chan string, n)
	for i := range n {
		addr := live
		if i%2 == 0 {
			addr = live2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.caller(t, addr, proc)
			_, a := c.do(body, c.sign(in, body))
			if a.Error != nil {
				reasons <- a.Error.reason()
				return
			}
			reasons <- ""
		}()
	}
	wg.Wait()
	close(reasons)
	ok := 0
	for r := range reasons {
		switch r {
		case "":
			ok++
		case gate.ReasonDuplicateStep:
		default:
			t.Errorf("concurrent step refused with %q", r)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent identical steps were forwarded, want exactly 1", ok, n)
	}
}
