package inventory_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-a2a/warden/internal/inventory"
)

func riskOf(t *testing.T, r *inventory.Report, agent string) inventory.AgentRisk {
	t.Helper()
	for _, ar := range r.BlastRadius {
		if ar.Agent == agent {
			return ar
		}
	}
	t.Fatalf("no blast radius for %s", agent)
	return inventory.AgentRisk{}
}

// Blast radius on graphs with cycles: a -> b -> c -> a instruct each other (advisory
// calls), d only instructs a, e is instructed by c. Every member of the cycle reaches
// the other two and e; d reaches all four; e reaches nobody. Transitive counts must not
// count a capability twice however many ways it is reached.
func TestBlastRadiusWithCycles(t *testing.T) {
	c := mustParse(t, `version: 1
trust_domain: example.test
agents:
  - {name: a, owner: o, environment: cloud, zone: z, class: advisory}
  - {name: b, owner: o, environment: cloud, zone: z, class: advisory}
  - {name: c, owner: o, environment: cloud, zone: z, class: advisory}
  - {name: d, owner: o, environment: cloud, zone: z, class: advisory}
  - {name: e, owner: o, environment: cloud, zone: z, class: regulated}
  - {name: f, owner: o, environment: cloud, zone: z, class: regulated}
interactions:
  - {from: a, to: b, action: plan.suggest, criticality: low, classification: advisory}
  - {from: b, to: c, action: plan.suggest, criticality: low, classification: advisory}
  - {from: c, to: a, action: plan.suggest, criticality: low, classification: advisory}
  - {from: d, to: a, action: plan.suggest, criticality: low, classification: advisory}
  - {from: c, to: e, action: payment.release, criticality: high, classification: regulated, requires: [approval]}
  - {from: e, to: f, action: ledger.read, criticality: low, classification: read-only}
`)
	r := inventory.Analyze(c, inventory.Options{})
	want := map[string][3]int{ // reachable agents, transitive, transitive sensitive
		"a": {3, 5, 1}, // b, c, e; caps: a,b,c plan.suggest + c payment.release + e ledger.read
		"b": {3, 5, 1},
		"c": {3, 5, 1},
		"d": {4, 6, 1},
		"e": {0, 1, 0}, // a read makes nobody act: f is not reached
		"f": {0, 0, 0},
	}
	for name, w := range want {
		ar := riskOf(t, r, name)
		if got := [3]int{ar.ReachableAgents, ar.Transitive, ar.TransitiveSensitive}; got != w {
			t.Errorf("%s: (reach, transitive, sensitive) = %v, want %v", name, got, w)
		}
	}
	if r.BlastRadius[0].Agent != "d" {
		t.Errorf("largest blast radius %s, want d", r.BlastRadius[0].Agent)
	}
}

// A shared credential gives full control of every co-user (their credentials too),
// while instructing an agent gives only the calls it makes itself.
func TestSharedCredentialSpreadsControlInstructionDoesNot(t *testing.T) {
	c := mustParse(t, `version: 1
trust_domain: example.test
agents:
  - {name: edge, owner: o, environment: edge, zone: w, class: transactional}
  - {name: pay, owner: o, environment: cloud, zone: f, class: regulated}
  - {name: planner, owner: o, environment: cloud, zone: p, class: advisory}
  - {name: erp, owner: o, environment: legacy, zone: dc, class: transactional, gate: g}
  - {name: other, owner: o, environment: cloud, zone: x, class: transactional}
interactions:
  - {from: planner, to: edge, action: count.request, criticality: low, classification: advisory}
  - {from: pay, to: erp, action: payment.release, criticality: critical, classification: regulated, requires: [approval, attestation]}
  - {from: other, to: erp, action: order.create, criticality: low, classification: transactional, requires: [attestation]}
dependencies:
  - {name: acct, kind: integration_account, used_by: [edge, pay]}
  - {name: acct2, kind: secret, used_by: [pay, other]}
`)
	r := inventory.Analyze(c, inventory.Options{})
	edge := riskOf(t, r, "edge")
	if edge.ReachableAgents != 3 || edge.TransitiveSensitive != 2 { // pay, other (via pay's secret), erp
		t.Errorf("edge: reach %d sensitive %d, want 3 and 2", edge.ReachableAgents, edge.TransitiveSensitive)
	}
	if !strings.Contains(edge.Worst, "edge =[acct (integration_account)]=> pay: payment.release") {
		t.Errorf("edge worst path %q", edge.Worst)
	}
	planner := riskOf(t, r, "planner")
	if planner.ReachableAgents != 1 || planner.TransitiveSensitive != 0 { // edge only: instructing edge is not holding acct
		t.Errorf("planner: reach %d sensitive %d, want 1 and 0", planner.ReachableAgents, planner.TransitiveSensitive)
	}
}

