package policybench

import (
	"context"
	_ "embed"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/warden-a2a/warden/internal/policy"
)

//go:embed warden.rego
var wardenRego string

const bundleDir = "../../policies"

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// GateInput is what a gate holds for one call before it asks for a decision. Both
// engines build their own request from it inside the timed loop.
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
	Trust                                 policy.TrustView
}

func (g *GateInput) wardenRequest() policy.Request {
	return policy.Request{
		Agent: policy.Agent{SPIFFEID: g.SPIFFEID, Name: g.Name, Role: g.Role, Class: g.Class,
			Zone: g.Zone, TrustDomain: g.TD, Partner: g.Partner},
		Action: g.Action, Workflow: g.Workflow,
		Resource: policy.Resource{Type: g.ResType, ID: g.ResID, Status: g.ResStatus, Amount: g.ResAmount},
		Context: policy.CallContext{Purpose: g.Purpose, DataSensitivity: g.Sensitivity, Amount: g.Amount,
			Currency: g.Currency, Attestation: policy.Attestation{Tier: g.Tier, AgeSeconds: g.AgeS}, Approvers: g.Approvers},
		Trust: g.Trust,
	}
}

func (g *GateInput) opaInput(now time.Time) map[string]any {
	approvers := make([]any, len(g.Approvers))
	for i, a := range g.Approvers {
		approvers[i] = a
	}
	kills := make([]any, len(g.Trust.KillSwitches))
	for i, k := range g.Trust.KillSwitches {
		kills[i] = map[string]any{"scope": k.Scope, "value": k.Value}
	}
	responders := make([]any, len(g.Trust.Responders))
	for i, r := range g.Trust.Responders {
		responders[i] = r
	}
	zones := map[string]any{}
	for k, v := range g.Trust.ZoneStates {
		zones[k] = v
	}
	status := map[string]any{}
	for k, v := range g.Trust.AgentStatus {
		status[k] = v
	}
	return map[string]any{
		"now":      now.Unix(),
		"action":   g.Action,
		"workflow": g.Workflow,
		"principal": map[string]any{"spiffe_id": g.SPIFFEID, "name": g.Name, "role": g.Role, "class": g.Class,
			"zone": g.Zone, "trust_domain": g.TD, "partner": g.Partner},
		"resource": map[string]any{"type": g.ResType, "id": g.ResID, "status": g.ResStatus, "amount": g.ResAmount},
		"context": map[string]any{"purpose": g.Purpose, "data_sensitivity": g.Sensitivity, "amount": g.Amount,
			"currency": g.Currency, "attestation": map[string]any{"tier": g.Tier, "age_s": g.AgeS}, "approvers": approvers},
		"trust": map[string]any{"incident_mode": g.Trust.IncidentMode, "responders": responders,
			"zone_states": zones, "agent_status": status, "kill_switches": kills},
	}
}

const sc = "spiffe://supplychain.example/agent/"

func agent(name, role, class, zone string) GateInput {
	return GateInput{SPIFFEID: sc + name, Name: name, Role: role, Class: class, Zone: zone, TD: "supplychain.example",
		Purpose: "ops", Sensitivity: "internal", Currency: "EUR", Tier: "affirming", AgeS: 30}
}

// benchInputs is the benchmark mix: allowed and denied calls across the demo agents.
func benchInputs() []GateInput {
	var out []GateInput
	add := func(g GateInput, f func(*GateInput)) {
		f(&g)
		out = append(out, g)
	}
	proc := agent("procurement", "procurement", "transactional", "core")
	pay := agent("payment-release", "payments", "regulated", "finance")
	logi := agent("logistics", "shipping", "transactional", "logistics")
	plan := agent("demand-planner", "forecasting", "advisory", "core")
	comp := agent("compliance", "compliance", "regulated", "core")
	carrier := GateInput{SPIFFEID: "spiffe://partner.example/agent/carrier", Name: "carrier", Role: "carrier", Class: "transactional",
		Zone: "partner", TD: "partner.example", Partner: true, Purpose: "tracking", Sensitivity: "internal", Tier: "none"}
	add(proc, func(g *GateInput) {
		g.Action, g.Workflow, g.ResType, g.ResID, g.ResStatus, g.ResAmount, g.Amount = "purchase_order.create", "replenishment", "Order", "PO-1", "draft", 5000, 5000
	})
	add(pay, func(g *GateInput) {
		g.Action, g.ResType, g.ResID, g.ResStatus, g.ResAmount, g.Amount = "payment.release", "Invoice", "INV-1", "approved", 25000, 25000
		g.Approvers = []string{"alice", "bob"}
	})
	add(pay, func(g *GateInput) {
		g.Action, g.ResType, g.ResID, g.ResStatus, g.ResAmount, g.Amount = "payment.release", "Invoice", "INV-2", "approved", 25000, 25000
		g.Approvers, g.AgeS = []string{"alice"}, 900
	})
	add(logi, func(g *GateInput) {
		g.Action, g.ResType, g.ResID, g.ResStatus = "shipment.status", "Shipment", "SH-1", "in_transit"
	})
	add(logi, func(g *GateInput) {
		g.Action, g.ResType, g.ResID, g.ResStatus = "vendor_record.update", "VendorRecord", "V-2", "active"
	})
	add(plan, func(g *GateInput) {
		g.Action, g.ResType, g.ResID, g.ResStatus = "inventory_feed.read", "InventoryFeed", "feed-eu", "live"
	})
	add(comp, func(g *GateInput) {
		g.Action, g.ResType, g.ResID, g.ResStatus, g.ResAmount = "invoice.post", "Invoice", "INV-3", "approved", 50
	})
	add(carrier, func(g *GateInput) {
		g.Action, g.ResType, g.ResID, g.ResStatus = "shipment.reroute", "Shipment", "SH-1", "in_transit"
	})
	return out
}

