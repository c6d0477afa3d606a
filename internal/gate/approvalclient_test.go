package gate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// controlPlane is a real control plane on loopback (SQLite) for the approvals adapter.
type controlPlane struct {
	srv   *server.Server
	admin *adminclient.Client
}

func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := server.New(context.Background(), server.Config{TrustDomain: td.Name(), DataDir: t.TempDir(), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for srv.URL() == "" {
		time.Sleep(time.Millisecond)
	}
	admin, err := adminclient.Load(srv.AdminDir(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.HTTP.CloseIdleConnections)
	return &controlPlane{srv: srv, admin: admin}
}

// client is an approvals client holding an X509-SVID for path from the control plane's CA.
func (cp *controlPlane) client(t *testing.T, path string) *approval.Client {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id := spiffeid.RequireFromPath(td, path)
	cert, err := cp.srv.Issuer().IssueWith(context.Background(), ca.X509Request{PublicKey: key.Public(), ID: id}, "", "enroll")
	if err != nil {
		t.Fatal(err)
	}
	sv := &x509svid.SVID{ID: id, Certificates: append([]*x509.Certificate{cert}, cp.srv.CA().Intermediates()...), PrivateKey: key}
	c := approval.NewClient(cp.srv.URL(), sv, cp.srv.CA().X509Bundle(), td)
	t.Cleanup(c.HTTP.CloseIdleConnections)
	return c
}

// approve registers approver name (linked to spiffeID when set) and returns a function
// that signs and posts its approval of id.
func (cp *controlPlane) approver(t *testing.T, name, spiffeID string) func(id string) (approval.Status, error) {
	t.Helper()
	priv, pub, err := approval.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.admin.AddApprover(context.Background(), api.Approver{Name: name, PublicKey: string(pub), SPIFFEID: spiffeID}); err != nil {
		t.Fatal(err)
	}
	key, _ := approval.ParsePrivateKeyPEM(priv)
	anon := &approval.Client{BaseURL: cp.srv.URL(), HTTP: cp.admin.HTTP}
	return func(id string) (approval.Status, error) {
		rec, err := cp.admin.GetApproval(context.Background(), id)
		if err != nil {
			return approval.Status{}, err
		}
		st := approval.StatementFor(&rec, name, approval.DecisionApprove, "invoice checked", time.Now())
		sig, err := approval.Sign(key, &st)
		if err != nil {
			return approval.Status{}, err
		}
		return anon.Decide(context.Background(), api.ApprovalDecision{Statement: st, Signature: sig})
	}
}

// TestApprovalClientEndToEnd: a payment above the threshold through an inbound gate
// wired to a real control plane. The gate files (approval_required with the id), one
// approval is not enough (approval_pending), the requester cannot approve itself, two
// distinct approvers let the retry with apr through, and the used approval releases no
// second call (approval_used), even with a fresh jti.
func TestApprovalClientEndToEnd(t *testing.T) {
	e := newEnv(t)
	cp := startControlPlane(t)
	payID := agentID("payment-release").String()
	e.publish(func(d *truststate.Document) {
		d.Attestations = map[string]truststate.Attestation{payID: {Tier: "affirming", At: time.Now().UTC(), ResultID: "r1"}}
	})
	ag := startAgent(t)
	ac := &gate.ApprovalClient{Client: cp.client(t, "/gate/vendor-portal"), Required: map[string]int{"payment-release-needs-two-approvals": 2}}
	g, _ := e.inbound(ag.url, func(c *gate.Config) { c.Approvals = ac })
	c := e.caller(t, startGate(t, g, "tcp"), e.svid("/agent/payment-release"))
	in := sdk.Intent{Audience: agentID("vendor-portal").String(), Action: "payment.release", Resource: "Invoice/INV-7", Workflow: "pay-7"}
	body := func() []byte {
		return []byte(`{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"role":"ROLE_USER","messageId":"m` +
			time.Now().Format("150405.000000000") + `","parts":[{"text":"release"}],"metadata":{"warden.amount":25000,"warden.currency":"EUR"}}}}`)
	}
	call := func(in sdk.Intent) *rpcError {
		b := body()
		_, a := c.do(b, c.sign(in, b))
		return a.Error
	}

	rerr := call(in)
	if rerr == nil || rerr.reason() != gate.ReasonApprovalRequired {
		t.Fatalf("first call: %+v", rerr)
	}
	id := rerr.Data[0].Metadata["approval_id"]
	rec, err := cp.admin.GetApproval(context.Background(), id)
	if err != nil {
		t.Fatalf("filed approval %q: %v", id, err)
	}
	wantHash := gate.ApprovalHash(payID, agentID("vendor-portal").String(), "payment.release", "Invoice/INV-7", "pay-7", 25000, "EUR")
	if rec.Required != 2 || rec.Amount != 25000 || rec.Currency != "EUR" || rec.IntentHash != wantHash || rec.Audience != agentID("vendor-portal").String() {
		t.Errorf("filed record: %+v", rec)
	}

	in.Approval = id
	alice, bob := cp.approver(t, "alice", ""), cp.approver(t, "bob", "")
	self := cp.approver(t, "payments-operator", payID)
	if _, err := alice(id); err != nil {
		t.Fatal(err)
	}
	if rerr := call(in); rerr == nil || rerr.reason() != gate.ReasonApprovalPending {
		t.Errorf("retry after one approval: %+v", rerr)
	}
	var ae *api.Error
	if _, err := self(id); !errors.As(err, &ae) || ae.Code != api.ReasonSelfApproval {
		t.Errorf("requester approves itself: %v", err)
	}
	if rerr := call(in); rerr == nil || rerr.reason() != gate.ReasonApprovalPending {
		t.Errorf("retry after a self-approval: %+v", rerr)
	}
	if _, err := bob(id); err != nil {
		t.Fatal(err)
	}
	// Another amount with the same apr is another request.
	other := in
	other.Resource = "Invoice/INV-8"
	if rerr := call(other); rerr == nil || rerr.reason() != gate.ReasonApprovalInvalid {
		t.Errorf("apr for another invoice: %+v", rerr)
	}
	if rerr := call(in); rerr != nil {
		t.Fatalf("retry with two approvals: %+v", rerr)
	}
	if ev := e.events.last(); !ev.Allow || ev.ApprovalID != id {
		t.Errorf("audit event of the released call: %+v", ev)
	}
	if rerr := call(in); rerr == nil || rerr.reason() != gate.ReasonApprovalUsed {
		t.Errorf("the same approval again: %+v", rerr)
	}
	if rec, _ := cp.admin.GetApproval(context.Background(), id); rec.Status != approval.StateUsed {
		t.Errorf("record after use: %+v", rec)
	}
}

// TestApprovalClientConcurrentRetries: many retries with one approval race through the
// gate at once; exactly one is forwarded.
func TestApprovalClientConcurrentRetries(t *testing.T) {
	e := newEnv(t)
	cp := startControlPlane(t)
	payID := agentID("payment-release").String()
	e.publish(func(d *truststate.Document) {
		d.Attestations = map[string]truststate.Attestation{payID: {Tier: "affirming", At: time.Now().UTC(), ResultID: "r1"}}
	})
	ac := &gate.ApprovalClient{Client: cp.client(t, "/gate/vendor-portal")}
	g, _ := e.inbound(startAgent(t).url, func(c *gate.Config) { c.Approvals = ac })
	addr := startGate(t, g, "tcp")
	c := e.caller(t, addr, e.svid("/agent/payment-release"))
	in := sdk.Intent{Audience: agentID("vendor-portal").String(), Action: "payment.release", Resource: "Invoice/INV-9"}
	mk := func(i int) []byte {
		return []byte(`{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"role":"ROLE_USER","messageId":"m` + itoa(i) +
			`","parts":[{"text":"release"}],"metadata":{"warden.amount":30000,"warden.currency":"EUR"}}}}`)
	}
	b := mk(0)
	_, a := c.do(b, c.sign(in, b))
	if a.Error == nil || a.Error.reason() != gate.ReasonApprovalRequired {
		t.Fatalf("first call: %+v", a.Error)
	}
	id := a.Error.Data[0].Metadata["approval_id"]
	for _, name := range []string{"alice", "bob"} {
		if _, err := cp.approver(t, name, "")(id); err != nil {
			t.Fatal(err)
		}
	}
	in.Approval = id
	// 4 concurrent retries: with the first call that is 5 payment.release calls, the
	// default rate limit's burst, so every refusal here is about the approval.
	const n = 4
	var wg sync.WaitGroup
	reasons := make([]string, n)
	for i := range n {
		b := mk(i + 1)
		tok := c.sign(in, b)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, a := c.do(b, tok)
			if a.Error != nil {
				reasons[i] = a.Error.reason()
			}
		}()
	}
	wg.Wait()
	passed := 0
	for _, r := range reasons {
		switch r {
		case "":
			passed++
		case gate.ReasonApprovalUsed:
		default:
			t.Errorf("retry refused with %q", r)
		}
	}
	if passed != 1 {
		t.Errorf("%d retries forwarded with one approval, want 1", passed)
	}
}

// TestApprovalClientControlPlaneDown: an unreachable control plane fails closed.
func TestApprovalClientControlPlaneDown(t *testing.T) {
	cl := &approval.Client{BaseURL: "https://127.0.0.1:1", HTTP: &http.Client{Timeout: time.Second}}
	ac := &gate.ApprovalClient{Client: cl}
	if _, err := ac.Approval(context.Background(), gate.ApprovalRequest{Requester: agentID("x").String(), Action: "a", PolicyIDs: []string{"p"}}); err == nil || errors.Is(err, gate.ErrApprovalInvalid) {
		t.Errorf("file with the control plane down: %v", err)
	}
	if _, err := (*gate.ApprovalClient)(nil).Approval(context.Background(), gate.ApprovalRequest{}); !errors.Is(err, gate.ErrNoApprovals) {
		t.Errorf("nil client: %v", err)
	}
}
