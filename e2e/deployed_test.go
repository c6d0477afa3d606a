package e2e_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/cli"
	"github.com/warden-a2a/warden/internal/demo"
	"github.com/warden-a2a/warden/internal/proc"
)

// TestMain lets this test binary act as the warden binary for its children.
func TestMain(m *testing.M) {
	if proc.IsChild() {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// svidTTL is the control plane's --svid-ttl here: agents renew every ~10 s.
const svidTTL = 20 * time.Second

// TestDeployedPath runs Warden as an operator does — `warden server`, `warden enroll
// --watch` per agent (procurement and vendor-portal TPM-attested with the simulator,
// demand-planner with its join token alone), vendor-portal's inbound gate and the
// outbound gates of procurement and demand-planner, each a separate process — with
// unmodified a2a-go agents and clients, and checks:
//
//  1. honest traffic (SendMessage, SendStreamingMessage, GetTask) for three SVID
//     lifetimes while every agent's SVID rotates at least three times: no call refused;
//  2. the control plane stopped: traffic goes on; started again on the same port:
//     every agent renews again, still no call refused;
//  3. `warden revoke` of procurement: its next calls are refused identity_revoked at
//     vendor-portal's gate within a bounded time (and the refusal is in the audit log),
//     demand-planner's calls go on.
func TestDeployedPath(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the deployed path for over a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	st, err := demo.StartStack(ctx, demo.StackConfig{Dir: t.TempDir(), ServerFlags: []string{"--svid-ttl", svidTTL.String()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	defer func() {
		if t.Failed() {
			for _, p := range st.Procs.Processes() {
				t.Logf("last lines of %s:\n%s", p.LogPath(), p.Tail(25))
			}
		}
	}()
	enrol := func(spec demo.AgentSpec) *demo.Agent {
		a, err := st.Enrol(ctx, spec)
		if err != nil {
			t.Fatalf("enrol %s: %v", spec.Name, err)
		}
		return a
	}
	procurement := enrol(demo.AgentSpec{Name: "procurement", Role: "procurement", Class: "transactional", Zone: "cloud", TPMSeed: 2001})
	vendor := enrol(demo.AgentSpec{Name: "vendor-portal", Role: "vendor-portal", Class: "transactional", Zone: "partner-edge", TPMSeed: 2002})
	planner := enrol(demo.AgentSpec{Name: "demand-planner", Role: "forecasting", Class: "advisory", Zone: "cloud"})
	agents := []*demo.Agent{procurement, vendor, planner}

	upstream, stopAgent, err := demo.ServeA2A(filepath.Join(st.SockDir, "vendor-portal-agent.sock"), demo.OrderAgent{Name: "vendor-portal"})
	if err != nil {
		t.Fatal(err)
	}
	defer stopAgent()
	startGate := func(spec demo.GateSpec) *demo.Gate {
		g, err := st.StartGate(ctx, spec)
		if err != nil {
			t.Fatalf("gate %s: %v", spec.Name, err)
		}
		return g
	}
	inbound := startGate(demo.GateSpec{Name: "vendor-portal", Mode: "inbound", Self: vendor.ID.String(), SVIDDir: vendor.Dir,
		Upstream: upstream, Zone: "partner-edge"})
	outbound := func(a *demo.Agent, zone string) *demo.Gate {
		return startGate(demo.GateSpec{Name: a.Name, Mode: "outbound", Self: a.ID.String(), SVIDDir: a.Dir,
			Upstream: "https://" + inbound.Addr, Zone: zone, YAML: fmt.Sprintf(`outbound:
  audience: %[1]s
  upstream_id: %[1]s
  allowed_uids: [%[2]d]
  defaults:
    GetTask: {action: purchase_order.read, resource: Order/e2e}
`, vendor.ID, os.Getuid())})
	}
	buyerGate, readerGate := outbound(procurement, "cloud"), outbound(planner, "cloud")
	buyer, _, err := demo.OutboundClient(ctx, buyerGate.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer buyer.Destroy()
	reader, _, err := demo.OutboundClient(ctx, readerGate.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Destroy()

	var tr traffic
	var rot rotations
	tctx, stopTraffic := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, f := range []func(){
		func() { rot.watch(tctx, agents) },
		func() { tr.orders(tctx, "procurement", buyer) },
		func() { tr.reads(tctx, "demand-planner", reader) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	defer func() { stopTraffic(); wg.Wait() }()
	// wrongful returns the first refusals of honest calls that ended by before (zero:
	// any time), "" when there are none.
	wrongful := func(before time.Time) string {
		for _, a := range []string{"procurement", "demand-planner"} {
			if f := tr.failures(a, before); len(f) > 0 {
				return fmt.Sprintf("%d wrongful refusals of %s's calls, first: %s", len(f), a, strings.Join(f[:min(len(f), 5)], "\n"))
			}
		}
		return ""
	}
	// revoked is set once procurement's refusals are expected.
	var revoked time.Time
	// wait waits for cond, failing at once on a wrongful refusal or a child that exited
	// on its own.
	wait := func(timeout time.Duration, what string, cond func() bool) {
		t.Helper()
		err := proc.WaitFor(ctx, timeout, what, func() (bool, error) {
			if w := wrongful(revoked); w != "" {
				return false, errors.New(w)
			}
			if failed := st.FailedChildren(); failed != "" {
				return false, errors.New(failed)
			}
			return cond(), nil
		})
		if err != nil {
			t.Fatalf("%s: %v\nSVIDs:\n%s", what, err, rot.String())
		}
	}
	noFailures := func(phase string) {
		t.Helper()
		if w := wrongful(revoked); w != "" {
			t.Fatalf("%s: %s\nSVIDs:\n%s", phase, w, rot.String())
		}
	}

	// 1. Three SVID lifetimes of honest traffic; every agent renews at least three times.
	start := time.Now()
	wait(3*svidTTL+90*time.Second, "three SVID lifetimes with three renewals of every agent", func() bool {
		if time.Since(start) < 3*svidTTL {
			return false
		}
		for _, a := range agents {
			if rot.since(a.Name, start) < 3 {
				return false
			}
		}
		return true
	})
	noFailures("three SVID lifetimes")
	for _, a := range []string{"procurement", "demand-planner"} {
		if ok, _ := tr.count(a, start, time.Time{}); ok < 10 {
			t.Fatalf("only %d calls of %s went through in three SVID lifetimes", ok, a)
		}
	}
	ops := map[string]bool{}
	for _, c := range tr.snapshot() {
		ops[c.op] = ops[c.op] || c.err == nil
	}
	for _, op := range []string{"SendMessage", "SendStreamingMessage", "GetTask"} {
		if !ops[op] {
			t.Fatalf("no %s went through", op)
		}
	}
	checkPresentedSVID(ctx, t, planner, inbound.Addr, vendor)

	// 2. A control-plane restart: the gates decide from what they hold, the agents renew
	// again once it is back.
	if err := st.StopServer(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	// Down until an agent's SVID has less than 7 s left — past its renewal time (at most
	// 0.6 of its lifetime, 8 s before expiry), so its renewal has been failing — and calls
	// went on meanwhile; at the latest with 5 s left, so that every agent can still renew
	// before its SVID expires (an expired SVID would refuse honest calls).
	var dueAgent string
	var left time.Duration
	wait(2*svidTTL+60*time.Second, "calls to go through while the control plane is down and a renewal is overdue", func() bool {
		p, _ := tr.count("procurement", down, time.Time{})
		d, _ := tr.count("demand-planner", down, time.Time{})
		dueAgent, left = shortestLife(agents)
		return left < 7*time.Second && p >= 3 && d >= 3 || left < 5*time.Second
	})
	if err := st.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	t.Logf("control plane down for %s; %s's renewal overdue, %s left on its SVID at the restart", up.Sub(down).Round(time.Millisecond), dueAgent, left.Round(time.Millisecond))
	for _, a := range []string{"procurement", "demand-planner"} {
		if ok, _ := tr.count(a, down, up); ok == 0 {
			t.Errorf("no call of %s went through while the control plane was down", a)
		}
	}
	wait(2*svidTTL+60*time.Second, "every agent to renew after the restart", func() bool {
		for _, a := range agents {
			if rot.since(a.Name, up) < 1 {
				return false
			}
		}
		return true
	})
	noFailures("control-plane restart")

	// 3. Revocation, felt at vendor-portal's gate.
	procurement.Watch.ExpectExit() // its renewal is refused from now on
	revokeStart := time.Now()
	revoked = revokeStart // procurement's calls ending from here may be refused
	if r := st.Admin(ctx, "revoke", "--id", procurement.ID.String(), "--reason", "e2e: key exposed"); r.Err != nil {
		t.Fatal(r.Err)
	}
	var felt time.Duration
	wait(30*time.Second, "procurement's calls to be refused identity_revoked", func() bool {
		for _, c := range tr.snapshot() {
			if c.agent == "procurement" && c.start.After(revokeStart) && c.err != nil && strings.Contains(c.err.Error(), "identity_revoked") {
				felt = c.end.Sub(revokeStart)
				return true
			}
		}
		return false
	})
	t.Logf("revocation felt at the gate %s after `warden revoke` started", felt.Round(time.Millisecond))
	if felt > 15*time.Second {
		t.Errorf("revocation felt after %s, want within 15s", felt)
	}
	for _, c := range tr.snapshot() {
		if c.agent == "procurement" && c.err != nil && !c.end.Before(revokeStart) && !strings.Contains(c.err.Error(), "identity_revoked") {
			t.Errorf("procurement's %s after the revocation refused for another reason: %v", c.op, c.err)
		}
	}
	ev, err := st.WaitAudit(ctx, 60*time.Second, "the identity_revoked refusal", func(ev audit.Event) bool {
		return ev.Kind == audit.KindDecision && ev.Reason == "identity_revoked" && ev.Caller == procurement.ID.String() && ev.GateID == vendor.ID.String()
	})
	if err != nil {
		t.Error(err)
	} else {
		t.Logf("refusal %s in the audit log", ev.ID)
	}
	// demand-planner goes on, unrefused, after the revocation.
	after := time.Now()
	wait(60*time.Second, "demand-planner's calls after the revocation", func() bool {
		ok, _ := tr.count("demand-planner", after, time.Time{})
		return ok >= 3
	})
	stopTraffic()
	wg.Wait()
	if f := tr.failures("demand-planner", time.Time{}); len(f) > 0 {
		t.Fatalf("%d wrongful refusals of demand-planner, first: %s", len(f), f[0])
	}
	if failed := st.FailedChildren(); failed != "" {
		t.Errorf("children exited unexpectedly:\n%s", failed)
	}
	p, _ := tr.count("procurement", start, revokeStart)
	d, _ := tr.count("demand-planner", start, time.Time{})
	t.Logf("%d calls of procurement and %d of demand-planner went through; SVIDs:\n%s", p, d, rot.String())
}

// checkPresentedSVID: the inbound gate presents an unexpired SVID and follows
// vendor-portal's files: within a few seconds (its reload poll) a handshake shows the
// serial enroll --watch last wrote.
func checkPresentedSVID(ctx context.Context, t *testing.T, client *demo.Agent, addr string, vendor *demo.Agent) {
	t.Helper()
	conf, err := client.MTLS()
	if err != nil {
		t.Fatal(err)
	}
	var got, want string
	err = proc.WaitFor(ctx, 15*time.Second, "the inbound gate to present vendor-portal's newest SVID", func() (bool, error) {
		want = vendor.Serial()
		d := tls.Dialer{Config: conf}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, fmt.Errorf("handshake with the inbound gate: %w", err)
		}
		leaf := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
		conn.Close()
		if time.Now().After(leaf.NotAfter) {
			return false, fmt.Errorf("the inbound gate presents an SVID that expired at %s", leaf.NotAfter)
		}
		got = leaf.SerialNumber.Text(16)
		return got == want, nil
	})
	if err != nil {
		t.Errorf("%v (presents %s, enroll --watch holds %s)", err, got, want)
	}
}

// shortestLife names the agent whose SVID on disk expires first, and how long it has left.
func shortestLife(agents []*demo.Agent) (string, time.Duration) {
	name, left := "", time.Duration(1<<62)
	for _, a := range agents {
		sv, _, err := a.Files()
		if err != nil {
			continue
		}
		if l := time.Until(sv.Certificates[0].NotAfter); l < left {
			name, left = a.Name, l
		}
	}
	return name, left
}
