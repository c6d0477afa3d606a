package policy_test

import (
	"fmt"
	"time"

	"github.com/warden-a2a/warden/internal/policy"
)

// A payment above the threshold with one approval and stale evidence: both guards
// determine the denial, each contributes an obligation and a clause of the sentence.
func ExampleEngine_Decide() {
	e, err := policy.Load("../../policies", policy.Options{})
	if err != nil {
		panic(err)
	}
	d := e.Decide(policy.Request{
		Agent: policy.Agent{
			SPIFFEID: "spiffe://supplychain.example/agent/payment-release", Name: "payment-release",
			Role: "payments", Class: "regulated", Zone: "finance", TrustDomain: "supplychain.example",
		},
		Action:   "payment.release",
		Resource: policy.Resource{Type: "Invoice", ID: "INV-7", Status: "approved", Amount: 25000},
		Context: policy.CallContext{
			Amount: 25000, Currency: "EUR",
			Attestation: policy.Attestation{Tier: "affirming", AgeSeconds: 900},
			Approvers:   []string{"alice"},
		},
	}, time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	fmt.Println(d.Allow, d.Code)
	fmt.Println(d.PolicyIDs)
	fmt.Println(d.Obligations)
	fmt.Println(d.Reason)
	// Output:
	// false approval_required
	// [payment-release-needs-two-approvals regulated-needs-attestation]
	// [approval reattest]
	// Denied by payment-release-needs-two-approvals, regulated-needs-attestation: a payment above 10000 needs two distinct approvals; a regulated action needs a fresh affirming attestation (at most 300 s old).
}

// Blast radius without a concrete resource: what could the logistics agent ever do?
func ExampleEngine_MayPerform() {
	e, err := policy.Load("../../policies", policy.Options{})
	if err != nil {
		panic(err)
	}
	logistics := policy.Agent{
		SPIFFEID: "spiffe://supplychain.example/agent/logistics", Name: "logistics",
		Role: "shipping", Class: "transactional", Zone: "logistics", TrustDomain: "supplychain.example",
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, a := range e.Actions() {
		for _, rt := range a.ResourceTypes {
			if d := e.MayPerform(logistics, a.Name, rt, now); d.Allow {
				fmt.Println(a.Name, rt, d.PolicyIDs)
			}
		}
	}
	// Output:
	// customs_form.read CustomsForm [shipping-permits]
	// purchase_order.read Order [shipping-permits]
	// shipment.reroute Shipment [shipping-permits]
	// shipment.route Shipment [shipping-permits]
	// shipment.status Shipment [shipping-permits]
	// vendor_record.read VendorRecord [shipping-permits]
	// vendor_record.update VendorRecord [exception:EXC-2026-041]
}
