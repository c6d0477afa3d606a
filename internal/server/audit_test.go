package server_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/store/sqlite"
)

// startAudited starts a control plane whose audit log lives in its own SQLite store.
func startAudited(t *testing.T) (*fixture, audit.Storage, *audit.Log) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	lg, err := server.OpenAudit(ctx, st, dir, td.Name(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	storage, err := audit.NewSQLite(ctx, st.DB())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(ctx, server.Config{TrustDomain: td.Name(), DataDir: dir, Store: st, Audit: lg})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(sctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	for srv.URL() == "" {
		time.Sleep(time.Millisecond)
	}
	admin, err := adminclient.Load(srv.AdminDir(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.HTTP.CloseIdleConnections)
	return &fixture{srv: srv, admin: admin, url: srv.URL(), dir: dir}, storage, lg
}

func events(t *testing.T, st audit.Storage) []audit.Event {
	t.Helper()
	n, err := st.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	recs, err := st.Records(context.Background(), 0, n)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, r := range recs {
		ev, err := audit.ParseEvent(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// TestLifecycleEventsAudited: enrollment, a refused token reuse, a renewal and a
// revocation each leave an event with its outcome and reason code.
func TestLifecycleEventsAudited(t *testing.T) {
	f, st, _ := startAudited(t)
	ctx := context.Background()
	_, src := f.enroll(t, "procurement")
	if err := src.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.ChangeTrust(ctx, "revoke", api.TrustChange{ID: "spiffe://supplychain.example/agent/procurement", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := src.Renew(ctx); reason(err) != api.ReasonIdentityRevoked {
		t.Fatalf("renewal after revoke: %v", err)
	}
	want := []struct{ kind, outcome, reason string }{
		{"enrollment", "granted", "enrollment_granted"},
		{"renewal", "granted", "renewal_granted"},
		{"revocation", "revoked", "operator_revoke"},
		{"renewal", "refused", "identity_revoked"},
	}
	got := events(t, st)
	if len(got) != len(want) {
		t.Fatalf("%d events: %+v", len(got), got)
	}
	for i, w := range want {
		e := got[i]
		if string(e.Kind) != w.kind || e.Outcome != w.outcome || e.Reason != w.reason || e.Subject != "spiffe://supplychain.example/agent/procurement" {
			t.Errorf("event %d = %s/%s/%s about %s, want %+v", i, e.Kind, e.Outcome, e.Reason, e.Subject, w)
		}
	}
}

// TestGateShipsDecisions: a gate ships decision events with its own SVID; events naming
// another gate, or lifecycle kinds, are refused whole.
func TestGateShipsDecisions(t *testing.T) {
	f, st, _ := startAudited(t)
	_, gateSrc := f.enroll(t, "vendor-portal")
	self := "spiffe://supplychain.example/agent/vendor-portal"
	sink := audit.HTTPSink{URL: f.url, Client: gateSrc.HTTPClient()}
	ev := func(id, gateID string, kind audit.Kind) []byte {
		e := audit.Event{V: 1, ID: id, Kind: kind, Time: time.Now(), GateID: gateID, Caller: "spiffe://supplychain.example/agent/procurement",
			Callee: self, Action: "purchase_order.create", Reason: "policy_allow"}
		if kind == audit.KindDecision {
			e.Decision = audit.DecisionAllow
		}
		b, err := e.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ctx := context.Background()
	if err := sink.Ship(ctx, [][]byte{ev("dec-1", self, audit.KindDecision), ev("dec-2", self, audit.KindDecision)}); err != nil {
		t.Fatal(err)
	}
	for name, batch := range map[string][][]byte{
		"another-gates-id": {ev("dec-3", "spiffe://supplychain.example/agent/logistics", audit.KindDecision)},
		"lifecycle-kind":   {ev("rev-1", self, audit.KindRevocation)},
		"garbage":          {[]byte(`{"v":1,"id":"x"`)},
		"mixed":            {ev("dec-4", self, audit.KindDecision), ev("dec-5", "spiffe://x/agent/y", audit.KindDecision)},
	} {
		if err := sink.Ship(ctx, batch); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var ids []string
	for _, e := range events(t, st) {
		if e.Kind == audit.KindDecision {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) != 2 || ids[0] != "dec-1" || ids[1] != "dec-2" {
		t.Errorf("decision events in the log: %v", ids)
	}
}
