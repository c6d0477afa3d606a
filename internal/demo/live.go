package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/proc"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// Operating it live (docs/operator-guide.md, "Live controls and the incident runbook"):
// an incident, a kill switch, central policy pushes (a new forbid felt at every gate, a
// bundle refused), a purchase order without fresh attestation, and a replayed workflow
// step — each through gates run as `warden gate --config` children, each control by the
// operator's CLI.

// liveEnv is what the live rows share.
type liveEnv struct {
	*env
	ledger   *Gate // /gate/ledger: payments, approvals on the control plane
	vendorWF *Gate // a replica of vendor-portal's gate with a workflow store
	payGate  *Gate // payment-release's inbound gate (invoice.submit), workflow store
	settle   *Gate // /gate/settlement: payments, workflow store
	payer    *Agent
	backup   *Agent // a second payments agent, not an incident responder
	buyer    *Agent
	vendor   *Agent
	stops    []func()
	started  []string
}

func (l *liveEnv) stop() {
	for i := len(l.stops) - 1; i >= 0; i-- {
		l.stops[i]()
	}
}

// liveStory starts the live rows' gates and runs the rows in order; each row leaves the
// trust state and the policy as it found them.
func liveStory(ctx context.Context, e *env) {
	l, err := startLive(ctx, e)
	defer l.stop()
	if err != nil {
		e.record(Step{Name: "live operations: start the gates", Kind: "workflow", Expected: "allow", Observed: "deny",
			Reason: err.Error(), Command: commands(l.started...)})
		return
	}
	for _, rows := range []func(context.Context, *liveEnv){incidentRows, killSwitchRows, policyPushRows, staleAttestationRows, workflowRows} {
		rows(ctx, l)
	}
}

func startLive(ctx context.Context, e *env) (*liveEnv, error) {
	l := &liveEnv{env: e}
	var err error
	for _, n := range []struct {
		name string
		a    **Agent
	}{{"payment-release", &l.payer}, {"procurement", &l.buyer}, {"vendor-portal", &l.vendor}} {
		if *n.a, err = e.agent(n.name); err != nil {
			return l, err
		}
	}
	fmt.Fprintln(e.out, "\nLive operations: gates that follow the policy the control plane distributes, with workflow state:")
	enrol := func(spec AgentSpec) (*Agent, error) {
		a, err := e.Enrol(ctx, spec)
		if a != nil {
			l.started = append(l.started, a.Commands...)
			e.agents[spec.Name] = a
		}
		return a, err
	}
	if l.backup, err = enrol(AgentSpec{Name: "payment-backup", Role: "payments", Class: "regulated", Zone: "finance", TPMSeed: 9201}); err != nil {
		return l, err
	}
	ledgerID, err := enrol(AgentSpec{Name: "ledger", Kind: "gate", Role: "gate", Class: "regulated", Zone: "finance", TPMSeed: 9202})
	if err != nil {
		return l, err
	}
	settleID, err := enrol(AgentSpec{Name: "settlement", Kind: "gate", Role: "gate", Class: "regulated", Zone: "finance", TPMSeed: 9203})
	if err != nil {
		return l, err
	}
	const wf = "workflow:\n  store: control_plane\n"
	for _, g := range []struct {
		gate             **Gate
		name, self, zone string
		svid             string
		yaml             string
	}{
		{&l.ledger, "ledger", ledgerID.ID.String(), "finance", ledgerID.Dir, "approvals:\n  control_plane: true\n  required:\n    payment-release-needs-two-approvals: 2\n"},
		{&l.vendorWF, "vendor-portal-wf", l.vendor.ID.String(), "partner-edge", l.vendor.Dir, wf},
		{&l.payGate, "payment-release", l.payer.ID.String(), "finance", l.payer.Dir, wf},
		{&l.settle, "settlement", settleID.ID.String(), "finance", settleID.Dir, wf},
	} {
		upstream, stop, err := ServeA2A(filepath.Join(e.SockDir, g.name+"-live.sock"), OrderAgent{Name: g.name})
		if err != nil {
			return l, err
		}
		l.stops = append(l.stops, stop)
		gt, err := e.StartGate(ctx, GateSpec{Name: g.name, Mode: "inbound", Self: g.self, SVIDDir: g.svid, Upstream: upstream, Zone: g.zone, YAML: g.yaml})
		if gt != nil {
			l.started = append(l.started, gt.Proc.Command+" &")
			fmt.Fprintf(e.out, "       $ %s &   # inbound gate %s\n", gt.Proc.Command, g.name)
		}
		if err != nil {
			return l, err
		}
		*g.gate = gt
	}
	return l, nil
}

