package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/warden-a2a/warden/internal/telemetry"
)

func TestTracerProviderExportsToOTLPCollector(t *testing.T) {
	var got atomic.Int64
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			got.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	ctx := context.Background()
	tp, err := telemetry.NewTracerProvider(ctx, telemetry.TracingConfig{ServiceName: "warden-gate", OTLPEndpoint: collector.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, span := telemetry.StartDecision(ctx, tp.Tracer("warden/gate"), http.Header{}, "wf-1", "po.create", "a", "b")
	telemetry.EndDecision(span, "d-1", "allow", "")
	if err := tp.Shutdown(ctx); err != nil { // flushes
		t.Fatal(err)
	}
	if got.Load() == 0 {
		t.Fatal("the collector received no OTLP trace export")
	}
}

func TestTracerProviderRejectsBadEndpoint(t *testing.T) {
	for _, ep := range []string{"collector:4318", "ftp://x", "http://"} {
		if _, err := telemetry.NewTracerProvider(context.Background(), telemetry.TracingConfig{OTLPEndpoint: ep}); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
}
