package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/warden-a2a/warden/internal/telemetry"
)

func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	srv := httptest.NewServer(telemetry.Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestMetricsExposedWithoutHighCardinalityLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	m.Decision("allow", "")
	m.Decision("deny", "replay")
	m.Decision("deny", "replay")
	m.Decision("deny", "spiffe://example.org/agent/procurement") // a caller bug: must not become a label
	m.Decision("deny", "Wrong Audience: spiffe://x")
	m.Stage("decide", 300*time.Microsecond)
	m.Stage("spiffe://example.org/agent/x", time.Millisecond)
	m.SVIDEvent(telemetry.SVIDIssued)
	m.SVIDEvent(telemetry.SVIDRevoked)
	m.TrustState(42, time.Now().Add(-30*time.Second))
	m.ReplayCacheSize(17)
	m.SpoolDepth(3)
	m.Anomaly("rate_spike")
	out := scrape(t, reg)
	for _, want := range []string{
		`warden_decisions_total{reason="replay",result="deny"} 2`,
		`warden_decisions_total{reason="none",result="allow"} 1`,
		`warden_decisions_total{reason="other",result="deny"} 2`,
		`warden_decision_stage_seconds_count{stage="decide"} 1`,
		`warden_decision_stage_seconds_count{stage="other"} 1`,
		`warden_svids_total{event="issued"} 1`,
		`warden_svids_total{event="renewed"} 0`,
		`warden_trust_state_version 42`,
		`warden_replay_cache_entries 17`,
		`warden_audit_spool_depth 3`,
		`warden_anomalies_total{kind="rate_spike"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(out, "spiffe://") {
		t.Error("a SPIFFE ID leaked into /metrics")
	}
	var age float64
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "warden_trust_state_age_seconds ") {
			if _, err := fmtSscan(line, &age); err != nil {
				t.Fatal(err)
			}
		}
	}
	if age < 29 || age > 120 {
		t.Errorf("trust state age %v, want about 30 s", age)
	}
	// The default registry is untouched.
	if mfs, _ := prometheus.DefaultGatherer.Gather(); hasWarden(mfs) {
		t.Error("metrics registered on the global default registry")
	}
}

func TestOneWorkflowIsOneTraceAcrossAgents(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer("warden/gate")

	// Gate of agent B: decides, records the span, answers.
	gateB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := telemetry.StartDecision(r.Context(), tr, r.Header, "wf-42", "purchase_order.create",
			"spiffe://example.org/agent/a", "spiffe://example.org/agent/b")
		traceID, _ := telemetry.IDs(ctx)
		w.Write([]byte(traceID))
		telemetry.EndDecision(span, "d-2", "deny", "replay")
	}))
	defer gateB.Close()

	// Gate of agent A decides on the first hop, then A calls B with the trace context.
	ctx, span := telemetry.StartDecision(context.Background(), tr, http.Header{}, "wf-42", "demand.forecast", "", "spiffe://example.org/agent/a")
	client := &http.Client{Transport: telemetry.Transport(nil)}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gateB.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	telemetry.EndDecision(span, "d-1", "allow", "")

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	first, second := spans[1], spans[0] // B ends first
	if first.SpanContext().TraceID() != second.SpanContext().TraceID() || string(b) != first.SpanContext().TraceID().String() {
		t.Fatal("the second hop started a new trace")
	}
	if second.Parent().SpanID() != first.SpanContext().SpanID() {
		t.Fatal("B's decision span is not a child of A's")
	}
	attrs := map[string]string{}
	for _, kv := range second.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["warden.workflow_id"] != "wf-42" || attrs["warden.decision"] != "deny" || attrs["warden.reason"] != "replay" {
		t.Fatalf("attributes %v", attrs)
	}
	if second.SpanKind() != trace.SpanKindServer {
		t.Fatal("decision span is not a server span")
	}
}

func TestExtractIgnoresMalformedTraceparent(t *testing.T) {
	h := http.Header{}
	h.Set("traceparent", "00-00000000000000000000000000000000-0000000000000000-01")
	if tid, _ := telemetry.IDs(telemetry.Extract(context.Background(), h)); tid != "" {
		t.Fatalf("an all-zero trace id was accepted: %s", tid)
	}
}
