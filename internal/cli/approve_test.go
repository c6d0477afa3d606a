package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/store/sqlite"
)

// TestApproveCommands: keygen, approver add, approve by two approvers (the second with
// the first's key refused), approvals list, against a real server on loopback.
func TestApproveCommands(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	td := spiffeid.RequireTrustDomainFromString("supplychain.example")
	srv, err := server.New(context.Background(), server.Config{TrustDomain: td.Name(), DataDir: dir, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	for srv.URL() == "" {
		time.Sleep(time.Millisecond)
	}

	// A gate files a request, as internal/gate will.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	gid := spiffeid.RequireFromPath(td, "/gate/bank")
	cert, err := srv.Issuer().IssueWith(ctx, ca.X509Request{PublicKey: key.Public(), ID: gid}, "", "enroll")
	if err != nil {
		t.Fatal(err)
	}
	gate := approval.NewClient(srv.URL(), &x509svid.SVID{ID: gid, Certificates: append([]*x509.Certificate{cert}, srv.CA().Intermediates()...), PrivateKey: key}, srv.CA().X509Bundle(), td)
	defer gate.HTTP.CloseIdleConnections()
	claims := &intent.Claims{Issuer: "spiffe://supplychain.example/agent/payment-release", Audience: "spiffe://supplychain.example/agent/bank",
		ID: "AAAAAAAAAAAAAAAAAAAAAA", IssuedAt: 1, Expiry: 2, Action: "payment.release", Resource: "Invoice/INV-10",
		BodyDigest: intent.BodyDigest([]byte("{}")), CertThumbprint: intent.BodyDigest(nil)}
	id, err := gate.Request(ctx, api.ApprovalRequest{Requester: claims.Issuer, Audience: claims.Audience, Action: claims.Action, Resource: claims.Resource,
		Amount: 25000, Currency: "EUR", Required: 2, PolicyID: "payment-release-needs-two-approvals",
		IntentHash: approval.IntentHash(approval.Binding{Requester: claims.Issuer, Audience: claims.Audience, Action: claims.Action,
			Resource: claims.Resource, Amount: 25000, Currency: "EUR"})})
	if err != nil {
		t.Fatal(err)
	}

	keys := t.TempDir()
	for _, name := range []string{"alice", "bob"} {
		if out, code := runCLI(t, "approver", "keygen", "--out", filepath.Join(keys, name)); code != 0 {
			t.Fatalf("keygen: %s", out)
		}
		if out, code := runCLI(t, "approver", "add", name, "--pub", filepath.Join(keys, name+".pub"), "--data-dir", dir); code != 0 || !strings.HasPrefix(out, name+" key ") {
			t.Fatalf("approver add: %d %s", code, out)
		}
	}
	if out, code := runCLI(t, "approver", "keygen", "--out", filepath.Join(keys, "alice")); code == 0 {
		t.Errorf("keygen overwrote a key: %s", out)
	}
	out, code := runCLI(t, "approve", id, "--as", "alice", "--key", filepath.Join(keys, "alice.key"), "--reason", "invoice matches PO", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, id+": pending (1 of 2: alice)") {
		t.Fatalf("approve alice: %d %s", code, out)
	}
	// bob with alice's key: the server refuses the signature.
	out, code = runCLI(t, "approve", id, "--as", "bob", "--key", filepath.Join(keys, "alice.key"), "--data-dir", dir)
	if code != 1 || !strings.Contains(out, api.ReasonApprovalBadSignature) {
		t.Errorf("bob with alice's key: %d %s", code, out)
	}
	out, code = runCLI(t, "approve", id, "--as", "bob", "--key", filepath.Join(keys, "bob.key"), "--data-dir", dir)
	if code != 0 || !strings.Contains(out, id+": approved (2 of 2: alice, bob)") {
		t.Fatalf("approve bob: %d %s", code, out)
	}
	out, code = runCLI(t, "approvals", "list", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "approved") || !strings.Contains(out, "2/2 alice,bob") {
		t.Errorf("approvals list: %d %s", code, out)
	}
	out, code = runCLI(t, "approvals", "show", id, "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "alice approve") || !strings.Contains(out, "invoice matches PO") {
		t.Errorf("approvals show: %d %s", code, out)
	}
}
