package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/sqlite"
)

// aprFixture is a control plane on loopback with a settable clock and a recorder of
// approval events.
type aprFixture struct {
	*fixture
	clock  atomic.Int64 // unix nanoseconds
	mu     sync.Mutex
	events []approval.Event
}

func (f *aprFixture) now() time.Time          { return time.Unix(0, f.clock.Load()) }
func (f *aprFixture) advance(d time.Duration) { f.clock.Add(int64(d)) }

func (f *aprFixture) kinds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.events {
		out = append(out, e.Kind)
	}
	return out
}

func startApprovals(t *testing.T, st func(testing.TB) store.Store) *aprFixture {
	t.Helper()
	f := &aprFixture{}
	f.clock.Store(time.Now().UnixNano())
	dir := t.TempDir()
	srv, err := server.New(context.Background(), server.Config{TrustDomain: td.Name(), DataDir: dir, Store: st(t), Now: f.now,
		OnApprovalEvent: func(e approval.Event) { f.mu.Lock(); f.events = append(f.events, e); f.mu.Unlock() }})
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
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	for srv.URL() == "" {
		time.Sleep(time.Millisecond)
	}
	admin, err := adminclient.Load(srv.AdminDir(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.HTTP.CloseIdleConnections)
	f.fixture = &fixture{srv: srv, admin: admin, url: srv.URL(), dir: dir}
	return f
}

// client returns an approvals client holding a fresh X509-SVID for spiffe://TD+path,
// issued by the server's CA as a gate's or an agent's would be.
func (f *aprFixture) client(t *testing.T, path string) *approval.Client {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id := spiffeid.RequireFromPath(td, path)
	cert, err := f.srv.Issuer().IssueWith(context.Background(), ca.X509Request{PublicKey: key.Public(), ID: id}, "", "enroll")
	if err != nil {
		t.Fatal(err)
	}
	sv := &x509svid.SVID{ID: id, Certificates: append([]*x509.Certificate{cert}, f.srv.CA().Intermediates()...), PrivateKey: key}
	c := approval.NewClient(f.url, sv, f.srv.CA().X509Bundle(), td)
	t.Cleanup(c.HTTP.CloseIdleConnections)
	return c
}

// anonymous returns a client with no client certificate (approvers need none).
func (f *aprFixture) anonymous(t *testing.T) *approval.Client {
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.CA().Root())
	c := &approval.Client{BaseURL: f.url, HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}}
	t.Cleanup(c.HTTP.CloseIdleConnections)
	return c
}

type approverKey struct {
	name string
	key  crypto.Signer
}

func (f *aprFixture) approver(t *testing.T, name, spiffeID string) approverKey {
	t.Helper()
	priv, pub, err := approval.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.AddApprover(context.Background(), api.Approver{Name: name, PublicKey: string(pub), SPIFFEID: spiffeID}); err != nil {
		t.Fatal(err)
	}
	key, _ := approval.ParsePrivateKeyPEM(priv)
	return approverKey{name, key}
}

