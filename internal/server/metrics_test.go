package server_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/telemetry"
)

// TestMetrics: SVIDs issued, renewed and revoked are counted, the trust-state version is
// tracked, and no SPIFFE ID appears in the metrics.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	dir := t.TempDir()
	srv, err := server.New(context.Background(), server.Config{TrustDomain: td.Name(), DataDir: dir, Store: sqliteStore(t), Metrics: telemetry.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	for srv.URL() == "" {
		time.Sleep(time.Millisecond)
	}
	admin, _ := adminclient.Load(srv.AdminDir(), srv.URL())
	defer admin.HTTP.CloseIdleConnections()
	f := &fixture{srv: srv, admin: admin, url: srv.URL(), dir: dir}
	_, src := f.enroll(t, "logistics")
	if err := src.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ChangeTrust(ctx, "revoke", api.TrustChange{ID: "spiffe://supplychain.example/agent/logistics", Reason: "t"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the trust-state gauge follows the watch
	want := map[string]float64{"issued": 1, "renewed": 1, "revoked": 1}
	for ev, n := range want {
		if got := counter(t, reg, "warden_svids_total", ev); got != n {
			t.Errorf("svids %s = %v, want %v", ev, got, n)
		}
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), "spiffe://") {
					t.Errorf("%s has a SPIFFE ID label", mf.GetName())
				}
			}
		}
		if mf.GetName() == "warden_trust_state_version" && mf.Metric[0].GetGauge().GetValue() < 2 {
			t.Errorf("trust state version gauge = %v", mf.Metric[0].GetGauge().GetValue())
		}
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
