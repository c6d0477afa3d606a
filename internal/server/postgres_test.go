package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/storetest"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

func pgStore(t testing.TB) store.Store {
	st, err := postgres.Open(context.Background(), storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestConcurrentEnrollmentsPostgres(t *testing.T) {
	concurrentEnrollments(t, start(t, options{store: pgStore}))
}

// TestReplicasSharePostgres: two control-plane replicas share one PostgreSQL and one CA
// directory; a revocation made through one reaches a follower of the other within 1 s,
// and the other refuses the revoked agent's renewal.
func TestReplicasSharePostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	open := func(t testing.TB) store.Store {
		st, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a := start(t, options{store: open})
	// Replica B: same data dir (CA), same database.
	srvB, err := server.New(context.Background(), server.Config{TrustDomain: td.Name(), DataDir: a.dir, Store: open(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srvB.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	for srvB.URL() == "" {
		time.Sleep(time.Millisecond)
	}
	_, agent := a.enroll(t, "procurement")
	fo := truststate.NewFollower(truststate.FollowerConfig{URL: srvB.URL(), Client: agent.HTTPClient(), Bundle: agent, TrustDomain: td})
	updates := make(chan *truststate.Document, 8)
	fctx, fcancel := context.WithCancel(ctx)
	fdone := make(chan struct{})
	go func() { defer close(fdone); _ = fo.Run(fctx, func(d *truststate.Document) { updates <- d }) }()
	defer func() { fcancel(); <-fdone }()
	<-updates
	start := time.Now()
	if _, err := a.admin.ChangeTrust(ctx, "revoke", api.TrustChange{ID: "spiffe://supplychain.example/agent/procurement", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(time.Second)
wait:
	for {
		select {
		case d := <-updates:
			if _, ok := d.IsRevoked("spiffe://supplychain.example/agent/procurement", ""); ok {
				t.Logf("replica B streamed the revocation after %s", time.Since(start))
				break wait
			}
		case <-timeout:
			t.Fatal("replica B did not stream the revocation within 1s")
		}
	}
	agent.HTTPClient().CloseIdleConnections()
	svid, _ := agent.GetX509SVID()
	bundle, _ := agent.GetX509BundleForTrustDomain(td)
	viaB, err := sdk.NewSource(sdk.SourceConfig{ServerURL: srvB.URL(), SVID: svid, Bundle: bundle})
	if err != nil {
		t.Fatal(err)
	}
	defer viaB.HTTPClient().CloseIdleConnections()
	if got := reason(viaB.Renew(ctx)); got != api.ReasonIdentityRevoked {
		t.Errorf("replica B: renewal of a revoked agent: %q", got)
	}
}

// TestApprovalHappyPathPostgres runs the approvals happy path on PostgreSQL.
func TestApprovalHappyPathPostgres(t *testing.T) { approvalHappyPath(t, pgStore) }