// pay is a payment.release call of amount EUR for invoice by caller at gate.
func (l *liveEnv) pay(ctx context.Context, s *Step, caller *Agent, gate *Gate, invoice, wf string, amount int, apr string) CallResult {
	in := sdk.Intent{Audience: gate.Self, Action: "payment.release", Resource: "Invoice/" + invoice, Workflow: wf, Approval: apr}
	body := RPCMessage(fmt.Sprintf("release %d EUR for %s (%d)", amount, invoice, time.Now().UnixNano()),
		map[string]any{"warden.amount": amount, "warden.currency": "EUR"})
	s.Command = commands(s.Command, curlCommand(l.Stack, caller, gate.Addr, in))
	return CallAs(ctx, caller, gate.Addr, in, body)
}

// call is one call of action on resource by caller at gate.
func (l *liveEnv) call(ctx context.Context, s *Step, caller *Agent, gate *Gate, action, resource, wf string) CallResult {
	in := sdk.Intent{Audience: gate.Self, Action: action, Resource: resource, Workflow: wf}
	body := RPCMessage(fmt.Sprintf("%s %s (%d)", action, resource, time.Now().UnixNano()), map[string]any{"warden.amount": 900, "warden.currency": "EUR"})
	s.Command = commands(s.Command, curlCommand(l.Stack, caller, gate.Addr, in))
	return CallAs(ctx, caller, gate.Addr, in, body)
}

