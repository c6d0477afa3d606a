package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/sdk"
)

// paymentAmount is above the 10000 threshold of payment-release-needs-two-approvals.
const paymentAmount = 25000

// paymentApproval is approvals end to end: payment-release asks the treasury gate to
// release 25000 EUR; policy asks for two distinct approvals, so the gate files a request
// with the control plane and refuses with its id; one approval is not enough; the
// requester cannot approve itself; after a second distinct approver the retry with apr
// passes; the approval, single use, releases no second payment. Approvers act with
// `warden approver` and `warden approve`.
func paymentApproval(ctx context.Context, g *gateEnv) {
	tr, err := startTreasury(ctx, g)
	if err != nil {
		g.record(Step{Name: "payment: start the treasury gate (approvals on the control plane)", Kind: "workflow", Expected: "allow", Observed: "deny", Reason: err.Error()})
		return
	}
	payer, err := g.agent("payment-release")
	if err != nil {
		g.record(Step{Name: "payment: payment-release", Kind: "workflow", Expected: "allow", Observed: "deny", Reason: err.Error()})
		return
	}
	in := sdk.Intent{Audience: tr.Self, Action: "payment.release", Resource: "Invoice/INV-7", Workflow: "pay-inv-7"}
	pay := func(s *Step) CallResult {
		body := RPCMessage(fmt.Sprintf("release %d EUR for INV-7 (%d)", paymentAmount, time.Now().UnixNano()),
			map[string]any{"warden.amount": paymentAmount, "warden.currency": "EUR"})
		s.Command = commands(s.Command, curlCommand(g.Stack, payer, tr.Addr, in))
		r := CallAs(ctx, payer, tr.Addr, in, body)
		s.Observed, s.Reason, s.DecisionID = r.Observed, r.Reason, r.DecisionID
		return r
	}

	// 1 above the threshold: approval_required, with the id of the filed request.
	s := Step{Name: "payment: payment-release releases 25000 EUR for INV-7 (above 10000) -> approval filed", Kind: "workflow", Expected: "deny"}
	res := pay(&s)
	if res.ApprovalID == "" {
		s.Observed, s.Reason = "allow", "no approval id in the refusal: "+res.Reason
	} else if res.Code != gate.ReasonApprovalRequired {
		s.Observed = "allow" // any other refusal is not the step we expect
		s.Reason = "expected approval_required, got " + res.Reason
	}
	g.record(s)
	id := res.ApprovalID
	if id == "" {
		return
	}
	in.Approval = id

	var setup []string
	if err := os.MkdirAll(filepath.Join(g.Dir, "approvers"), 0o700); err != nil {
		g.record(Step{Name: "payment: register approvers", Kind: "workflow", Expected: "allow", Observed: "deny", Reason: err.Error()})
		return
	}
	approver := func(name, spiffeID string) (approve func(*Step) (string, error), err error) {
		prefix := filepath.Join(g.Dir, "approvers", name)
		r := g.Warden(ctx, "approver", "keygen", "--out", prefix)
		setup = append(setup, r.Command)
		if r.Err != nil {
			return nil, r.Err
		}
		args := []string{"approver", "add", name, "--pub", prefix + ".pub"}
		if spiffeID != "" {
			args = append(args, "--spiffe-id", spiffeID)
		}
		r = g.Admin(ctx, args...)
		setup = append(setup, r.Command)
		if r.Err != nil {
			return nil, r.Err
		}
		return func(s *Step) (string, error) {
			r := g.Admin(ctx, "approve", id, "--as", name, "--key", prefix+".key", "--reason", "invoice INV-7 checked against the order")
			s.Command = commands(s.Command, r.Command)
			if r.Err != nil {
				return "", fmt.Errorf("%s", r.Message())
			}
			lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
			return lines[len(lines)-1], nil
		}, nil
	}
	alice, err1 := approver("alice", "")
	bob, err2 := approver("bob", "")
	self, err3 := approver("payment-release", payer.ID.String())
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			g.record(Step{Name: "payment: register approvers", Kind: "workflow", Expected: "allow", Observed: "deny", Reason: err.Error(), Command: commands(setup...)})
			return
		}
	}

	// 2 one approval of two: the retry is still refused.
	s = Step{Name: "payment: alice approves " + id + " (1 of 2); the retry with apr is still refused", Kind: "workflow", Expected: "deny",
		Command: commands(setup...)}
	if _, err := alice(&s); err != nil {
		s.Observed, s.Reason = "allow", "alice's approval was refused: "+err.Error()
	} else {
		pay(&s)
	}
	g.record(s)

	// 3 the requester approves its own request.
	s = Step{Name: "payment: payment-release approves its own payment", Kind: "attack", Expected: "deny"}
	if out, err := self(&s); err != nil {
		s.Observed, s.Reason = "deny", err.Error()
	} else {
		s.Observed, s.Reason = "allow", "self-approval recorded: "+out
	}
	g.record(s)

	// 4 a second distinct approver: the retry passes, consuming the approval.
	s = Step{Name: "payment: bob approves (2 distinct approvers); the retry with apr releases the payment", Kind: "workflow", Expected: "allow"}
	if _, err := bob(&s); err != nil {
		s.Observed, s.Reason = "deny", "bob's approval was refused: "+err.Error()
	} else if pay(&s); s.Observed == "allow" {
		s.Reason = "released with approvers alice, bob (approval " + id + " now used)"
	}
	g.record(s)

	// 5 the same approval again, in a fresh intent (new jti): single use.
	s = Step{Name: "payment: the used approval is presented again for a second payment", Kind: "attack", Expected: "deny"}
	pay(&s)
	g.record(s)
}

// startTreasury runs the treasury: an a2a-go agent on a unix socket behind an inbound
// gate with an identity of its own (spiffe://TD/gate/treasury: only a /gate/ identity
// may file approvals for another agent), enrolled with TPM evidence like every
// regulated workload, with `approvals: {control_plane: true}` in its gate.yaml.
func startTreasury(ctx context.Context, g *gateEnv) (*Gate, error) {
	id, err := g.Enrol(ctx, AgentSpec{Name: "treasury", Kind: "gate", Role: "gate", Class: "regulated", Zone: "finance", TPMSeed: 9100})
	if err != nil {
		return nil, fmt.Errorf("enrol the treasury gate: %w", err)
	}
	g.agents["treasury-gate"] = id
	upstream, closeAgent, err := ServeA2A(filepath.Join(g.SockDir, "treasury-agent.sock"), OrderAgent{Name: "treasury"})
	if err != nil {
		return nil, err
	}
	g.stops = append(g.stops, closeAgent)
	gt, err := g.StartGate(ctx, GateSpec{Name: "treasury", Mode: "inbound", Self: spiffeid.RequireFromPath(g.TD, "/gate/treasury").String(),
		SVIDDir: id.Dir, Upstream: upstream, Zone: "finance", YAML: `approvals:
  control_plane: true
  required:
    payment-release-needs-two-approvals: 2
`})
	if gt != nil {
		fmt.Fprintf(g.out, "       $ %s &   # inbound gate of the treasury, approvals on the control plane\n", gt.Proc.Command)
	}
	return gt, err
}
