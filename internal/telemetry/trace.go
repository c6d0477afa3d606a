package telemetry

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Span attribute keys set on decision spans.
const (
	AttrWorkflowID = attribute.Key("warden.workflow_id")
	AttrAction     = attribute.Key("warden.action")
	AttrCaller     = attribute.Key("warden.caller")
	AttrCallee     = attribute.Key("warden.callee")
	AttrDecision   = attribute.Key("warden.decision")
	AttrReason     = attribute.Key("warden.reason")
	AttrDecisionID = attribute.Key("warden.decision_id")
)

// DecisionSpanName is the name of the one span per gate decision.
const DecisionSpanName = "warden.gate.decision"

// traceContext is the W3C Trace Context propagator (traceparent, tracestate headers).
var traceContext = propagation.TraceContext{}

// Extract returns ctx carrying the remote span context of the W3C traceparent and
// tracestate headers in h; a missing or malformed header leaves ctx as it is (a new trace
// starts).
func Extract(ctx context.Context, h http.Header) context.Context {
	return traceContext.Extract(ctx, propagation.HeaderCarrier(h))
}

// Inject writes the span context of ctx into h as W3C traceparent/tracestate headers.
func Inject(ctx context.Context, h http.Header) {
	traceContext.Inject(ctx, propagation.HeaderCarrier(h))
}

// StartDecision starts the gate's decision span as a server span, child of the caller's
// traceparent in h (when present) so that a workflow crossing agents stays one trace.
// Callers end it with EndDecision.
func StartDecision(ctx context.Context, tr trace.Tracer, h http.Header, workflowID, action, caller, callee string) (context.Context, trace.Span) {
	ctx = Extract(ctx, h)
	return tr.Start(ctx, DecisionSpanName, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		AttrWorkflowID.String(workflowID), AttrAction.String(action),
		AttrCaller.String(caller), AttrCallee.String(callee)))
}

// EndDecision records the outcome on the decision span and ends it. A denial sets the
// span status to Error with the reason code as description.
func EndDecision(span trace.Span, decisionID, decision, reason string) {
	span.SetAttributes(AttrDecisionID.String(decisionID), AttrDecision.String(decision), AttrReason.String(reason))
	if decision != "allow" {
		span.SetStatus(codes.Error, reason)
	}
	span.End()
}

// IDs returns the W3C trace-id and span-id of the span in ctx as lower-case hex (for the
// audit event's trace_id and span_id), or empty strings when ctx has no valid span.
func IDs(ctx context.Context) (traceID, spanID string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}

// Transport wraps base (http.DefaultTransport when nil) so that every outgoing request
// carries the traceparent of its context: the gate's forward call and an agent's call to
// the next agent continue the same trace.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper{base}
}

type roundTripper struct{ base http.RoundTripper }

func (t roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if trace.SpanContextFromContext(r.Context()).IsValid() {
		r = r.Clone(r.Context())
		Inject(r.Context(), r.Header)
	}
	return t.base.RoundTrip(r)
}
