// Package telemetry holds Warden's Prometheus metrics and OpenTelemetry tracing helpers,
// shared by the control plane and the gates.
//
// Metrics are registered on a registry the caller passes in (never the global default
// registry), and no metric carries a SPIFFE ID or any other unbounded value as a label:
// reason codes and stage names are checked against a closed shape and folded to "other"
// otherwise (Prometheus' own advice on label cardinality). Traces follow the W3C Trace
// Context recommendation: one span per gate decision carrying the workflow id, and the
// traceparent header propagated across agents so that one workflow is one trace.
package telemetry
