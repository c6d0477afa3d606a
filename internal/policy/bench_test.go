package policy_test

import (
	"slices"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/policy"
)

// GateInput is what a gate holds for one call before it asks for a decision:
// peer identity from the SVID and registry, the intent claims, the resource
// state and the trust-state view. Benchmarks build the policy.Request from it
// inside the timed loop, as the gate does.
type GateInput struct {
	SPIFFEID, Name, Role, Class, Zone, TD string
	Partner                               bool
	Action, Workflow                      string
	ResType, ResID, ResStatus             string
	ResAmount                             int64
	Purpose, Sensitivity, Currency        string
	Amount                                int64
	Tier                                  string
	AgeS                                  int64
	Approvers                             []string
}

func (g *GateInput) Request(tv *policy.TrustView) policy.Request {
	return policy.Request{
		Agent: policy.Agent{SPIFFEID: g.SPIFFEID, Name: g.Name, Role: g.Role, Class: g.Class,
			Zone: g.Zone, TrustDomain: g.TD, Partner: g.Partner},
		Action: g.Action, Workflow: g.Workflow,
		Resource: policy.Resource{Type: g.ResType, ID: g.ResID, Status: g.ResStatus, Amount: g.ResAmount},
		Context: policy.CallContext{Purpose: g.Purpose, DataSensitivity: g.Sensitivity, Amount: g.Amount,
			Currency: g.Currency, Attestation: policy.Attestation{Tier: g.Tier, AgeSeconds: g.AgeS}, Approvers: g.Approvers},
		Trust: *tv,
	}
}

// benchInputs is a mix of allowed and denied calls across the demo agents.
func benchInputs() []GateInput {
	sc := "spiffe://supplychain.example/agent/"
	return []GateInput{
		{SPIFFEID: sc + "procurement", Name: "procurement", Role: "procurement", Class: "transactional", Zone: "core", TD: "supplychain.example",
			Action: "purchase_order.create", Workflow: "replenishment", ResType: "Order", ResID: "PO-1", ResStatus: "draft", ResAmount: 5000,
			Purpose: "replenishment", Sensitivity: "internal", Currency: "EUR", Amount: 5000, Tier: "affirming", AgeS: 30},
		{SPIFFEID: sc + "payment-release", Name: "payment-release", Role: "payments", Class: "regulated", Zone: "finance", TD: "supplychain.example",
			Action: "payment.release", Workflow: "pay-invoice", ResType: "Invoice", ResID: "INV-1", ResStatus: "approved", ResAmount: 25000,
			Purpose: "settlement", Sensitivity: "confidential", Currency: "EUR", Amount: 25000, Tier: "affirming", AgeS: 45, Approvers: []string{"alice", "bob"}},
		{SPIFFEID: sc + "payment-release", Name: "payment-release", Role: "payments", Class: "regulated", Zone: "finance", TD: "supplychain.example",
			Action: "payment.release", Workflow: "pay-invoice", ResType: "Invoice", ResID: "INV-2", ResStatus: "approved", ResAmount: 25000,
			Purpose: "settlement", Sensitivity: "confidential", Currency: "EUR", Amount: 25000, Tier: "affirming", AgeS: 900, Approvers: []string{"alice"}},
		{SPIFFEID: sc + "logistics", Name: "logistics", Role: "shipping", Class: "transactional", Zone: "logistics", TD: "supplychain.example",
			Action: "shipment.status", Workflow: "track", ResType: "Shipment", ResID: "SH-1", ResStatus: "in_transit",
			Purpose: "tracking", Sensitivity: "internal", Tier: "affirming", AgeS: 100},
		{SPIFFEID: sc + "logistics", Name: "logistics", Role: "shipping", Class: "transactional", Zone: "logistics", TD: "supplychain.example",
			Action: "vendor_record.update", Workflow: "vendor", ResType: "VendorRecord", ResID: "V-2", ResStatus: "active",
			Purpose: "fix", Sensitivity: "internal", Tier: "affirming", AgeS: 100},
		{SPIFFEID: sc + "demand-planner", Name: "demand-planner", Role: "forecasting", Class: "advisory", Zone: "core", TD: "supplychain.example",
			Action: "inventory_feed.read", Workflow: "forecast", ResType: "InventoryFeed", ResID: "feed-eu", ResStatus: "live",
			Purpose: "forecast", Sensitivity: "internal", Tier: "affirming", AgeS: 10},
		{SPIFFEID: sc + "compliance", Name: "compliance", Role: "compliance", Class: "regulated", Zone: "core", TD: "supplychain.example",
			Action: "invoice.post", Workflow: "audit", ResType: "Invoice", ResID: "INV-3", ResStatus: "approved", ResAmount: 50,
			Purpose: "audit", Sensitivity: "confidential", Tier: "affirming", AgeS: 10},
		{SPIFFEID: "spiffe://partner.example/agent/carrier", Name: "carrier", Role: "carrier", Class: "transactional", Zone: "partner", TD: "partner.example", Partner: true,
			Action: "shipment.reroute", Workflow: "track", ResType: "Shipment", ResID: "SH-1", ResStatus: "in_transit",
			Purpose: "tracking", Sensitivity: "internal", Tier: "none"},
	}
}

// BenchmarkDecide measures one decision on the default bundle, including building
// the request from the gate's inputs; it reports the median as median-ns/op.
// Rate limits are removed from the picture by deciding at a fresh instant each
// time (buckets refill), so every call does the full work.
func BenchmarkDecide(b *testing.B) {
	e, err := policy.Load(defaultDir, policy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ins := benchInputs()
	tv := policy.TrustView{ZoneStates: map[string]string{"dmz": "healthy"}}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	samples := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		in := &ins[i%len(ins)]
		d := e.Decide(in.Request(&tv), t0.Add(time.Duration(i)*time.Minute))
		samples = append(samples, time.Since(start))
		_ = d
	}
	b.StopTimer()
	slices.Sort(samples)
	if len(samples) > 0 {
		b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds()), "median-ns/op")
	}
}

// BenchmarkDecideThroughput is BenchmarkDecide without per-call timing (mean ns/op).
func BenchmarkDecideThroughput(b *testing.B) {
	e, err := policy.Load(defaultDir, policy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ins := benchInputs()
	tv := policy.TrustView{ZoneStates: map[string]string{"dmz": "healthy"}}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in := &ins[i%len(ins)]
		_ = e.Decide(in.Request(&tv), t0.Add(time.Duration(i)*time.Minute))
	}
}
