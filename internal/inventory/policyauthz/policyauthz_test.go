package policyauthz_test

import (
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/inventory"
	"github.com/warden-a2a/warden/internal/inventory/policyauthz"
	"github.com/warden-a2a/warden/internal/policy"
)

// TestReportAgreesWithEngine: on the shipped catalog and the default policies, every
// interaction the report calls denied is denied by the engine, every other declared one is
// allowed, and every undeclared path the report lists is allowed by the engine and absent
// from the catalog. The engine is asked directly, not through the adapter.
func TestReportAgreesWithEngine(t *testing.T) {
	c, err := inventory.Load("../../../examples/supplychain/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policy.Load("../../../policies", policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r := inventory.Analyze(c, inventory.Options{Authorizer: policyauthz.New(eng, c.TrustDomain, func() time.Time { return now })})
	agents := map[string]inventory.Agent{}
	for _, a := range c.Agents {
		agents[a.Name] = a
	}
	allowed := func(name, action, rtype string) bool {
		a := agents[name]
		req := policy.RepresentativeRequest(policy.Agent{SPIFFEID: a.Identity, Name: a.Name, Role: a.Role, Class: a.Class,
			Zone: a.Zone, TrustDomain: a.TrustDomain, Partner: a.TrustDomain != c.TrustDomain}, action, rtype)
		return eng.WhatIf(req, now).Allow
	}
	denied := map[string]bool{}
	for _, d := range r.DeclaredDenied {
		denied[d.Interaction] = true
	}
	declared := map[[2]string]bool{}
	for _, in := range c.Interactions {
		declared[[2]string{in.From, in.Action}] = true
		key := in.ID + " (" + in.From + " -> " + in.To + ": " + in.Action + ")"
		if got := allowed(in.From, in.Action, in.ResourceType()); got == denied[key] {
			t.Errorf("%s: engine allow=%v, report denied=%v", key, got, denied[key])
		}
	}
	if len(r.Undeclared) == 0 {
		t.Fatal("the shipped catalog should show undeclared paths against the default policies")
	}
	for _, u := range r.Undeclared {
		if declared[[2]string{u.Agent, u.Action}] {
			t.Errorf("undeclared path %s %s is declared", u.Agent, u.Action)
		}
		if !allowed(u.Agent, u.Action, u.Resource) {
			t.Errorf("undeclared path %s %s: the engine denies it", u.Agent, u.Action)
		}
	}
}

func TestUnknownActionDenied(t *testing.T) {
	eng, err := policy.Load("../../../policies", policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	az := policyauthz.New(eng, "supplychain.example", time.Now)
	d, err := az.Authorize(inventory.Request{Agent: inventory.Agent{Name: "x", Role: "payments", Class: "regulated"}, Action: "money.print", Attested: true, Approvals: 2})
	if err != nil || d.Allow {
		t.Errorf("unknown action: %+v, %v", d, err)
	}
}
