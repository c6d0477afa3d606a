package gate

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/telemetry"
)

// TestStageNamesAreMetricLabels: every inbound stage the gate times is a label value of
// warden_decision_stage_seconds (else it would be counted as "other"), and
// docs/telemetry.md lists it.
func TestStageNamesAreMetricLabels(t *testing.T) {
	doc, err := os.ReadFile("../../docs/telemetry.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `warden_decision_stage_seconds` .*$").Find(doc)
	for _, s := range inboundStages {
		if s.name == "forward" {
			continue
		}
		if !telemetry.KnownStage(s.name) {
			t.Errorf("stage %q is not a warden_decision_stage_seconds label (internal/telemetry)", s.name)
		}
		if !strings.Contains(string(row), "`"+s.name+"`") {
			t.Errorf("docs/telemetry.md does not list stage %q in warden_decision_stage_seconds", s.name)
		}
	}
}
