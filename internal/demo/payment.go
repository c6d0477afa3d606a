package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/policies"
	"github.com/warden-a2a/warden/sdk"
)

// paymentAmount is above the 10000 threshold of payment-release-needs-two-approvals.
const paymentAmount = 25000

// treasury is the inbound gate in front of the treasury agent that releases payments,
// wired to the control plane's approvals API (gate.ApprovalClient).
type treasury struct {
	addr string
	id   spiffeid.ID
}

// paymentApproval is issue 5 item 3 end to end: payment-release asks the treasury gate to
// release 25000 EUR; policy asks for two distinct approvals, so the gate files a request
// with the control plane and refuses with its id; one approval is not enough; the
// requester cannot approve itself; after a second distinct approver the retry with apr
// passes; the approval, single use, releases no second payment.
func paymentApproval(ctx context.Context, g *gateEnv) {
	tr, stop, err := startTreasury(ctx, g)
	if err != nil {
		g.record(Step{Name: "payment: start the treasury gate (approvals on the control plane)", Kind: "workflow", Expected: "allow", Observed: "deny", Reason: err.Error()})
		return
	}
	defer stop()
	in := sdk.Intent{Audience: tr.id.String(), Action: "payment.release", Resource: "Invoice/INV-7", Workflow: "pay-inv-7"}

	// 1 above the threshold: approval_required, with the id of the filed request.
	s := Step{Name: "payment: payment-release releases 25000 EUR for INV-7 (above 10000) -> approval filed", Kind: "workflow", Expected: "deny"}
	res := g.pay(ctx, tr, in)
	s.Observed, s.Reason, s.DecisionID = res.observed, res.reason, res.decisionID
	if res.approvalID == "" {
		s.Observed, s.Reason = "allow", "no approval id in the refusal: "+res.reason
	} else if res.code != gate.ReasonApprovalRequired {
		s.Observed = "allow" // any other refusal is not the step we expect
		s.Reason = "expected approval_required, got " + res.reason
	}
	g.record(s)
	id := res.approvalID
	if id == "" {
		return
	}
	in.Approval = id

	alice, err1 := g.newApprover(ctx, "alice", "")
	bob, err2 := g.newApprover(ctx, "bob", "")
	self, err3 := g.newApprover(ctx, "payment-release", g.id("payment-release"))
	if err := errors.Join(err1, err2, err3); err != nil {
		g.record(Step{Name: "payment: register approvers", Kind: "workflow", Expected: "allow", Observed: "deny", Reason: err.Error()})
		return
	}

	// 2 one approval of two: the retry is still refused.
	s = Step{Name: "payment: alice approves " + id + " (1 of 2); the retry with apr is still refused", Kind: "workflow", Expected: "deny"}
	if _, err := alice(ctx, id); err != nil {
		s.Observed, s.Reason = "allow", "alice's approval was refused: "+err.Error()
	} else {
		res = g.pay(ctx, tr, in)
		s.Observed, s.Reason, s.DecisionID = res.observed, res.reason, res.decisionID
	}
	g.record(s)

	// 3 the requester approves its own request.
	s = Step{Name: "payment: payment-release approves its own payment", Kind: "attack", Expected: "deny"}
	if st, err := self(ctx, id); err != nil {
		s.Observed, s.Reason = "deny", err.Error()
	} else {
		s.Observed, s.Reason = "allow", fmt.Sprintf("self-approval recorded: %s, %d of %d", st.Status, st.Count, st.Required)
	}
	g.record(s)

	// 4 a second distinct approver: the retry passes, consuming the approval.
	s = Step{Name: "payment: bob approves (2 distinct approvers); the retry with apr releases the payment", Kind: "workflow", Expected: "allow"}
	if _, err := bob(ctx, id); err != nil {
		s.Observed, s.Reason = "deny", "bob's approval was refused: "+err.Error()
	} else {
		res = g.pay(ctx, tr, in)
		s.Observed, s.Reason, s.DecisionID = res.observed, res.reason, res.decisionID
		if res.observed == "allow" {
			s.Reason = "released with approvers alice, bob (approval " + id + " now used)"
		}
	}
	g.record(s)

	// 5 the same approval again, in a fresh intent (new jti): single use.
	s = Step{Name: "payment: the used approval is presented again for a second payment", Kind: "attack", Expected: "deny"}
	res = g.pay(ctx, tr, in)
	s.Observed, s.Reason, s.DecisionID = res.observed, res.reason, res.decisionID
	g.record(s)
}