// decide signs decision on the stored request as a with key (a.key unless overridden),
// after mut changes the statement, and posts it without a client certificate.
func (f *aprFixture) decide(t *testing.T, id string, a approverKey, decision string, mut func(*approval.Statement)) (approval.Status, error) {
	t.Helper()
	rec, err := f.admin.GetApproval(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	st := approval.StatementFor(&rec, a.name, decision, "checked", f.now())
	if mut != nil {
		mut(&st)
	}
	sig, err := approval.Sign(a.key, &st)
	if err != nil {
		t.Fatal(err)
	}
	return f.anonymous(t).Decide(context.Background(), api.ApprovalDecision{Statement: st, Signature: sig})
}

const payments = "spiffe://supplychain.example/agent/payment-release"

func paymentClaims(amountBody string) *intent.Claims {
	return &intent.Claims{Issuer: payments, Audience: "spiffe://supplychain.example/agent/bank", ID: "AAAAAAAAAAAAAAAAAAAAAA",
		IssuedAt: 1764200000, Expiry: 1764200060, Action: "payment.release", Resource: "Invoice/INV-10",
		BodyDigest: intent.BodyDigest([]byte(amountBody)), CertThumbprint: "x4pqW7Yc3b2Yw4JH3s2ZNR3lY0vX9u1Qk0d7mA8cDeE"}
}

func paymentRequest(c *intent.Claims) approval.Req {
	return approval.Req{Requester: c.Issuer, Audience: c.Audience, Action: c.Action, Resource: c.Resource, Workflow: c.Workflow,
		Amount: 25000, Currency: "EUR", IntentHash: bindOf(c, 25000), Required: 2, PolicyID: "payment-release-needs-two-approvals"}
}

// bindOf is the approval binding hash of an intent for a call of amount EUR: what the
// gate computes when it files and on the retry.
func bindOf(c *intent.Claims, amount int64) string {
	return approval.IntentHash(approval.Binding{Requester: c.Issuer, Audience: c.Audience, Action: c.Action,
		Resource: c.Resource, Workflow: c.Workflow, Amount: amount, Currency: "EUR"})
}

// TestApprovalHappyPath: a gate files, two distinct approvers sign, the retry's intent
// (new jti, iat, exp, apr) checks approved, and the approvers let the payment-release
// policy allow the call that it refused before.
func TestApprovalHappyPath(t *testing.T) { approvalHappyPath(t, sqliteStore) }

func approvalHappyPath(t *testing.T, st func(testing.TB) store.Store) {
	f := startApprovals(t, st)
	ctx := context.Background()
	gate := f.client(t, "/gate/bank")
	alice, bob := f.approver(t, "alice", ""), f.approver(t, "bob", "")

	eng, err := policy.Load("../../policies", policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	preq := policy.Request{
		Agent:  policy.Agent{SPIFFEID: payments, Name: "payment-release", Role: "payments", Class: "regulated", Zone: "finance", TrustDomain: td.Name()},
		Action: "payment.release", Resource: policy.Resource{Type: "Invoice", ID: "INV-10", Status: "approved", Amount: 25000},
		Context: policy.CallContext{Amount: 25000, Currency: "EUR", Attestation: policy.Attestation{Tier: "affirming", AgeSeconds: 30}},
	}
	d := eng.Decide(preq, time.Now())
	if d.Allow || !slices.Contains(d.Obligations, "approval") {
		t.Fatalf("policy without approvals: allow=%v obligations=%v", d.Allow, d.Obligations)
	}

	first := paymentClaims(`{"amount":25000}`)
	id, err := gate.Request(ctx, paymentRequest(first))
	if err != nil {
		t.Fatal(err)
	}
	retry := *first
	retry.ID, retry.IssuedAt, retry.Expiry, retry.Approval = "BBBBBBBBBBBBBBBBBBBBBB", first.IssuedAt+300, first.Expiry+300, id
	h := bindOf(&retry, 25000)

	if s, err := gate.Check(ctx, id, h); err != nil || s.Status != approval.StatePending || s.Count != 0 {
		t.Fatalf("before approvals: %+v %v", s, err)
	}
	if s, err := f.decide(t, id, alice, approval.DecisionApprove, nil); err != nil || s.Status != approval.StatePending || s.Count != 1 {
		t.Fatalf("after alice: %+v %v", s, err)
	}
	// The same approver twice counts once.
	if _, err := f.decide(t, id, alice, approval.DecisionApprove, nil); reason(err) != api.ReasonAlreadyDecided {
		t.Errorf("alice twice: %v, want %s", err, api.ReasonAlreadyDecided)
	}
	if s, _ := gate.Check(ctx, id, h); s.Count != 1 || s.Status != approval.StatePending {
		t.Errorf("after alice twice: %+v", s)
	}
	if s, err := f.decide(t, id, bob, approval.DecisionApprove, nil); err != nil || s.Status != approval.StateApproved {
		t.Fatalf("after bob: %+v %v", s, err)
	}
	s, err := gate.Check(ctx, id, h)
	if err != nil || s.Status != approval.StateApproved || s.Count != 2 || !slices.Equal(s.Approvers, []string{"alice", "bob"}) {
		t.Fatalf("check: %+v %v", s, err)
	}
	// The requester itself may check its own request too.
	if s2, err := f.client(t, "/agent/payment-release").Check(ctx, id, h); err != nil || s2.Status != approval.StateApproved {
		t.Errorf("requester check: %+v %v", s2, err)
	}
	preq.Context.Approvers = s.Approvers
	if d := eng.Decide(preq, time.Now()); !d.Allow {
		t.Errorf("policy with approvers %v: %s %s", s.Approvers, d.Code, d.Reason)
	}
	// A third approval is not needed and not taken.
	carol := f.approver(t, "carol", "")
	if _, err := f.decide(t, id, carol, approval.DecisionApprove, nil); reason(err) != api.ReasonApprovalClosed {
		t.Errorf("third approval: %v", err)
	}
	want := []string{approval.EventRequested, approval.EventChecked, approval.EventDecided, approval.EventRefused,
		approval.EventChecked, approval.EventDecided, approval.EventApproved, approval.EventChecked, approval.EventChecked, approval.EventRefused}
	if got := f.kinds(); !slices.Equal(got, want) {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
	// The admin listing shows the decisions.
	recs, err := f.admin.ListApprovals(ctx, 10)
	if err != nil || len(recs) != 1 || len(recs[0].Decisions) != 2 || recs[0].Status != approval.StateApproved {
		t.Errorf("list: %+v %v", recs, err)
	}

	// Single use: the requester may not consume; of concurrent gate consumers exactly
	// one wins, the others are told approval_used, and the request stays used.
	if _, err := f.client(t, "/agent/payment-release").Consume(ctx, id, h); reason(err) != api.ReasonApprovalForbidden {
		t.Errorf("requester consumes: %v", err)
	}
	const n = 8
	var wg sync.WaitGroup
	results := make([]error, n)
	statuses := make([]approval.Status, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); statuses[i], results[i] = gate.Consume(ctx, id, h) }()
	}
	wg.Wait()
	won := 0
	for i, err := range results {
		switch {
		case err == nil:
			won++
			if statuses[i].Status != approval.StateUsed || !slices.Equal(statuses[i].Approvers, []string{"alice", "bob"}) {
				t.Errorf("winner's status: %+v", statuses[i])
			}
		case reason(err) != api.ReasonApprovalUsed:
			t.Errorf("loser: %v, want %s", err, api.ReasonApprovalUsed)
		}
	}
	if won != 1 {
		t.Errorf("%d consumers won, want 1", won)
	}
	if s, err := gate.Check(ctx, id, h); err != nil || s.Status != approval.StateUsed || s.UsedBy != spiffeid.RequireFromPath(td, "/gate/bank").String() {
		t.Errorf("check after use: %+v %v", s, err)
	}
	if _, err := f.decide(t, id, carol, approval.DecisionApprove, nil); reason(err) != api.ReasonApprovalClosed {
		t.Errorf("approval after use: %v", err)
	}
}

// TestApprovalRefusals: each way an approval is misused is refused with its reason.
func TestApprovalRefusals(t *testing.T) {
	f := startApprovals(t, sqliteStore)
	ctx := context.Background()
	gate := f.client(t, "/gate/bank")
	alice := f.approver(t, "alice", "")
	claims := paymentClaims(`{"amount":25000}`)
	file := func() string {
		id, err := gate.Request(ctx, paymentRequest(claims))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// A key registered for nobody.
	strayKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	cases := []struct {
		name string
		run  func(id string) error
		want string
	}{
		{"self-approval by the requester's name", func(id string) error {
			_, err := f.decide(t, id, f.approver(t, "payment-release", ""), approval.DecisionApprove, nil)
			return err
		}, api.ReasonSelfApproval},
		{"self-approval by the approver's linked identity", func(id string) error {
			_, err := f.decide(t, id, f.approver(t, "pat", payments), approval.DecisionApprove, nil)
			return err
		}, api.ReasonSelfApproval},
		{"approval signed for a different amount", func(id string) error {
			_, err := f.decide(t, id, alice, approval.DecisionApprove, func(s *approval.Statement) { s.Amount = 2500 })
			return err
		}, api.ReasonApprovalBinding},
		{"approval signed for a different resource", func(id string) error {
			_, err := f.decide(t, id, alice, approval.DecisionApprove, func(s *approval.Statement) { s.Resource = "Invoice/INV-11" })
			return err
		}, api.ReasonApprovalBinding},
		{"approval signed for another intent hash", func(id string) error {
			_, err := f.decide(t, id, alice, approval.DecisionApprove, func(s *approval.Statement) {
				s.IntentHash = bindOf(paymentClaims(`{"amount":99999}`), 99999)
			})
			return err
		}, api.ReasonApprovalBinding},
		{"check with the hash of a different amount", func(id string) error {
			_, err := gate.Check(ctx, id, bindOf(paymentClaims(`{"amount":99999}`), 99999))
			return err
		}, api.ReasonApprovalIntentMismatch},
		{"check with the hash of a different resource", func(id string) error {
			c := paymentClaims(`{"amount":25000}`)
			c.Resource = "Invoice/INV-11"
			_, err := gate.Check(ctx, id, bindOf(c, 25000))
			return err
		}, api.ReasonApprovalIntentMismatch},
		{"unknown approver", func(id string) error {
			_, err := f.decide(t, id, approverKey{"mallory", strayKey}, approval.DecisionApprove, nil)
			return err
		}, api.ReasonApproverUnknown},
		{"registered approver, unregistered key", func(id string) error {
			_, err := f.decide(t, id, approverKey{"alice", strayKey}, approval.DecisionApprove, nil)
			return err
		}, api.ReasonApprovalBadSignature},
		{"bad signature (statement changed after signing)", func(id string) error {
			rec, _ := f.admin.GetApproval(ctx, id)
			st := approval.StatementFor(&rec, "alice", approval.DecisionApprove, "", f.now())
			sig, _ := approval.Sign(alice.key, &st)
			st.Reason = "added later"
			_, err := f.anonymous(t).Decide(ctx, api.ApprovalDecision{Statement: st, Signature: sig})
			return err
		}, api.ReasonApprovalBadSignature},
		{"signature from an hour ago", func(id string) error {
			_, err := f.decide(t, id, alice, approval.DecisionApprove, func(s *approval.Statement) { s.SignedAt -= 3600 })
			return err
		}, api.ReasonApprovalStale},
		{"unknown approval id", func(string) error {
			_, err := gate.Check(ctx, "apr_AAAAAAAAAAAAAAAAAAAAAA", bindOf(claims, 25000))
			return err
		}, api.ReasonApprovalNotFound},
		{"agent files for another requester", func(string) error {
			_, err := f.client(t, "/agent/procurement").Request(ctx, paymentRequest(claims))
			return err
		}, api.ReasonApprovalForbidden},
		{"another agent checks someone else's request", func(id string) error {
			_, err := f.client(t, "/agent/procurement").Check(ctx, id, bindOf(claims, 25000))
			return err
		}, api.ReasonApprovalForbidden},
		{"no client certificate to file", func(string) error {
			_, err := f.anonymous(t).Request(ctx, paymentRequest(claims))
			return err
		}, api.ReasonUnauthenticated},
		{"filing without an intent hash", func(string) error {
			r := paymentRequest(claims)
			r.IntentHash = ""
			_, err := gate.Request(ctx, r)
			return err
		}, api.ReasonBadRequest},
		{"filing whose hash is not that of its fields", func(string) error {
			r := paymentRequest(claims)
			r.Amount = 2500 // the hash still says 25000
			_, err := gate.Request(ctx, r)
			return err
		}, api.ReasonBadRequest},
		{"filing without an audience", func(string) error {
			r := paymentRequest(claims)
			r.Audience = ""
			_, err := gate.Request(ctx, r)
			return err
		}, api.ReasonBadRequest},
		{"consume before it is approved", func(id string) error {
			_, err := gate.Consume(ctx, id, bindOf(claims, 25000))
			return err
		}, api.ReasonApprovalPending},
		{"filing that needs no approver", func(string) error {
			r := paymentRequest(claims)
			r.Required = 0
			_, err := gate.Request(ctx, r)
			return err
		}, api.ReasonBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := file()
			if got := reason(tc.run(id)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			// Whatever was refused left the request pending with no approver.
			if s, err := gate.Check(ctx, id, bindOf(claims, 25000)); err != nil || s.Status != approval.StatePending || s.Count != 0 {
				t.Errorf("after refusal: %+v %v", s, err)
			}
		})
	}
}

// TestApprovalExpiry: past its expiry a request takes no decision and checks expired,
// even if it was approved before.
func TestApprovalExpiry(t *testing.T) {
	f := startApprovals(t, sqliteStore)
	ctx := context.Background()
	gate := f.client(t, "/gate/bank")
	alice, bob := f.approver(t, "alice", ""), f.approver(t, "bob", "")
	claims := paymentClaims(`{"amount":25000}`)
	h := bindOf(claims, 25000)
	req := paymentRequest(claims)
	req.TTLSec = 60

	pending, err := gate.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	approved, _ := gate.Request(ctx, req)
	for _, a := range []approverKey{alice, bob} {
		if _, err := f.decide(t, approved, a, approval.DecisionApprove, nil); err != nil {
			t.Fatal(err)
		}
	}
	f.advance(61 * time.Second)
	if _, err := f.decide(t, pending, alice, approval.DecisionApprove, nil); reason(err) != api.ReasonApprovalExpired {
		t.Errorf("decision after expiry: %v", err)
	}
	for _, id := range []string{pending, approved} {
		if s, err := gate.Check(ctx, id, h); err != nil || s.Status != approval.StateExpired {
			t.Errorf("check after expiry: %+v %v", s, err)
		}
	}
}

// TestApprovalDenied: one denial is final.
func TestApprovalDenied(t *testing.T) {
	f := startApprovals(t, sqliteStore)
	ctx := context.Background()
	gate := f.client(t, "/gate/bank")
	alice, bob := f.approver(t, "alice", ""), f.approver(t, "bob", "")
	claims := paymentClaims(`{"amount":25000}`)
	id, err := gate.Request(ctx, paymentRequest(claims))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := f.decide(t, id, alice, approval.DecisionDeny, nil); err != nil || s.Status != approval.StateDenied {
		t.Fatalf("deny: %+v %v", s, err)
	}
	if _, err := f.decide(t, id, bob, approval.DecisionApprove, nil); reason(err) != api.ReasonApprovalDenied {
		t.Errorf("approve after deny: %v", err)
	}
	if s, _ := gate.Check(ctx, id, bindOf(claims, 25000)); s.Status != approval.StateDenied || s.Count != 0 {
		t.Errorf("check: %+v", s)
	}
	if !slices.Contains(f.kinds(), approval.EventDenied) {
		t.Errorf("no %s event: %v", approval.EventDenied, f.kinds())
	}
}

// TestApproverAdminOnly: only the admin registers approvers; names and keys are checked.
func TestApproverAdminOnly(t *testing.T) {
	f := startApprovals(t, sqliteStore)
	ctx := context.Background()
	_, pub, _ := approval.GenerateKey()
	if _, err := f.admin.AddApprover(ctx, api.Approver{Name: "Alice!", PublicKey: string(pub)}); reason(err) != api.ReasonBadRequest {
		t.Errorf("bad name: %v", err)
	}
	if _, err := f.admin.AddApprover(ctx, api.Approver{Name: "alice", PublicKey: "not a key"}); reason(err) != api.ReasonBadRequest {
		t.Errorf("bad key: %v", err)
	}
	f.approver(t, "alice", "")
	if _, err := f.admin.AddApprover(ctx, api.Approver{Name: "alice", PublicKey: string(pub)}); reason(err) != api.ReasonConflict {
		t.Errorf("duplicate: %v", err)
	}
	gate := f.client(t, "/gate/bank")
	err := api.Do(ctx, gate.HTTP, http.MethodPost, f.url+api.PathAdminApprovers, api.Approver{Name: "eve", PublicKey: string(pub)}, nil)
	if reason(err) != api.ReasonForbidden {
		t.Errorf("gate registering an approver: %v", err)
	}
	if err := f.admin.DeleteApprover(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if as, _ := f.admin.ListApprovers(ctx); len(as) != 0 {
		t.Errorf("after delete: %v", as)
	}
}

// wrappedStore hides the SQL backend behind another store.Store type.
type wrappedStore struct{ store.Store }

// TestApprovalsOffWithoutSQLStore: on a backend without an approval store the server
// starts and the approvals API refuses (fail closed) rather than half-working.
func TestApprovalsOffWithoutSQLStore(t *testing.T) {
	f := startApprovals(t, func(t testing.TB) store.Store { return wrappedStore{sqliteStore(t)} })
	claims := paymentClaims(`{"amount":25000}`)
	if _, err := f.client(t, "/gate/bank").Request(context.Background(), paymentRequest(claims)); reason(err) != api.ReasonApprovalsOff {
		t.Errorf("file: %v", err)
	}
	if _, err := f.admin.ListApprovers(context.Background()); reason(err) != api.ReasonApprovalsOff {
		t.Errorf("list approvers: %v", err)
	}
}

// TestApprovalRetention: the server deletes approval requests that expired longer ago
// than ApprovalRetention (at start, then hourly) and keeps the others.
func TestApprovalRetention(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	aps, err := approval.NewSQLite(ctx, st.DB())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for id, expired := range map[string]time.Duration{"apr_ancient": 48 * time.Hour, "apr_recent": time.Hour, "apr_open": -time.Hour} {
		r := approval.Request{ID: id, Requester: "spiffe://supplychain.example/agent/payment-release", FiledBy: "spiffe://supplychain.example/gate/bank",
			Action: "payment.release", Resource: "Payment/P-1", Amount: 1, Currency: "EUR", IntentHash: strings.Repeat("a", 64), Required: 2,
			PolicyID: "p", Workflow: "w", Audience: "spiffe://supplychain.example/agent/bank", CreatedAt: now.Add(-expired - time.Hour), ExpiresAt: now.Add(-expired)}
		if err := aps.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := server.New(ctx, server.Config{TrustDomain: td.Name(), DataDir: dir, Store: st, ApprovalRetention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	serveUntilCleanup(t, srv)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, err := aps.GetRequest(ctx, "apr_ancient"); errors.Is(err, approval.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a request expired 48 h ago is still there with a 24 h retention")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range []string{"apr_recent", "apr_open"} {
		if _, _, err := aps.GetRequest(ctx, id); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
}