// until repeats call until its reason code is code (or, with code "", until it is
// allowed), for at most timeout; it returns the last result and how long it took from
// since. A gate applies a new trust state to its next request: this measures how long the
// control took to reach it.
func until(ctx context.Context, since time.Time, timeout time.Duration, code string, call func() CallResult) (CallResult, time.Duration) {
	var r CallResult
	for {
		r = call()
		if (code == "" && r.Observed == "allow") || (code != "" && r.Code == code) || time.Since(since) > timeout || ctx.Err() != nil {
			return r, time.Since(since)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

// incidentRows: an incident with payment-release as the only responder: payment-backup's
// payment is refused incident_mode, payment-release's goes through, and after the end
// payment-backup's goes through again.
func incidentRows(ctx context.Context, l *liveEnv) {
	s := Step{Name: "incident: `warden incident start` (responder payment-release); payment-backup's payment is refused", Kind: "workflow", Expected: "deny"}
	start := time.Now()
	r := l.Admin(ctx, "incident", "start", "--reason", "INC-7: forged invoices under investigation", "--responders", "payment-release", "--operator", "oncall")
	s.Command = r.Command
	if r.Err != nil {
		l.recordCLI(s, r)
		return
	}
	res, took := until(ctx, start, 5*time.Second, "incident_mode", func() CallResult {
		return l.pay(ctx, &Step{}, l.backup, l.ledger, "INV-50", "inc-50", 500, "")
	})
	l.pay(ctx, &s, l.backup, l.ledger, "INV-50", "inc-50", 500, "") // the command, shown once
	s.Observed, s.Reason, s.DecisionID = res.Observed, res.Reason, res.DecisionID
	if res.Code == "incident_mode" {
		s.Reason = fmt.Sprintf("refused %s after the CLI call: %s", ms(took), res.Reason)
	}
	l.record(s)

	s = Step{Name: "incident: responder payment-release releases a payment during the incident", Kind: "workflow", Expected: "allow"}
	res = l.pay(ctx, &s, l.payer, l.ledger, "INV-51", "inc-51", 500, "")
	s.Observed, s.Reason, s.DecisionID = res.Observed, res.Reason, res.DecisionID
	l.record(s)

	s = Step{Name: "incident: `warden incident end`; payment-backup's payment goes through again", Kind: "workflow", Expected: "allow"}
	start = time.Now()
	r = l.Admin(ctx, "incident", "end", "--reason", "INC-7 contained: forged invoices blocked at the source", "--operator", "oncall")
	s.Command = r.Command
	if r.Err != nil {
		l.recordCLI(s, r)
		return
	}
	res, took = until(ctx, start, 5*time.Second, "", func() CallResult {
		return l.pay(ctx, &Step{}, l.backup, l.ledger, "INV-52", "inc-52", 500, "")
	})
	l.pay(ctx, &s, l.backup, l.ledger, "INV-52", "inc-52", 500, "")
	s.Observed, s.Reason, s.DecisionID = res.Observed, res.Reason, res.DecisionID
	if res.Observed == "allow" {
		s.Reason = fmt.Sprintf("allowed %s after the CLI call: %s", ms(took), res.Reason)
	}
	l.record(s)
}

// killSwitchRows: a payment above 10000 approved by two people is stopped by a kill
// switch on payment.release (it beats the permit and the approval), and goes through once
// the switch is released — the approval was not used up by the refused call.
func killSwitchRows(ctx context.Context, l *liveEnv) {
	s := Step{Name: "kill switch: `warden killswitch engage --action payment.release` beats a payment two people approved", Kind: "workflow", Expected: "deny"}
	res := l.pay(ctx, &s, l.payer, l.ledger, "INV-53", "ks-53", 25000, "")
	if res.ApprovalID == "" {
		s.Observed, s.Reason = "allow", "expected approval_required, got "+res.Reason
		l.record(s)
		return
	}
	apr := res.ApprovalID
	if err := os.MkdirAll(filepath.Join(l.Dir, "approvers"), 0o700); err != nil {
		s.Observed, s.Reason = "allow", err.Error()
		l.record(s)
		return
	}
	for _, name := range []string{"carol", "dave"} {
		prefix := filepath.Join(l.Dir, "approvers", name)
		for _, r := range []struct {
			admin bool
			args  []string
		}{
			{false, []string{"approver", "keygen", "--out", prefix}},
			{true, []string{"approver", "add", name, "--pub", prefix + ".pub"}},
			{true, []string{"approve", apr, "--as", name, "--key", prefix + ".key", "--reason", "INV-53 matches the order"}},
		} {
			run := l.Warden
			if r.admin {
				run = l.Admin
			}
			out := run(ctx, r.args...)
			s.Command = commands(s.Command, out.Command)
			if out.Err != nil {
				s.Observed, s.Reason = "allow", out.Message()
				l.record(s)
				return
			}
		}
	}
	start := time.Now()
	r := l.Admin(ctx, "killswitch", "engage", "--action", "payment.release", "--reason", "INC-8: payments to a new bank account", "--operator", "oncall")
	s.Command = commands(s.Command, r.Command)
	if r.Err != nil {
		l.recordCLI(s, r)
		return
	}
	res, took := until(ctx, start, 5*time.Second, "kill_switch", func() CallResult {
		return l.pay(ctx, &Step{}, l.payer, l.ledger, "INV-53", "ks-53", 25000, apr)
	})
	l.pay(ctx, &s, l.payer, l.ledger, "INV-53", "ks-53", 25000, apr)
	s.Observed, s.Reason, s.DecisionID = res.Observed, res.Reason, res.DecisionID
	if res.Code == "kill_switch" {
		s.Reason = fmt.Sprintf("refused %s after the CLI call, approval %s unused: %s", ms(took), apr, res.Reason)
	}
	l.record(s)

	s = Step{Name: "kill switch released: the approved payment goes through", Kind: "workflow", Expected: "allow"}
	start = time.Now()
	r = l.Admin(ctx, "killswitch", "release", "--action", "payment.release", "--reason", "INC-8: bank account verified", "--operator", "oncall")
	s.Command = r.Command
	if r.Err != nil {
		l.recordCLI(s, r)
		return
	}
	res, took = until(ctx, start, 5*time.Second, "", func() CallResult {
		return l.pay(ctx, &Step{}, l.payer, l.ledger, "INV-53", "ks-53", 25000, apr)
	})
	l.pay(ctx, &s, l.payer, l.ledger, "INV-53", "ks-53", 25000, apr)
	s.Observed, s.Reason, s.DecisionID = res.Observed, res.Reason, res.DecisionID
	if res.Observed == "allow" {
		s.Reason = fmt.Sprintf("released %s after the switch was: approval %s now used", ms(took), apr)
	}
	l.record(s)
}

// policyVariant writes a copy of the default bundle (without its test cases, which
// describe the default) at DIR/policies-NAME, changed by edit.
func (l *liveEnv) policyVariant(name string, edit func(dir string) error) (string, error) {
	dst := filepath.Join(l.Dir, "policies-"+name)
	src := l.PoliciesDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "tests" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		return "", err
	}
	return dst, edit(dst)
}

// enforcing returns, per reporting gate (not outbound, not silent), the revision it
// enforces and when it last reported (`warden gates --json`).
func (l *liveEnv) enforcing(ctx context.Context) (map[string]api.GateStatus, string, error) {
	r := l.Admin(ctx, "gates", "--json")
	if r.Err != nil {
		return nil, r.Command, fmt.Errorf("%s", r.Message())
	}
	var gs []api.GateStatus
	if err := json.Unmarshal([]byte(r.Stdout), &gs); err != nil {
		return nil, r.Command, err
	}
	out := map[string]api.GateStatus{}
	for _, g := range gs {
		if g.Mode != "outbound" && !strings.Contains(strings.Join(g.Flags, ","), "silent") {
			out[g.GateID] = g
		}
	}
	return out, r.Command, nil
}

// push runs `warden policy push DIR` with key and returns its result and the revision it
// printed ("" when refused).
func (l *liveEnv) push(ctx context.Context, dir, key, reason string) (string, string, error) {
	r := l.Admin(ctx, "policy", "push", dir, "--key", key, "--reason", reason, "--operator", "policy-team")
	if r.Err != nil {
		return "", r.Command, fmt.Errorf("%s", r.Message())
	}
	f := strings.Fields(r.Stdout) // "pushed revision REV (key ...": ..., or "revision REV is already active ..."
	for i, w := range f {
		if w == "revision" && i+1 < len(f) && len(f[i+1]) == 64 {
			return f[i+1], r.Command, nil
		}
	}
	return "", r.Command, fmt.Errorf("no revision in %q", r.Stdout)
}

// everyGate waits until every reporting gate enforces rev and returns the slowest gate's
// time from since to its report, with the number of gates.
func (l *liveEnv) everyGate(ctx context.Context, rev string, since time.Time, timeout time.Duration) (time.Duration, int, string, error) {
	var cmd string
	for {
		gs, c, err := l.enforcing(ctx)
		cmd = c
		if err != nil {
			return 0, 0, cmd, err
		}
		var slowest time.Duration
		missing := []string{}
		for id, g := range gs {
			if g.PolicyRevision != rev {
				missing = append(missing, id)
				continue
			}
			slowest = max(slowest, g.ReportedAt.Sub(since))
		}
		if len(missing) == 0 {
			return slowest, len(gs), cmd, nil
		}
		if time.Since(since) > timeout {
			return 0, len(gs), cmd, fmt.Errorf("after %s these gates do not enforce %.12s: %s", timeout, rev, strings.Join(missing, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// policyPushRows: a new forbid pushed centrally is enforced by every gate within a second;
// a bundle signed with another key is refused and the gates keep the last good one; the
// default bundle is pushed back.
func policyPushRows(ctx context.Context, l *liveEnv) {
	readInvoice := func(s *Step) CallResult {
		return l.call(ctx, s, l.payer, l.ledger, "invoice.read", "Invoice/INV-1", "")
	}
	s := Step{Name: "policy push: a new forbid (freeze invoice reads) is enforced by every gate (time to the slowest measured)", Kind: "workflow", Expected: "deny"}
	frozen, err := l.policyVariant("freeze", func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "freeze.cedar"), []byte(`// INC-9: no agent reads invoices until the ledger is reconciled.
@id("freeze-invoice-reads")
@reason("invoice reads are frozen while the ledger is reconciled (INC-9)")
forbid (principal is Agent, action == Action::"invoice.read", resource);
`), 0o644)
	})
	if err != nil {
		s.Observed, s.Reason = "allow", err.Error()
		l.record(s)
		return
	}
	start := time.Now()
	rev, cmd, err := l.push(ctx, frozen, l.PolicyKey, "INC-9: freeze invoice reads")
	s.Command = cmd
	if err != nil {
		s.Observed, s.Reason = "allow", "push refused: "+err.Error()
		l.record(s)
		return
	}
	slowest, n, cmd, err := l.everyGate(ctx, rev, start, 10*time.Second)
	s.Command = commands(s.Command, cmd)
	res := readInvoice(&s)
	s.Observed, s.DecisionID = res.Observed, res.DecisionID
	// The time is reported, not asserted: the 1 s target is checked by the benchmark
	// (docs/benchmarks.md, "Live controls"), not by a demo on a loaded machine.
	if err != nil {
		s.Observed, s.Reason = "allow", err.Error()
	} else {
		s.Reason = fmt.Sprintf("%d gates enforce revision %.12s, the slowest %s after the push; payment-release's invoice read: %s", n, rev, ms(slowest), res.Reason)
	}
	l.record(s)

	s = Step{Name: "policy push: a bundle signed with another key is refused; every gate keeps the last good one", Kind: "attack", Expected: "deny"}
	rogue, err := writePolicyKey(filepath.Join(l.Dir, "rogue-policy-key.pem"))
	if err != nil {
		s.Observed, s.Reason = "allow", "demo: "+err.Error()
		l.record(s)
		return
	}
	s.Command = "# a signing key the control plane does not know: " + l.show(rogue)
	_, cmd, err = l.push(ctx, l.PoliciesDir(), rogue, "lift the freeze (unauthorised)")
	s.Command = commands(s.Command, cmd)
	if err == nil {
		s.Observed, s.Reason = "allow", "the control plane accepted a bundle signed with an unknown key"
		l.record(s)
		return
	}
	gs, cmd, gerr := l.enforcing(ctx)
	s.Command = commands(s.Command, cmd)
	still := 0
	for _, g := range gs {
		if g.PolicyRevision == rev {
			still++
		}
	}
	res = readInvoice(&s)
	s.Observed, s.Reason, s.DecisionID = "deny", fmt.Sprintf("%s; %d of %d gates still enforce %.12s; invoice read: %s", err, still, len(gs), rev, res.Code), res.DecisionID
	if gerr != nil || still != len(gs) || res.Observed != "deny" {
		s.Observed = "allow"
	}
	l.record(s)

	s = Step{Name: "policy push: the default bundle back; invoice reads go on at every gate", Kind: "workflow", Expected: "allow"}
	start = time.Now()
	base, cmd, err := l.push(ctx, l.PoliciesDir(), l.PolicyKey, "INC-9 closed: ledger reconciled")
	s.Command = cmd
	if err == nil {
		var cmd string
		slowest, n, cmd, err = l.everyGate(ctx, base, start, 10*time.Second)
		s.Command = commands(s.Command, cmd)
	}
	first := readInvoice(&s)
	res, _ = until(ctx, time.Now(), 3*time.Second, "", func() CallResult { return readInvoice(&Step{}) })
	s.Observed, s.Reason, s.DecisionID = res.Observed, fmt.Sprintf("%d gates back on %.12s within %s; invoice read: %s", n, base, ms(slowest), res.Reason), res.DecisionID
	if first.Observed != "allow" {
		s.Reason += " (the first read after the reports was refused: " + first.Reason + ")"
	}
	if err != nil {
		s.Observed, s.Reason = "deny", err.Error()
	}
	l.record(s)
}

// attestationOf is an agent's attestation result in the current trust state.
func (l *liveEnv) attestationOf(ctx context.Context, id spiffeid.ID) (truststate.Attestation, error) {
	doc, err := l.TrustState(ctx)
	if err != nil {
		return truststate.Attestation{}, err
	}
	return doc.Attestations[id.String()], nil
}

// staleAttestationRows: with a bundle that wants transactional evidence at most 5 s old,
// procurement's purchase order (evidence older than that) is refused attestation_required
// and the control plane pushes it a challenge; its enroll --watch answers with a fresh
// quote and the retry passes. The default bundle is pushed back.
func staleAttestationRows(ctx context.Context, l *liveEnv) {
	s := Step{Name: "a purchase order from an agent without fresh attestation is refused; a challenge is pushed to it", Kind: "workflow", Expected: "deny"}
	strict, err := l.policyVariant("strict", func(dir string) error {
		p := filepath.Join(dir, "guards.cedar")
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		t := strings.Replace(string(b), "context.attestation.age_s <= 600", "context.attestation.age_s <= 5", 1)
		t = strings.Replace(t, "(at most 600 s old)", "(at most 5 s old, INC-10)", 1)
		return os.WriteFile(p, []byte(t), 0o644)
	})
	restore := func(s *Step) {
		_, cmd, err := l.push(ctx, l.PoliciesDir(), l.PolicyKey, "INC-10 closed: the default evidence age again")
		s.Command = commands(s.Command, cmd)
		if err != nil {
			s.Observed, s.Reason = "deny", "restoring the default bundle: "+err.Error()
		}
	}
	if err != nil {
		s.Observed, s.Reason = "allow", err.Error()
		l.record(s)
		return
	}
	start := time.Now()
	rev, cmd, err := l.push(ctx, strict, l.PolicyKey, "INC-10: purchase orders only from agents attested in the last 5 s")
	s.Command = cmd
	if err == nil {
		var cmd string
		_, _, cmd, err = l.everyGate(ctx, rev, start, 10*time.Second)
		s.Command = commands(s.Command, cmd)
	}
	if err != nil {
		s.Observed, s.Reason = "allow", err.Error()
		l.record(s)
		return
	}
	// procurement's evidence must be older than 5 s for the story.
	if a, err := l.attestationOf(ctx, l.buyer.ID); err == nil && time.Since(a.At) < 6*time.Second {
		time.Sleep(6*time.Second - time.Since(a.At))
	}
	res := l.call(ctx, &s, l.buyer, l.vendorWF, "purchase_order.create", "Order/PO-3001", "p2p-3001")
	s.Observed, s.Reason, s.DecisionID = res.Observed, res.Reason, res.DecisionID
	if res.Code == "attestation_required" {
		// The challenge may be answered (and leave the trust state) within milliseconds:
		// the audit log has every one.
		ev, err := l.WaitAudit(ctx, 15*time.Second, "a challenge to procurement", func(ev audit.Event) bool {
			return ev.Kind == audit.KindAttestation && ev.Outcome == "challenged" && ev.Subject == l.buyer.ID.String() && ev.Time.After(start)
		})
		if err == nil {
			s.Reason = fmt.Sprintf("%s; challenge pushed to procurement (rule %s, deadline %s)", res.Code, ev.Detail["rule"], ev.Detail["deadline"])
		} else {
			s.Observed, s.Reason = "allow", res.Code+" but no challenge was pushed: "+err.Error()
		}
	}
	l.record(s)

	s = Step{Name: "procurement answers the challenge with a fresh quote (its enroll --watch); the retry passes", Kind: "workflow", Expected: "allow"}
	s.Command = "# procurement's `warden enroll --watch` renews with fresh TPM evidence when it sees the challenge"
	err = proc.WaitFor(ctx, 20*time.Second, "procurement's fresh attestation", func() (bool, error) {
		a, err := l.attestationOf(ctx, l.buyer.ID)
		return err == nil && a.At.After(start) && a.Tier == "affirming", nil
	})
	if err != nil {
		s.Observed, s.Reason = "deny", err.Error()
	} else {
		res, _ = until(ctx, time.Now(), 3*time.Second, "", func() CallResult {
			return l.call(ctx, &Step{}, l.buyer, l.vendorWF, "purchase_order.create", "Order/PO-3001", "p2p-3001")
		})
		l.call(ctx, &s, l.buyer, l.vendorWF, "purchase_order.create", "Order/PO-3001", "p2p-3001")
		s.Observed, s.Reason, s.DecisionID = res.Observed, res.Reason, res.DecisionID
	}
	restore(&s)
	l.record(s)
}

// workflowRows: the procure-to-pay workflow of the catalog, at gates with a workflow
// store: the invoice follows the order, the payment follows the invoice; the same payment
// again with a fresh jti is refused duplicate_step, a payment without an invoice
// workflow_out_of_order.
func workflowRows(ctx context.Context, l *liveEnv) {
	for _, c := range []struct {
		name, kind, expected string
		caller               *Agent
		gate                 *Gate
		action, res, wf      string
	}{
		{"workflow: vendor-portal submits invoice INV-3001 for PO-3001 (after the order)", "workflow", "allow", l.vendor, l.payGate, "invoice.submit", "Invoice/INV-3001", "p2p-3001"},
		{"workflow: payment-release releases the payment of INV-3001 (after the invoice)", "workflow", "allow", l.payer, l.settle, "payment.release", "Invoice/INV-3001", "p2p-3001"},
		{"workflow: the same payment of INV-3001 replayed with a fresh jti is refused", "attack", "deny", l.payer, l.settle, "payment.release", "Invoice/INV-3001", "p2p-3001"},
		{"workflow: a payment of INV-3002 with no submitted invoice is refused", "attack", "deny", l.payer, l.settle, "payment.release", "Invoice/INV-3002", "p2p-3002"},
	} {
		s := Step{Name: c.name, Kind: c.kind, Expected: c.expected}
		res := l.call(ctx, &s, c.caller, c.gate, c.action, c.res, c.wf)
		s.Observed, s.Reason, s.DecisionID = res.Observed, res.Reason, res.DecisionID
		l.record(s)
	}
}