// agreementInputs widens the mix with every kind of context, to check that the
// Rego policy really is equivalent before timing it.
func agreementInputs() []GateInput {
	out := benchInputs()
	base := benchInputs()
	for _, g := range base {
		for i := range 9 {
			v := g
			switch i {
			case 0:
				v.ResStatus = "closed"
				v.ResType, v.Action = "Order", "purchase_order.approve"
			case 1:
				v.Trust = policy.TrustView{ZoneStates: map[string]string{g.Zone: "quarantined"}}
			case 2:
				v.Trust = policy.TrustView{IncidentMode: true, Responders: []string{sc + "logistics"}}
			case 3:
				v.Tier, v.AgeS = "contraindicated", 1
			case 4:
				v.Trust = policy.TrustView{KillSwitches: []policy.KillSwitch{{Scope: "zone", Value: g.Zone}}}
			case 5:
				v.Trust = policy.TrustView{AgentStatus: map[string]string{g.SPIFFEID: "quarantined"}}
			case 6:
				v.Sensitivity = "restricted"
			case 7:
				v.ResType, v.ResID, v.Action = "VendorRecord", "V-ACME", "vendor_record.update"
			case 8:
				v.Trust = policy.TrustView{ZoneStates: map[string]string{g.Zone: "offline"}}
			}
			out = append(out, v)
		}
	}
	return out
}

func prepareOPA(tb testing.TB) rego.PreparedEvalQuery {
	pq, err := rego.New(rego.Query("data.warden.decision"), rego.Module("warden.rego", wardenRego)).
		PrepareForEval(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return pq
}

func opaDecide(tb testing.TB, pq rego.PreparedEvalQuery, in map[string]any) (bool, []string) {
	rs, err := pq.Eval(context.Background(), rego.EvalInput(in))
	if err != nil || len(rs) != 1 {
		tb.Fatalf("opa: %v %v", rs, err)
	}
	m := rs[0].Expressions[0].Value.(map[string]any)
	var ids []string
	for _, x := range m["policies"].([]any) {
		ids = append(ids, x.(string))
	}
	return m["allow"].(bool), ids
}

func loadWarden(tb testing.TB) *policy.Engine {
	e, err := policy.Load(bundleDir, policy.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// TestRegoIsEquivalent: on every input of the mix, OPA and Warden agree on the
// decision and on the determining rules (rate limits aside: OPA has none).
func TestRegoIsEquivalent(t *testing.T) {
	e := loadWarden(t)
	pq := prepareOPA(t)
	allows := 0
	for i, g := range agreementInputs() {
		d := e.WhatIf(g.wardenRequest(), t0)
		ok, ids := opaDecide(t, pq, g.opaInput(t0))
		wids := slices.Clone(d.PolicyIDs)
		slices.Sort(wids)
		if d.Allow != ok || !slices.Equal(wids, ids) {
			t.Errorf("input %d (%s %s): warden %v %v (%s), opa %v %v", i, g.Name, g.Action, d.Allow, wids, d.Reason, ok, ids)
		}
		if ok {
			allows++
		}
	}
	if allows == 0 {
		t.Fatal("no input allowed: the comparison is vacuous")
	}
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkWardenDecide: one Warden decision, building the request from the gate input.
func BenchmarkWardenDecide(b *testing.B) {
	e := loadWarden(b)
	ins := benchInputs()
	samples := make([]time.Duration, 0, 1<<16)
	for i := 0; b.Loop(); i++ {
		s := time.Now()
		_ = e.Decide(ins[i%len(ins)].wardenRequest(), t0.Add(time.Duration(i)*time.Minute))
		samples = append(samples, time.Since(s))
	}
	b.ReportMetric(float64(median(samples).Nanoseconds()), "median-ns/op")
}

// BenchmarkOPADecide: one OPA evaluation of the equivalent Rego, building the input from the gate input.
func BenchmarkOPADecide(b *testing.B) {
	pq := prepareOPA(b)
	ins := benchInputs()
	ctx := context.Background()
	samples := make([]time.Duration, 0, 1<<16)
	for i := 0; b.Loop(); i++ {
		s := time.Now()
		rs, err := pq.Eval(ctx, rego.EvalInput(ins[i%len(ins)].opaInput(t0.Add(time.Duration(i)*time.Minute))))
		samples = append(samples, time.Since(s))
		if err != nil || len(rs) != 1 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(median(samples).Nanoseconds()), "median-ns/op")
}

// BenchmarkCompare runs both engines interleaved over the same inputs in the same
// run and reports both medians and the ratio OPA/Warden (want >= 10).
func BenchmarkCompare(b *testing.B) {
	e := loadWarden(b)
	pq := prepareOPA(b)
	ins := benchInputs()
	ctx := context.Background()
	var ws, os []time.Duration
	for i := 0; b.Loop(); i++ {
		g := &ins[i%len(ins)]
		now := t0.Add(time.Duration(i) * time.Minute)
		s := time.Now()
		_ = e.Decide(g.wardenRequest(), now)
		ws = append(ws, time.Since(s))
		s = time.Now()
		if _, err := pq.Eval(ctx, rego.EvalInput(g.opaInput(now))); err != nil {
			b.Fatal(err)
		}
		os = append(os, time.Since(s))
	}
	w, o := median(ws), median(os)
	b.ReportMetric(float64(w.Nanoseconds()), "warden-median-ns")
	b.ReportMetric(float64(o.Nanoseconds()), "opa-median-ns")
	b.ReportMetric(float64(o)/float64(w), "opa/warden")
}
