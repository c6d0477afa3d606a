package inventory_test

import (
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/inventory"
)

const wfBase = `trust_domain: example.test
agents:
  - {name: a, owner: o, environment: cloud, zone: z, class: advisory}
  - {name: b, owner: o, environment: cloud, zone: z, class: advisory}
interactions:
  - {workflow: w, from: a, to: b, action: x.create, classification: advisory, criticality: low}
  - {workflow: w, from: a, to: b, action: x.approve, classification: advisory, criticality: low}
workflows:
`

// TestWorkflowChecks: each defect of a workflows section is a finding with its code.
func TestWorkflowChecks(t *testing.T) {
	for name, c := range map[string]struct{ yaml, want string }{
		"sound": {`  - name: w
    mode: enforce
    steps:
      - action: x.create
      - {action: x.approve, after: [x.create]}
`, ""},
		"unknown predecessor": {`  - name: w
    steps:
      - action: x.create
      - {action: x.approve, after: [x.ship]}
`, "error workflow_step: workflow w: step x.approve comes after x.ship"},
		"action in two workflows": {`  - name: w
    steps: [{action: x.create}]
  - name: v
    steps: [{action: x.create}]
`, "error workflow_step: action x.create is a step of workflow w and of v"},
		"bad mode": {`  - name: w
    mode: strict
    steps: [{action: x.create}]
`, `error bad_value: workflow w: mode "strict"`},
		"no start": {`  - name: w
    steps:
      - {action: x.create, after: [x.approve]}
      - {action: x.approve, after: [x.create]}
`, "error workflow_step: workflow w has no step that may start it"},
		"undeclared step": {`  - name: w
    steps: [{action: x.read}]
`, "warning workflow_step: workflow w: no interaction of the workflow declares x.read"},
	} {
		cat, err := inventory.Parse("c.yaml", []byte(wfBase+c.yaml))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var got []string
		for _, f := range inventory.Check(cat, nil) {
			if f.Code == inventory.CodeWorkflowStep || strings.Contains(f.Message, "workflow") {
				got = append(got, f.String())
			}
		}
		joined := strings.Join(got, "\n")
		if c.want == "" && len(got) > 0 || c.want != "" && !strings.Contains(joined, c.want) {
			t.Errorf("%s: findings\n%s\nwant %q", name, joined, c.want)
		}
	}
	if _, err := inventory.Parse("c.yaml", []byte(wfBase+"  - name: w\n    steps: [{action: x.create, repeatable: yes please}]\n")); err == nil {
		t.Error("repeatable: a string was accepted")
	}
	if _, err := inventory.Parse("c.yaml", []byte(wfBase+"  - name: w\n    stepz: []\n")); err == nil || !strings.Contains(err.Error(), `unknown key "stepz"`) {
		t.Errorf("unknown key: %v", err)
	}
}