// startTreasury runs the treasury gate: a gate entry (spiffe://TD/gate/treasury; only a
// /gate/ identity may file approvals for another agent) enrolled with TPM evidence like
// every regulated workload, following the trust state, in front of an a2a-go agent, with
// gate.ApprovalClient as its approvals service.
func startTreasury(ctx context.Context, g *gateEnv) (*treasury, func(), error) {
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	fail := func(err error) (*treasury, func(), error) { stop(); return nil, nil, err }
	tr := &treasury{id: spiffeid.RequireFromPath(g.td, "/gate/treasury")}
	tpm, attrs, err := g.agentTPM("treasury-gate", 9100)
	if err != nil {
		return fail(err)
	}
	if _, err := g.admin.CreateEntry(ctx, api.Entry{Name: "treasury", Kind: "gate", Role: "gate", Class: "regulated", Zone: "finance", Attrs: attrs}); err != nil {
		return fail(err)
	}
	tok, err := g.admin.CreateToken(ctx, "treasury", time.Minute)
	if err != nil {
		return fail(err)
	}
	svid, bundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: g.srv.URL(), Token: tok.Token, Attester: tpm})
	if err != nil {
		return fail(fmt.Errorf("enrol the treasury gate: %w", err))
	}

	cache, err := gate.OpenTrustCache(filepath.Join(g.cfg.DataDir, "gates", "treasury", "trust-state.json"), bundle, g.td, nil)
	if err != nil {
		return fail(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.MTLSClientConfig(svid, bundle, tlsconfig.AuthorizeID(spiffeid.RequireFromPath(g.td, "/warden/server")))}}
	stops = append(stops, hc.CloseIdleConnections)
	fol := truststate.NewFollower(truststate.FollowerConfig{URL: g.srv.URL(), Client: hc, Bundle: bundle, TrustDomain: g.td, OnAccept: cache.Store})
	cache.Follow(fol)
	fctx, fcancel := context.WithCancel(ctx)
	fdone := make(chan struct{})
	go func() { _ = fol.Run(fctx, nil); close(fdone) }()
	stops = append(stops, func() { fcancel(); <-fdone })
	for i := 0; ; i++ {
		if d, _ := cache.Current(); d != nil {
			break
		}
		if i == 100 {
			return fail(errors.New("no trust state from the control plane"))
		}
		time.Sleep(20 * time.Millisecond)
	}

	agentURL, closeAgent, err := startA2AAgent()
	if err != nil {
		return fail(err)
	}
	stops = append(stops, closeAgent)
	eng, err := policy.LoadFS(policies.FS, policy.Options{})
	if err != nil {
		return fail(err)
	}
	peers := map[string]policy.Agent{}
	for _, a := range Agents {
		peers[g.id(a.Name)] = policy.Agent{Name: a.Name, Role: a.Role, Class: a.Class, Zone: a.Zone}
	}
	apc := approval.NewClient(g.srv.URL(), svid, bundle, g.td)
	stops = append(stops, apc.HTTP.CloseIdleConnections)
	gt, err := gate.New(gate.Config{Mode: gate.ModeInbound, Self: tr.id, SVID: svid, Bundle: bundle, Upstream: agentURL,
		Peers: peers, Policy: policy.NewHolder(eng), Trust: cache, Zone: "finance", Replay: intent.NewMemoryCache(1 << 16),
		Audit: g.events, Logger: g.cfg.Logger,
		Approvals: &gate.ApprovalClient{Client: apc, Required: map[string]int{"payment-release-needs-two-approvals": 2}}})
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	sctx, scancel := context.WithCancel(ctx)
	sdone := make(chan struct{})
	go func() { _ = gt.Serve(sctx, ln); close(sdone) }()
	stops = append(stops, func() { scancel(); <-sdone })
	tr.addr = ln.Addr().String()
	return tr, stop, nil
}

// payResult is one payment call's outcome as the caller sees it.
type payResult struct {
	observed, reason, code, decisionID, approvalID string
}

// pay sends payment-release's SendMessage for paymentAmount EUR to the treasury gate with
// a fresh intent (new jti, new body) for in.
func (g *gateEnv) pay(ctx context.Context, tr *treasury, in sdk.Intent) payResult {
	body := rpcMessage(fmt.Sprintf("release %d EUR for INV-7 (%d)", paymentAmount, time.Now().UnixNano()),
		map[string]any{"warden.amount": paymentAmount, "warden.currency": "EUR"})
	tok := g.sign("payment-release", in, body)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: g.mtls("payment-release")}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+tr.addr+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(intent.HeaderName, tok)
	res, err := client.Do(req)
	if err != nil {
		return payResult{observed: "deny", reason: "call failed: " + lastLine(err)}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	var ans struct {
		Error *struct {
			Message string `json:"message"`
			Data    []struct {
				Metadata map[string]string `json:"metadata"`
			} `json:"data"`
		} `json:"error"`
		Result json.RawMessage `json:"result"`
	}
	if json.Unmarshal(b, &ans) != nil {
		return payResult{observed: "deny", reason: fmt.Sprintf("status %d: %s", res.StatusCode, b)}
	}
	if ans.Error != nil {
		out := payResult{observed: "deny", reason: ans.Error.Message}
		if len(ans.Error.Data) > 0 {
			m := ans.Error.Data[0].Metadata
			out.code, out.decisionID, out.approvalID = m["reason"], m["decision_id"], m["approval_id"]
		}
		return out
	}
	return payResult{observed: "allow", reason: string(ans.Result), decisionID: res.Header.Get(gate.HeaderDecisionID)}
}

// newApprover registers an approver key with the admin client and returns a function
// that signs (internal/approval) and posts its approval of a request.
func (g *gateEnv) newApprover(ctx context.Context, name, spiffeID string) (func(context.Context, string) (approval.Status, error), error) {
	priv, pub, err := approval.GenerateKey()
	if err != nil {
		return nil, err
	}
	if _, err := g.admin.AddApprover(ctx, api.Approver{Name: name, PublicKey: string(pub), SPIFFEID: spiffeID}); err != nil {
		return nil, fmt.Errorf("add approver %s: %w", name, err)
	}
	key, err := approval.ParsePrivateKeyPEM(priv)
	if err != nil {
		return nil, err
	}
	// Deciding needs no client certificate: the signature is the authentication.
	anon := &approval.Client{BaseURL: g.srv.URL(), HTTP: g.admin.HTTP}
	return func(ctx context.Context, id string) (approval.Status, error) {
		rec, err := g.admin.GetApproval(ctx, id)
		if err != nil {
			return approval.Status{}, err
		}
		st := approval.StatementFor(&rec, name, approval.DecisionApprove, "invoice INV-7 checked against the order", time.Now())
		sig, err := approval.Sign(key, &st)
		if err != nil {
			return approval.Status{}, err
		}
		return anon.Decide(ctx, api.ApprovalDecision{Statement: st, Signature: sig})
	}, nil
}