// The shipped catalog has the hidden shared dependencies the issue asks for, and the
// report finds them.
func TestShippedCatalogReportHasFindings(t *testing.T) {
	c, err := inventory.Load(shipped)
	if err != nil {
		t.Fatal(err)
	}
	r := inventory.Analyze(c, inventory.Options{})
	var got []string
	for _, f := range r.Findings {
		got = append(got, f.Code)
	}
	want := []string{inventory.CodePrivilegeAggregation, inventory.CodeNoRequirement, inventory.CodeSharedSecret}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if top := r.Chokepoints[0]; top.Name != "po-events" || !top.Shared || top.Workflows != 6 {
		t.Errorf("top chokepoint %+v", top)
	}
	if cp := r.Chokepoints[1]; cp.Name != "erp-integration" || len(cp.Users) != 4 {
		t.Errorf("second chokepoint %+v", cp)
	}
	// The warehouse edge agent holds the legacy integration account, so it reaches
	// payment release.
	we := riskOf(t, r, "warehouse-edge")
	if !strings.Contains(strings.Join(we.Paths, "\n"), "warehouse-edge =[erp-integration (integration_account)]=> payment-release: payment.release") {
		t.Errorf("warehouse-edge paths: %q", we.Paths)
	}
	if r.Rollout[0].Workflow != "procure-to-pay" || r.Rollout[0].Phase != 1 {
		t.Errorf("first rollout step %+v", r.Rollout[0])
	}
	last := r.Rollout[len(r.Rollout)-1]
	if last.Workflow != "replenishment" {
		t.Errorf("last rollout step %+v", last)
	}
	// Catalog-only decisions agree with the catalog by construction.
	if len(r.Undeclared) != 0 || len(r.DeclaredDenied) != 0 {
		t.Errorf("catalog-only: undeclared %v, denied %v", r.Undeclared, r.DeclaredDenied)
	}
}

