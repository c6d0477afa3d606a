package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/policy"
)

const defaultDir = "../../policies"

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func load(t testing.TB, dir string) *policy.Engine {
	t.Helper()
	e, err := policy.Load(dir, policy.Options{})
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	return e
}

// copyBundle copies the default bundle into a temp dir and applies edits
// (file name → new content, or appended content when the name starts with "+").
func copyBundle(t *testing.T, edits map[string]string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(defaultDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(defaultDir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range edits {
		p := filepath.Join(dst, strings.TrimPrefix(name, "+"))
		if strings.HasPrefix(name, "+") {
			old, _ := os.ReadFile(p)
			content = string(old) + content
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestDefaultBundleCasesPassAndCoverEveryPolicy(t *testing.T) {
	e := load(t, defaultDir)
	var out strings.Builder
	rep, err := policy.RunTests(e, os.DirFS(defaultDir), &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 {
		t.Errorf("default cases failed:\n%s", out.String())
	}
	if rep.Passed < 40 {
		t.Errorf("default bundle ships %d cases, want at least 40", rep.Passed)
	}
	if len(rep.Unexercised) > 0 {
		t.Errorf("policies that determine no case: %v", rep.Unexercised)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, " passed, 0 failed") {
		t.Errorf("last line %q, want 'N passed, 0 failed'", last)
	}
}

func TestTypeErrorIsRefusedWithFileAndLine(t *testing.T) {
	tests := []struct {
		name, file, policy, wantInMsg string
	}{
		{"string-compared-to-long", "typo.cedar", `@id("bad-compare")
@reason("x")
forbid (principal is Agent, action == Action::"payment.release", resource)
when { context.amount == "many" };`, "typo.cedar:1: policy \"bad-compare\""},
		{"unknown-attribute", "typo.cedar", "// comment line\n\n" + `@id("bad-attr")
@reason("x")
permit (principal is Agent, action == Action::"invoice.read", resource)
when { principal.rolee == "payments" };`, "typo.cedar:3: policy \"bad-attr\""},
		{"unknown-action", "typo.cedar", `@id("bad-action")
@reason("x")
permit (principal is Agent, action == Action::"invoice.burn", resource);`, "typo.cedar:1:"},
		{"missing-id", "typo.cedar", `@reason("x")
permit (principal is Agent, action == Action::"invoice.read", resource);`, "has no @id"},
		{"duplicate-id", "typo.cedar", `@id("payments-permits")
@reason("x")
permit (principal is Agent, action == Action::"invoice.read", resource);`, "duplicate policy id"},
		{"syntax-error", "typo.cedar", "permit (principal, action, resource) when { 1 + };", "typo.cedar:1:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyBundle(t, map[string]string{tc.file: tc.policy})
			probs, err := policy.Check(dir)
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			for _, p := range probs {
				all = append(all, p.String())
			}
			if !slices.ContainsFunc(all, func(s string) bool { return strings.Contains(s, tc.wantInMsg) }) {
				t.Errorf("Check problems %q, want one containing %q", all, tc.wantInMsg)
			}
			e, err := policy.Load(dir, policy.Options{})
			var ib *policy.InvalidBundleError
			if e != nil || !errors.As(err, &ib) {
				t.Fatalf("Load = %v, %v; want nil engine and *InvalidBundleError", e, err)
			}
		})
	}
}

func TestEvaluationErrorDenies(t *testing.T) {
	// Overflow is a run-time error the type checker cannot see; the permit next to
	// it would allow, but an error denies.
	dir := copyBundle(t, map[string]string{"overflow.cedar": `@id("overflowing-permit")
@reason("amount arithmetic that overflows")
permit (principal is Agent, action == Action::"invoice.read", resource)
when { resource.amount + 9223372036854775807 > 0 };`})
	e := load(t, dir)
	req := baseRequest("payments", "invoice.read", policy.Resource{Type: "Invoice", ID: "INV-1", Status: "approved", Amount: 1})
	d := e.Decide(req, now)
	if d.Allow || d.Code != policy.CodeEvaluationError || len(d.Errors) == 0 || !slices.Contains(d.PolicyIDs, "overflowing-permit") {
		t.Fatalf("decision %+v, want evaluation_error deny naming overflowing-permit", d)
	}
	req.Resource.Amount = 0
	if d := e.Decide(req, now); !d.Allow {
		t.Fatalf("without the overflow the call must be allowed, got %+v", d)
	}
}

func baseRequest(role, action string, res policy.Resource) policy.Request {
	names := map[string]string{"forecasting": "demand-planner", "procurement": "procurement", "vendor": "vendor-portal",
		"shipping": "logistics", "compliance": "compliance", "payments": "payment-release", "edge": "edge-scanner"}
	class := "transactional"
	if role == "payments" || role == "compliance" {
		class = "regulated"
	}
	n := names[role]
	return policy.Request{
		Agent: policy.Agent{SPIFFEID: "spiffe://supplychain.example/agent/" + n, Name: n, Role: role,
			Class: class, Zone: "core", TrustDomain: "supplychain.example"},
		Action:   action,
		Resource: res,
		Context: policy.CallContext{Purpose: "test", DataSensitivity: "internal", Currency: "EUR",
			Attestation: policy.Attestation{Tier: "affirming", AgeSeconds: 30}},
	}
}

// TestContextFlipsTheDecision: for each kind of context, one change to an allowed
// request turns it into a denial with the expected code.
func TestContextFlipsTheDecision(t *testing.T) {
	e := load(t, defaultDir)
	order := policy.Resource{Type: "Order", ID: "PO-1", Status: "open", Amount: 100}
	invoice := policy.Resource{Type: "Invoice", ID: "INV-1", Status: "approved", Amount: 20000}
	shipment := policy.Resource{Type: "Shipment", ID: "SH-1", Status: "in_transit"}
	vendor := policy.Resource{Type: "VendorRecord", ID: "V-ACME", Status: "active"}
	pay := func() policy.Request {
		r := baseRequest("payments", "payment.release", invoice)
		r.Context.Amount = 20000
		r.Context.Approvers = []string{"alice", "bob"}
		return r
	}
	tests := []struct {
		name     string
		base     func() policy.Request
		at       time.Time
		flip     func(*policy.Request)
		flipAt   time.Time
		wantCode string
	}{
		{"closed-order", func() policy.Request { return baseRequest("procurement", "purchase_order.approve", order) },
			now, func(r *policy.Request) { r.Resource.Status = "closed" }, now, "policy_deny"},
		{"quarantined-zone", func() policy.Request { return baseRequest("shipping", "shipment.reroute", shipment) },
			now, func(r *policy.Request) { r.Trust.ZoneStates = map[string]string{"core": "quarantined"} }, now, "zone_quarantined"},
		{"degraded-zone", pay, now, func(r *policy.Request) { r.Trust.ZoneStates = map[string]string{"core": "degraded"} }, now, "zone_degraded"},
		{"incident-non-responder", func() policy.Request { return baseRequest("shipping", "shipment.reroute", shipment) },
			now, func(r *policy.Request) { r.Trust.IncidentMode = true }, now, "incident_mode"},
		{"incident-in-callers-zone", func() policy.Request { return baseRequest("shipping", "shipment.reroute", shipment) },
			now, func(r *policy.Request) { r.Trust.IncidentMode, r.Trust.IncidentZone = true, "core" }, now, "incident_mode"},
		{"no-attestation", func() policy.Request { return baseRequest("shipping", "shipment.reroute", shipment) },
			now, func(r *policy.Request) { r.Context.Attestation = policy.Attestation{} }, now, "attestation_required"},
		{"stale-attestation", pay, now, func(r *policy.Request) { r.Context.Attestation.AgeSeconds = 3600 }, now, "attestation_required"},
		{"missing-approvals", pay, now, func(r *policy.Request) { r.Context.Approvers = []string{"alice"} }, now, "approval_required"},
		{"expired-exception", func() policy.Request { return baseRequest("shipping", "vendor_record.update", vendor) },
			now, func(*policy.Request) {}, time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC), "policy_deny"},
		{"kill-switch", func() policy.Request { return baseRequest("procurement", "purchase_order.approve", order) },
			now, func(r *policy.Request) {
				r.Trust.KillSwitches = []policy.KillSwitch{{Scope: "action", Value: "purchase_order.approve", Reason: "fraud wave"}}
			}, now, "kill_switch"},
		{"partner-domain", func() policy.Request { return baseRequest("procurement", "purchase_order.read", order) },
			now, func(r *policy.Request) {
				r.Agent.TrustDomain, r.Agent.Partner = "partner.example", true
				r.Agent.SPIFFEID = "spiffe://partner.example/agent/procurement"
			}, now, "partner_not_granted"},
		{"suspended-agent", func() policy.Request { return baseRequest("procurement", "purchase_order.read", order) },
			now, func(r *policy.Request) {
				r.Trust.AgentStatus = map[string]string{r.Agent.SPIFFEID: policy.AgentSuspended}
			}, now, "agent_suspended"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.base()
			if d := e.Decide(req, tc.at); !d.Allow {
				t.Fatalf("base request denied: %s (%s)", d.Code, d.Reason)
			}
			tc.flip(&req)
			d := e.Decide(req, tc.flipAt)
			if d.Allow || d.Code != tc.wantCode {
				t.Fatalf("flipped request: allow=%v code=%s (%s), want deny %s", d.Allow, d.Code, d.Reason, tc.wantCode)
			}
			if d.Reason == "" || d.Revision != e.Revision() {
				t.Errorf("decision lacks reason or revision: %+v", d)
			}
		})
	}
}

func TestRateLimitExceededThenRefilled(t *testing.T) {
	e := load(t, defaultDir)
	req := baseRequest("payments", "payment.release", policy.Resource{Type: "Invoice", ID: "INV-9", Status: "approved", Amount: 10})
	for i := range 5 { // burst 5
		if d := e.Decide(req, now); !d.Allow {
			t.Fatalf("call %d within burst denied: %s", i+1, d.Reason)
		}
	}
	d := e.Decide(req, now)
	if d.Allow || d.Code != policy.CodeRateLimited || d.PolicyIDs[0] != "ratelimit:payment-release-rate" {
		t.Fatalf("6th call: %+v, want rate_limited", d)
	}
	// 30/m refills one token every 2 s.
	if d := e.Decide(req, now.Add(2*time.Second)); !d.Allow {
		t.Fatalf("after refill: %s", d.Reason)
	}
	// Another agent has its own bucket.
	other := req
	other.Agent.SPIFFEID, other.Agent.Name = "spiffe://supplychain.example/agent/payment-release-2", "payment-release-2"
	if d := e.Decide(other, now); !d.Allow {
		t.Fatalf("other agent shares the bucket: %s", d.Reason)
	}
}

func TestDecisionExplainsItself(t *testing.T) {
	e := load(t, defaultDir)
	req := baseRequest("payments", "payment.release", policy.Resource{Type: "Invoice", ID: "INV-2", Status: "approved", Amount: 50000})
	req.Context.Attestation.AgeSeconds = 900
	d := e.Decide(req, now)
	wantIDs := []string{"payment-release-needs-two-approvals", "regulated-needs-attestation"}
	if !slices.Equal(sorted(d.PolicyIDs), wantIDs) {
		t.Errorf("PolicyIDs %v, want %v", d.PolicyIDs, wantIDs)
	}
	if !slices.Equal(sorted(d.Obligations), []string{"approval", "reattest"}) {
		t.Errorf("Obligations %v", d.Obligations)
	}
	if !strings.HasPrefix(d.Reason, "Denied by ") || !strings.Contains(d.Reason, "fresh affirming attestation") || !strings.Contains(d.Reason, "two distinct approvals") {
		t.Errorf("Reason %q", d.Reason)
	}
	if d.Annotations["payment-release-needs-two-approvals"]["remedy"] != "approval" {
		t.Errorf("annotations %v", d.Annotations)
	}
	if len(d.Revision) != 64 {
		t.Errorf("revision %q", d.Revision)
	}
	ok := e.Decide(baseRequest("procurement", "purchase_order.read", policy.Resource{Type: "Order", ID: "PO-1", Status: "open"}), now)
	if !ok.Allow || ok.Reason != "Allowed by procurement-permits: the procurement agent creates, reads and approves purchase orders and reads vendor records and inventory feeds." {
		t.Errorf("allow reason %q", ok.Reason)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestRevisionIsCanonical(t *testing.T) {
	base := load(t, defaultDir).Revision()
	cosmetic := load(t, copyBundle(t, map[string]string{"+roles.cedar": "\n// a comment and blank lines change nothing\n\n"})).Revision()
	if cosmetic != base {
		t.Errorf("comment changed the revision")
	}
	changed := load(t, copyBundle(t, map[string]string{"+guards.cedar": `
@id("no-weekend-releases")
@reason("x")
forbid (principal is Agent, action == Action::"payment.release", resource) when { context.amount > 1000000 };
`})).Revision()
	if changed == base {
		t.Errorf("a new policy did not change the revision")
	}
}

func TestHotReloadSwapsAtomically(t *testing.T) {
	a := load(t, defaultDir)
	b := load(t, copyBundle(t, map[string]string{"+guards.cedar": `
@id("procurement-reads-frozen")
@reason("order reads are frozen for the audit")
forbid (principal is Agent, action == Action::"purchase_order.read", resource);
`}))
	h := policy.NewHolder(a)
	req := baseRequest("procurement", "purchase_order.read", policy.Resource{Type: "Order", ID: "PO-1", Status: "open"})
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				d := h.Decide(req, now)
				// Each decision is consistent with the revision that made it.
				if (d.Revision == a.Revision()) != d.Allow || (d.Revision != a.Revision() && d.Revision != b.Revision()) {
					mu.Lock()
					bad++
					mu.Unlock()
				}
				if g == 0 && i == 1000 {
					h.Swap(b)
				}
			}
		}()
	}
	wg.Wait()
	if bad > 0 {
		t.Fatalf("%d decisions inconsistent with their revision", bad)
	}
	if d := h.Decide(req, now); d.Allow || d.Revision != b.Revision() {
		t.Fatalf("after swap: %+v", d)
	}
	var empty policy.Holder
	if d := empty.Decide(req, now); d.Allow || d.Code != policy.CodeNoPolicy {
		t.Fatalf("empty holder: %+v", d)
	}
}

func TestMayPerformForBlastRadius(t *testing.T) {
	e := load(t, defaultDir)
	logistics := baseRequest("shipping", "", policy.Resource{}).Agent
	planner := baseRequest("forecasting", "", policy.Resource{}).Agent
	tests := []struct {
		agent           policy.Agent
		action, resType string
		want            bool
	}{
		{logistics, "shipment.route", "Shipment", true},
		{logistics, "vendor_record.update", "VendorRecord", true}, // one record, by EXC-2026-041
		{logistics, "invoice.post", "Invoice", false},
		{planner, "inventory_feed.read", "InventoryFeed", true},
		{planner, "purchase_order.approve", "Order", false},
	}
	for _, tc := range tests {
		if got := e.MayPerform(tc.agent, tc.action, tc.resType, now).Allow; got != tc.want {
			t.Errorf("MayPerform(%s, %s, %s) = %v, want %v", tc.agent.Name, tc.action, tc.resType, got, tc.want)
		}
	}
	var n int
	for _, a := range e.Actions() {
		if len(a.ResourceTypes) == 0 {
			t.Errorf("action %s has no resource type", a.Name)
		}
		n++
	}
	if n < 15 || !slices.Contains(e.ResourceTypes(), "VendorRecord") {
		t.Errorf("catalog: %d actions, resource types %v", n, e.ResourceTypes())
	}
}

func TestNilEngineDenies(t *testing.T) {
	var e *policy.Engine
	if d := e.Decide(policy.Request{}, now); d.Allow || d.Code != policy.CodeNoPolicy {
		t.Fatalf("%+v", d)
	}
}

func TestUnknownKillSwitchScopeFailsClosed(t *testing.T) {
	e := load(t, defaultDir)
	req := baseRequest("procurement", "purchase_order.read", policy.Resource{Type: "Order", ID: "PO-1", Status: "open"})
	req.Trust.KillSwitches = []policy.KillSwitch{{Scope: "galaxy", Value: "andromeda"}}
	if d := e.Decide(req, now); d.Allow || d.Code != policy.CodeKillSwitch {
		t.Fatalf("%+v", d)
	}
}

func TestRunTestsReportsFailures(t *testing.T) {
	dir := copyBundle(t, map[string]string{"tests/wrong.yaml": `now: 2026-11-27T12:00:00Z
cases:
  - name: wrong expectation
    agent: procurement
    action: purchase_order.read
    resource: {type: Order, id: PO-1, status: open}
    expect: deny
`})
	e := load(t, dir)
	var out strings.Builder
	rep, err := policy.RunTests(e, os.DirFS(dir), &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 || !strings.Contains(out.String(), "FAIL wrong expectation") || !strings.HasSuffix(out.String(), " passed, 1 failed\n") {
		t.Fatalf("report %+v output:\n%s", rep, out.String())
	}
}

func TestRequestOutsideSchemaIsRefused(t *testing.T) {
	e := load(t, defaultDir)
	tests := []struct {
		name string
		edit func(*policy.Request)
		code string
	}{
		{"resource-type-the-action-does-not-apply-to", func(r *policy.Request) { r.Resource.Type = "Order" }, policy.CodeInvalidRequest},
		{"no-caller-identity", func(r *policy.Request) { r.Agent.SPIFFEID = "" }, policy.CodeInvalidRequest},
		{"unknown-action", func(r *policy.Request) { r.Action = "payment.release_all" }, policy.CodeDefaultDeny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := baseRequest("payments", "invoice.read", policy.Resource{Type: "Invoice", ID: "INV-1", Status: "approved"})
			if d := e.WhatIf(req, now); !d.Allow {
				t.Fatalf("base denied: %s", d.Reason)
			}
			tc.edit(&req)
			if d := e.WhatIf(req, now); d.Allow || d.Code != tc.code {
				t.Fatalf("got allow=%v code=%s (%s), want %s", d.Allow, d.Code, d.Reason, tc.code)
			}
		})
	}
}

func TestReloadKeepsServingOnInvalidBundle(t *testing.T) {
	h := policy.NewHolder(load(t, defaultDir))
	rev := h.Engine().Revision()
	bad := copyBundle(t, map[string]string{"+guards.cedar": "\n@id(\"broken\")\n@reason(\"x\")\nforbid (principal, action, resource) when { context.nope };\n"})
	if _, err := h.LoadAndSwap(bad, policy.Options{}); err == nil {
		t.Fatal("invalid bundle loaded")
	}
	if h.Engine().Revision() != rev {
		t.Fatal("invalid bundle replaced the serving one")
	}
	good := copyBundle(t, map[string]string{"+guards.cedar": "\n@id(\"extra\")\n@reason(\"x\")\nforbid (principal, action == Action::\"invoice.burn\", resource);\n"})
	_, err := h.LoadAndSwap(good, policy.Options{})
	if err == nil {
		t.Fatal("bundle naming an unknown action loaded")
	}
	good = copyBundle(t, map[string]string{"+guards.cedar": "\n@id(\"extra\")\n@reason(\"x\")\nforbid (principal, action == Action::\"invoice.post\", resource) when { context.amount > 99999999 };\n"})
	if e, err := h.LoadAndSwap(good, policy.Options{}); err != nil || h.Engine() != e || e.Revision() == rev {
		t.Fatalf("valid bundle not swapped in: %v", err)
	}
}

func TestMalformedKillSwitchFailsClosed(t *testing.T) {
	e := load(t, defaultDir)
	req := baseRequest("procurement", "purchase_order.read", policy.Resource{Type: "Order", ID: "PO-1", Status: "open"})
	req.Trust.KillSwitches = []policy.KillSwitch{{Scope: "workflow", Value: ""}}
	if d := e.Decide(req, now); d.Allow || d.Code != policy.CodeKillSwitch {
		t.Fatalf("%+v", d)
	}
}

// TestOPAStaysInBenchModule: OPA is only a benchmark baseline; it must never enter
// the product module (and so the binary).
func TestOPAStaysInBenchModule(t *testing.T) {
	for _, f := range []string{"../../go.mod", "../../go.sum"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "open-policy-agent") {
			t.Errorf("%s mentions open-policy-agent; OPA belongs in bench/go.mod only", f)
		}
	}
}

// TestMemoizedEntitiesNeverServeStaleAttributes: the same SPIFFE ID or resource
// id with changed attributes must be judged on the new attributes.
func TestMemoizedEntitiesNeverServeStaleAttributes(t *testing.T) {
	e := load(t, defaultDir)
	req := baseRequest("procurement", "purchase_order.approve", policy.Resource{Type: "Order", ID: "PO-1", Status: "open", Amount: 10})
	if d := e.Decide(req, now); !d.Allow {
		t.Fatalf("base: %s", d.Reason)
	}
	demoted := req
	demoted.Agent.Role = "forecasting"
	if d := e.Decide(demoted, now); d.Allow {
		t.Fatal("role change under the same SPIFFE ID served from cache")
	}
	closed := req
	closed.Resource.Status = "closed"
	if d := e.Decide(closed, now); d.Allow {
		t.Fatal("status change of the same order served from cache")
	}
	stale := req
	stale.Context.Attestation = policy.Attestation{Tier: "contraindicated", AgeSeconds: 30}
	if d := e.Decide(stale, now); d.Allow {
		t.Fatal("attestation change served from cache")
	}
	incident := req
	incident.Agent.Zone = "z9"
	incident.Trust.ZoneStates = map[string]string{"z9": "offline"}
	if d := e.Decide(incident, now); d.Allow {
		t.Fatal("zone state change served from cache")
	}
}
