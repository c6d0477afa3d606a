package gate

import (
	"context"

	"github.com/warden-a2a/warden/internal/telemetry"
)

// MetricsSink counts every decision by result and reason code (warden_decisions_total;
// no SPIFFE IDs as labels) and hands it on to Next.
type MetricsSink struct {
	Metrics *telemetry.Metrics
	Next    AuditSink
}

var _ AuditSink = MetricsSink{}

// Record implements AuditSink.
func (m MetricsSink) Record(ctx context.Context, ev Event) error {
	if err := m.Next.Record(ctx, ev); err != nil {
		return err
	}
	result := "deny"
	if ev.Allow {
		result = "allow"
	}
	m.Metrics.Decision(result, ev.Reason)
	return nil
}
