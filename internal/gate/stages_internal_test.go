package gate

import (
	"testing"

	"github.com/warden-a2a/warden/internal/telemetry"
)

// TestStageNamesAreMetricLabels: every inbound stage the gate times is a label value of
// warden_decision_stage_seconds (else it would be counted as "other").
func TestStageNamesAreMetricLabels(t *testing.T) {
	for _, s := range inboundStages {
		if s.name != "forward" && !telemetry.KnownStage(s.name) {
			t.Errorf("stage %q is not a known warden_decision_stage_seconds label (internal/telemetry)", s.name)
		}
	}
}
