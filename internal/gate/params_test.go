package gate_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/sdk"
)

// paymentBody is a JSON-RPC SendMessage whose message metadata is meta, written as is.
func paymentBody(meta string) []byte {
	return []byte(`{"jsonrpc":"2.0","id":"p1","method":"SendMessage","params":{"message":{"role":"ROLE_USER","messageId":"m-` +
		time.Now().Format("150405.000000000") + `","parts":[{"text":"release INV-7"}],"metadata":` + meta + `}}}`)
}

// PaymentParamAttacks are the business-parameter attacks of issue 13 item 2 on a
// payment of 60000 (above the two-approver threshold of 10000). Before, each read as
// amount 0 and the payment was released with no approval.
var PaymentParamAttacks = []struct{ Name, Meta, Param string }{
	{"amount as a string", `{"warden.amount":"60000","warden.currency":"EUR"}`, "warden.amount"},
	{"amount 1e300", `{"warden.amount":1e300,"warden.currency":"EUR"}`, "warden.amount"},
	{"amount 9007199254740993", `{"warden.amount":9007199254740993,"warden.currency":"EUR"}`, "warden.amount"},
	{"negative amount", `{"warden.amount":-60000,"warden.currency":"EUR"}`, "warden.amount"},
	{"amount missing", `{"warden.currency":"EUR"}`, "warden.amount"},
	{"unknown currency", `{"warden.amount":60000,"warden.currency":"XYZ"}`, "warden.currency"},
	{"status not declared", `{"warden.amount":60000,"warden.currency":"EUR","warden.resource_status":"waived"}`, "warden.resource_status"},
}

// TestBusinessParamsThroughGate: payment.release through a real gate with the a2a-go
// agent behind it. A small payment is released; 60000 EUR needs two approvals (refused
// here, the gate has no approvals service); every attack is refused invalid_request
// naming the parameter, audited, and never reaches the agent. The allowed call's
// decision event records the amount, currency and status decided on.
func TestBusinessParamsThroughGate(t *testing.T) {
	e := newEnv(t)
	ag := startAgent(t)
	in, _ := e.inbound(ag.url, nil)
	addr := startGate(t, in, "tcp")
	pay := e.svid("/agent/payment-release")
	c := e.caller(t, addr, pay)
	release := sdk.Intent{Audience: agentID("vendor-portal").String(), Action: "payment.release", Resource: "Invoice/INV-7"}
	send := func(meta string) (rpcAnswer, gate.Event) {
		b := paymentBody(meta)
		_, a := c.do(b, c.sign(release, b))
		return a, e.events.last()
	}

	a, ev := send(`{"warden.amount":500,"warden.currency":"eur","warden.resource_status":"Approved"}`)
	if a.Error != nil || !ev.Allow {
		t.Fatalf("a payment of 500: %+v", a.Error)
	}
	if ev.Amount == nil || *ev.Amount != 500 || ev.Currency != "EUR" || ev.ResourceStatus != "approved" {
		t.Errorf("decided on amount %v currency %q status %q", ev.Amount, ev.Currency, ev.ResourceStatus)
	}
	a, ev = send(`{"warden.amount":60000,"warden.currency":"EUR"}`)
	if a.Error == nil || ev.Allow || !slices.Contains(ev.PolicyIDs, "payment-release-needs-two-approvals") {
		t.Fatalf("a payment of 60000 without approvals: %+v %+v", a.Error, ev)
	}
	seen := len(ag.seen)
	for _, tc := range PaymentParamAttacks {
		t.Run(tc.Name, func(t *testing.T) {
			a, ev := send(tc.Meta)
			if a.Error == nil || a.Error.reason() != gate.ReasonInvalidRequest || !strings.Contains(a.Error.Message, tc.Param) {
				t.Fatalf("answer %+v", a.Error)
			}
			if ev.Allow || ev.Reason != gate.ReasonInvalidRequest || !strings.Contains(ev.Message, tc.Param) ||
				ev.Action != "payment.release" || ev.Amount != nil {
				t.Errorf("audit event %+v", ev)
			}
		})
	}
	if len(ag.seen) != seen {
		t.Errorf("the agent received %d refused payments", len(ag.seen)-seen)
	}
	// The decision event as the audit log stores it carries the same fields.
	_, ev = send(`{"warden.amount":42,"warden.currency":"CHF"}`)
	out := gate.ToAuditEvent(ev, "finance")
	b, _ := json.Marshal(out)
	if out.Amount == nil || *out.Amount != 42 || out.Currency != "CHF" || out.ResourceStatus != "open" {
		t.Errorf("audit decision event %s", b)
	}
}