// With an engine that grants more than the catalog declares and denies something
// declared, the report lists both.
func TestCatalogVersusEnforcement(t *testing.T) {
	c, err := inventory.Load(shipped)
	if err != nil {
		t.Fatal(err)
	}
	catalog := inventory.NewCatalogAuthorizer(c)
	engine := inventory.AuthorizerFunc(func(r inventory.Request) (inventory.Decision, error) {
		switch {
		case r.Agent.Role == "shipping" && r.Action == "vendor_record.update":
			return inventory.Decision{Allow: true, Policies: []string{"too-broad"}}, nil
		case r.Agent.Name == "compliance" && r.Action == "customs_form.read":
			return inventory.Decision{Policies: []string{"forbid-customs"}}, nil
		}
		return catalog.Authorize(r)
	})
	r := inventory.Analyze(c, inventory.Options{Authorizer: engine, Engine: "test engine"})
	if len(r.Undeclared) != 1 {
		t.Fatalf("undeclared %+v", r.Undeclared)
	}
	u := r.Undeclared[0]
	if u.Agent != "logistics" || u.Action != "vendor_record.update" || u.Servers[0] != "vendor-portal" || u.Policies[0] != "too-broad" {
		t.Errorf("undeclared %+v", u)
	}
	if len(r.DeclaredDenied) != 1 || r.DeclaredDenied[0].Interaction != "compliance-reads-customs (compliance -> legacy-erp: customs_form.read)" || r.DeclaredDenied[0].Line == 0 {
		t.Errorf("declared denied %+v", r.DeclaredDenied)
	}
	// The undeclared path is part of the blast radius and drawn dashed.
	lg := riskOf(t, r, "logistics")
	found := false
	for _, cp := range lg.Direct {
		found = found || (cp.Action == "vendor_record.update" && !cp.Declared)
	}
	if !found {
		t.Errorf("logistics direct %+v lacks the undeclared capability", lg.Direct)
	}
	var svg bytes.Buffer
	if err := r.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(svg.String(), `stroke-dasharray="6 4" marker-end="url(#arrow-regulated)"`) {
		t.Error("undeclared regulated path not drawn dashed red")
	}
	if !strings.Contains(TopLines(r, 8), "1 path allowed but undeclared, 1 interaction declared but denied") {
		t.Errorf("top of report:\n%s", TopLines(r, 8))
	}
}

func TopLines(r *inventory.Report, n int) string { return inventory.TopOfReport(r, n) }

// Every format renders; SVG is well-formed XML with one group per agent and edges
// coloured by class; JSON round-trips; DOT has one cluster per zone.
func TestRenderFormats(t *testing.T) {
	c, err := inventory.Load(shipped)
	if err != nil {
		t.Fatal(err)
	}
	r := inventory.Analyze(c, inventory.Options{})
	out := map[string]string{}
	for _, f := range inventory.Formats {
		var b bytes.Buffer
		if err := r.Write(&b, f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = b.String()
	}
	if err := r.Write(io.Discard, "pdf"); err == nil {
		t.Error("unknown format accepted")
	}

	dec := xml.NewDecoder(strings.NewReader(out["svg"]))
	agents, zones, colours := 0, 0, map[string]bool{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		for _, a := range se.Attr {
			switch {
			case se.Name.Local == "g" && a.Name.Local == "class" && a.Value == "agent":
				agents++
			case se.Name.Local == "g" && a.Name.Local == "class" && a.Value == "zone":
				zones++
			case se.Name.Local == "path" && a.Name.Local == "data-class":
				colours[a.Value] = true
			}
		}
	}
	if agents != 9 || zones != 9 {
		t.Errorf("SVG has %d agents in %d zones, want 9 in 9", agents, zones)
	}
	for _, cl := range []string{inventory.ReadOnly, inventory.Advisory, inventory.Transactional, inventory.Regulated} {
		if !colours[cl] {
			t.Errorf("SVG has no %s edge", cl)
		}
	}

	var back inventory.Report
	if err := json.Unmarshal([]byte(out["json"]), &back); err != nil {
		t.Fatal(err)
	}
	if back.Summary.Agents != 9 || len(back.BlastRadius) != 9 || len(back.Edges) != 13 {
		t.Errorf("JSON summary %+v, %d blast radii, %d edges", back.Summary, len(back.BlastRadius), len(back.Edges))
	}

	if n := strings.Count(out["dot"], "subgraph cluster_"); n != 9 {
		t.Errorf("DOT has %d clusters", n)
	}
	if !strings.Contains(out["dot"], `"payment-release" -> "legacy-erp" [label="payment.release", color="#c62828"`) {
		t.Error("DOT: payment release edge not red")
	}

	top := inventory.TopOfReport(r, 8)
	if strings.Count(top, "\n") != 8 || !strings.Contains(top, "largest blast radius") || !strings.Contains(top, "top chokepoint: queue po-events") {
		t.Errorf("top of report:\n%s", top)
	}
}
