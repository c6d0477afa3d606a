package telemetry_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-a2a/warden/internal/telemetry"
)

// TestDocumentedMetricsAreRegistered: the metrics table of docs/telemetry.md and the
// warden_* metrics NewMetrics registers are the same list (each setter called once so
// that every vector has a series).
func TestDocumentedMetricsAreRegistered(t *testing.T) {
	doc, err := os.ReadFile("../../docs/telemetry.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(warden_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1])
	}
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	m.Decision("allow", "policy_allow")
	m.Stage("decide", time.Millisecond)
	m.SVIDEvent(telemetry.SVIDRenewed)
	m.TrustState(1, time.Now())
	m.ReplayCacheSize(1)
	m.SpoolDepth(1)
	m.AuditShipFailure("unreachable")
	m.SVIDExpiry(time.Now())
	m.Anomaly("rate_spike")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var registered []string
	runtime := false
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "warden_") {
			registered = append(registered, mf.GetName())
		}
		runtime = runtime || mf.GetName() == "go_goroutines"
	}
	slices.Sort(documented)
	slices.Sort(registered)
	if !slices.Equal(documented, registered) {
		t.Errorf("docs/telemetry.md lists %v\nNewMetrics registers %v", documented, registered)
	}
	if !runtime {
		t.Error("no Go runtime collector")
	}
}
