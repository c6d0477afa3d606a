package telemetry

import (
	"context"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TracingConfig configures NewTracerProvider.
type TracingConfig struct {
	// ServiceName is the resource's service.name, e.g. "warden-gate".
	ServiceName string
	// OTLPEndpoint is the base URL of an OTLP/HTTP collector (spans go to
	// <endpoint>/v1/traces). Empty: spans are created (their ids still reach audit events
	// and the traceparent header) but exported nowhere.
	OTLPEndpoint string
}

// NewTracerProvider returns a tracer provider for cfg. The caller passes it where
// tracing is used (no global provider is set) and calls Shutdown on exit to flush.
func NewTracerProvider(ctx context.Context, cfg TracingConfig) (*sdktrace.TracerProvider, error) {
	res := resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName))
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if cfg.OTLPEndpoint != "" {
		u, err := url.Parse(cfg.OTLPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("telemetry: OTLP endpoint %q is not an http(s) URL", cfg.OTLPEndpoint)
		}
		eopts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.JoinPath("v1", "traces").String())}
		exp, err := otlptracehttp.New(ctx, eopts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}
