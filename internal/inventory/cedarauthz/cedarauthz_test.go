package cedarauthz_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-a2a/warden/internal/inventory"
	"github.com/warden-a2a/warden/internal/inventory/cedarauthz"
)

const (
	shipped  = "../../../examples/supplychain/catalog.yaml"
	policies = "testdata/policies"
)

// The fixture policies drift from the shipped catalog on purpose: they grant the
// partner carrier shipment.reroute (undeclared) and have no permit for the planner's
// forecast.submit (declared). Everything else agrees.
func TestReportAgreesWithCedarOnShippedCatalog(t *testing.T) {
	az, err := cedarauthz.Load(policies)
	if err != nil {
		t.Fatal(err)
	}
	c, err := inventory.Load(shipped)
	if err != nil {
		t.Fatal(err)
	}
	r := inventory.Analyze(c, inventory.Options{Authorizer: az, Engine: az.String()})

	// 1. The engine's own answer for every agent and every action of the catalog.
	type key struct{ agent, action string }
	resource := map[string]string{}
	declared := map[key]bool{}
	for _, in := range c.Interactions {
		if _, ok := resource[in.Action]; !ok {
			resource[in.Action] = in.ResourceType()
		}
		declared[key{in.From, in.Action}] = true
	}
	engine := map[key]bool{}
	for i := range c.Agents {
		ag := &c.Agents[i]
		for act, rt := range resource {
			d, err := az.Authorize(inventory.Request{Agent: *ag, Action: act, ResourceType: rt, Attested: true, Approvals: 2})
			if err != nil {
				t.Fatal(err)
			}
			engine[key{ag.Name, act}] = d.Allow
		}
	}

	// 2. What the report says the agents may do.
	report := map[key]bool{}
	for _, ar := range r.BlastRadius {
		for _, cp := range ar.Direct {
			report[key{ar.Agent, cp.Action}] = true
		}
	}
	for _, u := range r.Undeclared {
		report[key{u.Agent, u.Action}] = true
	}
	denied := map[string]bool{}
	for _, d := range r.DeclaredDenied {
		denied[d.Interaction] = true
	}
	for k, allow := range engine {
		if report[k] != allow {
			t.Errorf("%s %s: engine says allow=%v, report says %v", k.agent, k.action, allow, report[k])
		}
		if declared[k] && !allow {
			found := false
			for _, in := range c.Interactions {
				if in.From == k.agent && in.Action == k.action && denied[in.Name()] {
					found = true
				}
			}
			if !found {
				t.Errorf("%s %s: denied by the engine, not reported as declared-but-denied", k.agent, k.action)
			}
		}
	}

	// 3. The drift, pinned.
	var und []string
	for _, u := range r.Undeclared {
		und = append(und, u.Agent+" "+u.Action+" "+strings.Join(u.Policies, ","))
	}
	if diff := cmp.Diff([]string{"partner-carrier shipment.reroute partner-carrier-shipping"}, und); diff != "" {
		t.Errorf("undeclared (-want +got):\n%s", diff)
	}
	var den []string
	for _, d := range r.DeclaredDenied {
		den = append(den, d.Interaction)
	}
	if diff := cmp.Diff([]string{"planner-recommends (demand-planner -> procurement: forecast.submit)"}, den); diff != "" {
		t.Errorf("declared but denied (-want +got):\n%s", diff)
	}
	// Requirements come from the policies: invoice posting is the one sensitive step
	// they allow bare.
	var noReq []string
	for _, f := range r.Findings {
		if f.Code == inventory.CodeNoRequirement {
			noReq = append(noReq, f.Message)
		}
	}
	if len(noReq) != 1 || !strings.Contains(noReq[0], "invoice-post") || !strings.Contains(noReq[0], "portal-posts-invoices") {
		t.Errorf("no_requirement findings: %q", noReq)
	}
}

func agent(name, role string) inventory.Agent {
	return inventory.Agent{Name: name, Role: role, Class: inventory.Regulated, Zone: "z", Environment: inventory.EnvCloud,
		TrustDomain: "supplychain.example", Identity: "spiffe://supplychain.example/agent/" + name}
}

func writePolicies(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDecisions(t *testing.T) {
	dir := writePolicies(t, map[string]string{
		"p.cedar": `
@id("pay") @remedy("approval")
permit (principal, action == Action::"payment.release", resource)
when { principal.role == "payments" && context.approvals.count >= 2 && context.attestation.tier == "affirming" };
@id("broken")
permit (principal, action == Action::"invoice.post", resource)
when { principal.no_such_attribute == "x" };
@id("read")
permit (principal, action == Action::"customs_form.read", resource);
@id("no-partner-reads")
forbid (principal, action == Action::"customs_form.read", resource)
when { principal.partner };
`,
	})
	az, err := cedarauthz.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	partner := agent("carrier", "carrier")
	partner.Environment = inventory.EnvPartner
	cases := []struct {
		name     string
		req      inventory.Request
		allow    bool
		policies string
		obl      string
	}{
		{"payment-with-attestation-and-two-approvals", inventory.Request{Agent: agent("pay", "payments"), Action: "payment.release", Attested: true, Approvals: 2}, true, "pay", "approval"},
		{"payment-without-attestation", inventory.Request{Agent: agent("pay", "payments"), Action: "payment.release", Approvals: 2}, false, "default-deny", ""},
		{"payment-by-wrong-role", inventory.Request{Agent: agent("x", "forecasting"), Action: "payment.release", Attested: true, Approvals: 2}, false, "default-deny", ""},
		{"evaluation-error-denies", inventory.Request{Agent: agent("v", "vendor_portal"), Action: "invoice.post", Attested: true, Approvals: 2}, false, "error:broken", ""},
		{"permit-for-everyone", inventory.Request{Agent: agent("c", "validator"), Action: "customs_form.read"}, true, "read", ""},
		{"forbid-wins-over-permit", inventory.Request{Agent: partner, Action: "customs_form.read"}, false, "no-partner-reads", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := az.Authorize(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tc.allow || strings.Join(d.Policies, ",") != tc.policies || strings.Join(d.Obligations, ",") != tc.obl {
				t.Fatalf("got %+v, want allow=%v policies=%s obligations=%s", d, tc.allow, tc.policies, tc.obl)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := cedarauthz.Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no policies") {
		t.Errorf("empty directory: %v", err)
	}
	dir := writePolicies(t, map[string]string{"bad.cedar": "permit (principal, action, resource) when { ;\n"})
	if _, err := cedarauthz.Load(dir); err == nil || !strings.Contains(err.Error(), "bad.cedar") {
		t.Errorf("parse error without the file name: %v", err)
	}
	dup := writePolicies(t, map[string]string{"a.cedar": `@id("x") permit (principal, action, resource); @id("x") forbid (principal, action, resource);`})
	if _, err := cedarauthz.Load(dup); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate ids: %v", err)
	}
}
