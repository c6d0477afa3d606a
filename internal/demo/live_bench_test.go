package demo_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/demo"
	"github.com/warden-a2a/warden/sdk"
)

// liveRig is a control plane, procurement (TPM-attested, `warden enroll --watch`), and
// vendor-portal's agent behind several inbound gates, every piece a child process: what
// an operator's live control has to reach.
type liveRig struct {
	st    *demo.Stack
	buyer *demo.Agent
	gates []*demo.Gate
}

func startLiveRig(tb testing.TB, ctx context.Context, gates int) *liveRig {
	tb.Helper()
	st, err := demo.StartStack(ctx, demo.StackConfig{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(st.Close)
	r := &liveRig{st: st}
	if r.buyer, err = st.Enrol(ctx, demo.AgentSpec{Name: "procurement", Role: "procurement", Class: "transactional", Zone: "cloud", TPMSeed: 3101}); err != nil {
		tb.Fatal(err)
	}
	vendor, err := st.Enrol(ctx, demo.AgentSpec{Name: "vendor-portal", Role: "vendor", Class: "transactional", Zone: "partner-edge", TPMSeed: 3102})
	if err != nil {
		tb.Fatal(err)
	}
	upstream, stop, err := demo.ServeA2A(filepath.Join(st.SockDir, "vendor-agent.sock"), demo.OrderAgent{Name: "vendor-portal"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	for i := range gates {
		g, err := st.StartGate(ctx, demo.GateSpec{Name: fmt.Sprintf("vendor-portal-%d", i), Mode: "inbound", Self: vendor.ID.String(),
			SVIDDir: vendor.Dir, Upstream: upstream, Zone: "partner-edge"})
		if err != nil {
			tb.Fatal(err)
		}
		r.gates = append(r.gates, g)
	}
	for _, g := range r.gates { // every gate lets the probe through before anything is engaged
		if res := r.untilCode(ctx, g, "", 30*time.Second); res.Observed != "allow" {
			tb.Fatalf("gate %s: the probe is refused before any control: %s", g.Name, res.Reason)
		}
	}
	return r
}

// probe is procurement approving a purchase order at g: a transactional action, allowed
// by the default policies, stopped by each live control.
func (r *liveRig) probe(ctx context.Context, g *demo.Gate) demo.CallResult {
	in := sdk.Intent{Audience: g.Self, Action: "purchase_order.approve", Resource: "Order/PO-B", Workflow: "bench"}
	return demo.CallAs(ctx, r.buyer, g.Addr, in, demo.RPCMessage("approve PO-B", map[string]any{"warden.amount": 10, "warden.currency": "EUR"}))
}

// untilCode probes g until the refusal code is code ("": until allowed) or timeout.
func (r *liveRig) untilCode(ctx context.Context, g *demo.Gate, code string, timeout time.Duration) demo.CallResult {
	deadline := time.Now().Add(timeout)
	for {
		res := r.probe(ctx, g)
		if (code == "" && res.Observed == "allow") || (code != "" && res.Code == code) || time.Now().After(deadline) {
			return res
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// control is one live control: the CLI command that engages it, the refusal it causes,
// and the command that lifts it.
type control struct {
	name         string
	engage, lift []string
	code         string
}

var controls = []control{
	{"killswitch", []string{"killswitch", "engage", "--action", "purchase_order.approve", "--reason", "bench"},
		[]string{"killswitch", "release", "--action", "purchase_order.approve", "--reason", "bench"}, "kill_switch"},
	{"incident", []string{"incident", "start", "--reason", "bench"}, []string{"incident", "end", "--reason", "bench"}, "incident_mode"},
	{"zone", []string{"zone", "set", "cloud", "--state", "quarantined", "--reason", "bench"},
		[]string{"zone", "set", "cloud", "--state", "normal", "--reason", "bench"}, "zone_quarantined"},
}

// measure runs c's engage command and returns the time from its start until every gate
// refused the probe with c.code; then it lifts the control and waits until every gate
// lets the probe through again.
func (r *liveRig) measure(ctx context.Context, tb testing.TB, c control) time.Duration {
	start := time.Now()
	if res := r.st.Admin(ctx, c.engage...); res.Err != nil {
		tb.Fatalf("%s: %s", res.Command, res.Message())
	}
	var wg sync.WaitGroup
	took := make([]time.Duration, len(r.gates))
	for i, g := range r.gates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := r.untilCode(ctx, g, c.code, 10*time.Second); res.Code != c.code {
				tb.Errorf("gate %s: %s not refused %s within 10 s: %s", g.Name, c.name, c.code, res.Reason)
			}
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	if res := r.st.Admin(ctx, c.lift...); res.Err != nil {
		tb.Fatalf("%s: %s", res.Command, res.Message())
	}
	for _, g := range r.gates {
		if res := r.untilCode(ctx, g, "", 10*time.Second); res.Observed != "allow" {
			tb.Fatalf("gate %s: still refused after %s was lifted: %s", g.Name, c.name, res.Reason)
		}
	}
	return slices.Max(took)
}

// BenchmarkLiveControlToRefusal measures, for a kill switch, an incident and a zone
// quarantine, the time from the start of the operator's CLI command (a new process:
// `warden killswitch engage ...`) until every one of three gates (`warden gate` processes)
// refuses the next call with the control's reason code. It reports p50, p99 and the
// maximum over b.N runs (docs/benchmarks.md, "Live controls"):
//
//	go test -run '^$' -bench LiveControlToRefusal -benchtime 50x ./internal/demo/
func BenchmarkLiveControlToRefusal(b *testing.B) {
	ctx := context.Background()
	r := startLiveRig(b, ctx, 3)
	for _, c := range controls {
		b.Run(c.name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				took = append(took, r.measure(ctx, b, c))
			}
			slices.Sort(took)
			pct := func(p float64) float64 {
				return float64(took[min(len(took)-1, int(p*float64(len(took))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
		})
	}
}

// TestLiveControlsHoldWithControlPlaneDown: controls engaged while the control plane runs
// stay enforced when it goes away — by a running gate and by a gate restarted without it,
// from its cached trust state — fail closed.
func TestLiveControlsHoldWithControlPlaneDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane, two attested agents and a gate as processes")
	}
	ctx := context.Background()
	r := startLiveRig(t, ctx, 1)
	g := r.gates[0]
	c := controls[0]
	if res := r.st.Admin(ctx, c.engage...); res.Err != nil {
		t.Fatalf("%s: %s", res.Command, res.Message())
	}
	if res := r.untilCode(ctx, g, c.code, 10*time.Second); res.Code != c.code {
		t.Fatalf("not refused: %s", res.Reason)
	}
	if err := r.st.StopServer(); err != nil {
		t.Fatal(err)
	}
	if res := r.probe(ctx, g); res.Code != c.code {
		t.Errorf("control plane down, running gate: %s, want %s", res.Reason, c.code)
	}
	if err := g.Proc.Restart(); err != nil {
		t.Fatal(err)
	}
	// The restarted gate answers from its cached trust state: still refused.
	if res := r.untilCode(ctx, g, c.code, 30*time.Second); res.Code != c.code {
		t.Errorf("control plane down, restarted gate: %s, want %s", res.Reason, c.code)
	}
}
