package server_test

import (
	"context"
	"testing"

	"github.com/warden-a2a/warden/internal/workflow"
	"github.com/warden-a2a/warden/internal/workflow/workflowtest"
	"github.com/warden-a2a/warden/sdk"
)

// TestWorkflowStoreThroughAPI: the control plane's workflow state, used through its API
// by two gate identities, passes the store contract.
func TestWorkflowStoreThroughAPI(t *testing.T) {
	f := start(t, options{})
	srcs := map[string]*sdk.Source{}
	for _, callee := range workflowtest.Callees {
		name := callee[len("spiffe://supplychain.example/agent/"):]
		_, srcs[callee] = f.enroll(t, name)
	}
	workflowtest.Run(t, func(_ *testing.T, callee string) workflow.Store {
		return &workflow.RemoteStore{URL: f.url, Client: srcs[callee].HTTPClient()}
	})
}

// TestWorkflowStepsRecordedAsTheCaller: a workload cannot record a step in another gate's
// name, nor release another gate's reservation: the callee is its own identity.
func TestWorkflowStepsRecordedAsTheCaller(t *testing.T) {
	f := start(t, options{})
	_, erp := f.enroll(t, "legacy-erp")
	_, rogue := f.enroll(t, "rogue")
	ctx := context.Background()
	erpStore := &workflow.RemoteStore{URL: f.url, Client: erp.HTTPClient()}
	rogueStore := &workflow.RemoteStore{URL: f.url, Client: rogue.HTTPClient()}
	paid := workflow.Step{Workflow: "procure-to-pay", ID: "pay-inv-7", Action: "payment.release", Resource: "Invoice/INV-7",
		Callee: workflowtest.Callees[1], Enforce: true, Token: "dec_0001"}
	if v, err := erpStore.Begin(ctx, paid); v != "" || err != nil {
		t.Fatal(v, err)
	}
	// The rogue tries to release the ERP's reservation with its token and callee.
	if err := rogueStore.Finish(ctx, paid, false); err != nil {
		t.Fatal(err)
	}
	again := paid
	again.Token = "dec_0002"
	if v, err := erpStore.Begin(ctx, again); v != workflow.Duplicate || err != nil {
		t.Errorf("after the rogue's release: %q %v, want duplicate_step", v, err)
	}
	// The rogue records invoice.submit "as payment-release": it lands under its own name,
	// which does not satisfy a predecessor the catalog names payment-release for.
	forged := workflow.Step{Workflow: "procure-to-pay", ID: "pay-inv-8", Action: "invoice.submit", Resource: "Invoice/INV-8",
		Callee: workflowtest.Callees[0], Enforce: true, Token: "dec_0003"}
	if v, err := rogueStore.Begin(ctx, forged); v != "" || err != nil {
		t.Fatal(v, err)
	}
	next := workflow.Step{Workflow: "procure-to-pay", ID: "pay-inv-8", Action: "payment.release", Resource: "Invoice/INV-8",
		Callee: workflowtest.Callees[1], Enforce: true, Token: "dec_0004",
		After: []workflow.Pred{{Action: "invoice.submit", Callees: []string{workflowtest.Callees[0]}}}}
	if v, err := erpStore.Begin(ctx, next); v != workflow.OutOfOrder || err != nil {
		t.Errorf("payment after a forged predecessor: %q %v, want workflow_out_of_order", v, err)
	}
}
