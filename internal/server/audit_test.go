package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/sdk"
)

// startAudited starts a control plane whose audit log lives in its own SQLite store.
func startAudited(t *testing.T, att ...*server.AttestConfig) (*fixture, audit.Storage, *audit.Log) {
	t.Helper()
	return startAuditedIn(t, t.TempDir(), att...)
}

// startAuditedIn is startAudited on a data directory the test prepared.
func startAuditedIn(t *testing.T, dir string, att ...*server.AttestConfig) (*fixture, audit.Storage, *audit.Log) {
	t.Helper()
	return startAuditedConf(t, dir, func(cfg *server.Config) {
		if len(att) > 0 {
			cfg.Attestation = att[0]
		}
	})
}

// startAuditedConf is startAuditedIn with the configuration changed by mod.
func startAuditedConf(t *testing.T, dir string, mod func(*server.Config)) (*fixture, audit.Storage, *audit.Log) {
	t.Helper()
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
	cfg := server.Config{TrustDomain: td.Name(), DataDir: dir, Store: st, Audit: lg}
	mod(&cfg)
	srv, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveUntilCleanup(t, srv)
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
	const admin, server = "spiffe://supplychain.example/warden/admin", "server"
	want := []struct{ kind, outcome, reason, actor string }{
		{"entry", "created", "operator_create_entry", admin},
		{"join_token", "created", "operator_create_token", admin},
		{"enrollment", "granted", "enrollment_granted", server},
		{"renewal", "granted", "renewal_granted", server},
		{"revocation", "revoked", "operator_revoke", admin},
		{"renewal", "refused", "identity_revoked", server},
	}
	got := events(t, st)
	if len(got) != len(want) {
		t.Fatalf("%d events: %+v", len(got), got)
	}
	for i, w := range want {
		e := got[i]
		if string(e.Kind) != w.kind || e.Outcome != w.outcome || e.Reason != w.reason || e.Actor != w.actor || e.Subject != "spiffe://supplychain.example/agent/procurement" {
			t.Errorf("event %d = %s/%s/%s by %s about %s, want %+v", i, e.Kind, e.Outcome, e.Reason, e.Actor, e.Subject, w)
		}
		if w.actor == admin && (e.Detail["credential_serial"] == "" || e.Detail["request_id"] == "") {
			t.Errorf("event %d (%s): admin credential serial or request id missing: %v", i, e.Kind, e.Detail)
		}
	}
	if d := got[4].Detail; d["trust_state_version"] == "" || d["text"] != "test" {
		t.Errorf("revocation detail %v: want the trust-state version and the operator's text", d)
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

// TestGateIdentityShipsForItsAgent: a gate with its own /gate/ identity, registered with
// --guards, ships decisions about the agent it guards (gate_id = the gate, callee or,
// outbound, caller = the agent); decisions about any other agent, a gate registered for
// no agent, an agent shipping about another agent and a gate of a weaker class than its
// agent are refused with a reason naming the cause.
func TestGateIdentityShipsForItsAgent(t *testing.T) {
	f, st, _ := startAudited(t)
	ctx := context.Background()
	agentSVID, agentSrc := f.enroll(t, "vendor-portal") // transactional
	agent := agentSVID.ID.String()
	if _, err := f.admin.CreateEntry(ctx, api.Entry{Name: "vp-gate", Kind: "gate", Guards: "vendor-portal", Class: "advisory"}); err == nil ||
		!strings.Contains(err.Error(), "class of the agent it guards") {
		t.Errorf("gate of a weaker class than its agent: %v", err)
	}
	e, err := f.admin.CreateEntry(ctx, api.Entry{Name: "vp-gate", Kind: "gate", Guards: "vendor-portal"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Guards != agent || e.Class != "transactional" || e.Zone != "cloud" || e.SPIFFEID != "spiffe://supplychain.example/gate/vp-gate" {
		t.Fatalf("gate entry %+v", e)
	}
	if _, err := f.admin.CreateEntry(ctx, api.Entry{Name: "stray-gate", Kind: "gate", Role: "gate", Class: "transactional", Zone: "cloud"}); err != nil {
		t.Fatal(err)
	}
	gateSrc := func(name string) *sdk.Source {
		svid, bundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: f.url, Token: f.token(t, name, time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		src, _ := sdk.NewSource(sdk.SourceConfig{ServerURL: f.url, SVID: svid, Bundle: bundle})
		t.Cleanup(src.HTTPClient().CloseIdleConnections)
		return src
	}
	gw, stray := gateSrc("vp-gate"), gateSrc("stray-gate")
	gwID := "spiffe://supplychain.example/gate/vp-gate"
	ev := func(id, gateID, caller, callee, mode string) []byte {
		e := audit.Event{V: 1, ID: id, Kind: audit.KindDecision, Time: time.Now(), GateID: gateID, Caller: caller, Callee: callee,
			Action: "purchase_order.create", Decision: audit.DecisionAllow, Reason: "policy_allow", Detail: map[string]string{"mode": mode}}
		b, err := e.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	buyer := "spiffe://supplychain.example/agent/procurement"
	ok := audit.HTTPSink{URL: f.url, Client: gw.HTTPClient()}
	if err := ok.Ship(ctx, [][]byte{ev("dec-in", gwID, buyer, agent, "inbound"), ev("dec-out", gwID, agent, buyer, "outbound")}); err != nil {
		t.Fatalf("the gate's own shipment about its agent: %v", err)
	}
	for _, tc := range []struct {
		name   string
		client *http.Client
		batch  []byte
		want   string
	}{
		{"gate about another agent", gw.HTTPClient(), ev("dec-x1", gwID, agent, buyer, "inbound"), "not an agent"},
		{"gate in the agent's name", gw.HTTPClient(), ev("dec-x2", agent, buyer, agent, "inbound"), "is not the shipping identity"},
		{"gate guarding no agent", stray.HTTPClient(), ev("dec-x3", "spiffe://supplychain.example/gate/stray-gate", buyer, agent, "inbound"), "guards no agent"},
		{"agent about another agent", agentSrc.HTTPClient(), ev("dec-x4", agent, agent, buyer, "inbound"), "not an agent"},
	} {
		err := audit.HTTPSink{URL: f.url, Client: tc.client}.Ship(ctx, [][]byte{tc.batch})
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.ReasonForbidden || !strings.Contains(ae.Message, tc.want) {
			t.Errorf("%s: %v, want forbidden naming %q", tc.name, err, tc.want)
		}
	}
	var ids []string
	for _, e := range events(t, st) {
		if e.Kind == audit.KindDecision {
			ids = append(ids, e.ID)
		}
	}
	if strings.Join(ids, ",") != "dec-in,dec-out" {
		t.Errorf("decision events in the log: %v", ids)
	}
}

// TestDenialsAtGateChallengeTheCaller: repeated denials shipped by a gate raise an
// anomaly in the audit log and push an event-driven attestation challenge to the caller.
func TestDenialsAtGateChallengeTheCaller(t *testing.T) {
	f, st, _ := startAudited(t, &server.AttestConfig{})
	ctx := context.Background()
	for _, name := range []string{"vendor-portal", "demand-planner"} {
		if _, err := f.admin.CreateEntry(ctx, api.Entry{Name: name, Role: "r", Class: "advisory", Zone: "cloud"}); err != nil {
			t.Fatal(err)
		}
	}
	tok, _ := f.admin.CreateToken(ctx, "vendor-portal", time.Minute)
	svid, bundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: f.url, Token: tok.Token})
	if err != nil {
		t.Fatal(err)
	}
	gateSrc, _ := sdk.NewSource(sdk.SourceConfig{ServerURL: f.url, SVID: svid, Bundle: bundle})
	defer gateSrc.HTTPClient().CloseIdleConnections()
	self := "spiffe://supplychain.example/agent/vendor-portal"
	caller := "spiffe://supplychain.example/agent/demand-planner"
	var batch [][]byte
	for i := 0; i < 6; i++ {
		e := audit.Event{V: 1, ID: fmt.Sprintf("dec-%d", i), Kind: audit.KindDecision, Time: time.Now(), GateID: self,
			Caller: caller, Callee: self, Action: "payment.release", Decision: audit.DecisionDeny, Reason: "policy_deny"}
		b, _ := e.Canonical()
		batch = append(batch, b)
	}
	if err := (audit.HTTPSink{URL: f.url, Client: gateSrc.HTTPClient()}).Ship(ctx, batch); err != nil {
		t.Fatal(err)
	}
	anomalies := 0
	for _, e := range events(t, st) {
		if e.Kind == audit.KindAnomaly && e.Subject == caller {
			anomalies++
		}
	}
	if anomalies == 0 {
		t.Error("no anomaly event for repeated denials")
	}
	_, doc := f.srv.Trust().Current()
	if _, ok := doc.Challenges[caller]; !ok {
		t.Errorf("no challenge pushed to %s: %+v", caller, doc.Challenges)
	}
}

// TestStaleAttestationAsksForFreshEvidence: a call refused for a missing or stale
// attestation pushes a challenge to the caller, so its retry can pass.
func TestStaleAttestationAsksForFreshEvidence(t *testing.T) {
	f, _, _ := startAudited(t, &server.AttestConfig{})
	ctx := context.Background()
	for _, name := range []string{"vendor-portal", "payment-release"} {
		if _, err := f.admin.CreateEntry(ctx, api.Entry{Name: name, Role: "r", Class: "advisory", Zone: "cloud"}); err != nil {
			t.Fatal(err)
		}
	}
	tok, _ := f.admin.CreateToken(ctx, "vendor-portal", time.Minute)
	svid, bundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: f.url, Token: tok.Token})
	if err != nil {
		t.Fatal(err)
	}
	gateSrc, _ := sdk.NewSource(sdk.SourceConfig{ServerURL: f.url, SVID: svid, Bundle: bundle})
	defer gateSrc.HTTPClient().CloseIdleConnections()
	self, caller := "spiffe://supplychain.example/agent/vendor-portal", "spiffe://supplychain.example/agent/payment-release"
	e := audit.Event{V: 1, ID: "dec-stale", Kind: audit.KindDecision, Time: time.Now(), GateID: self, Caller: caller, Callee: self,
		Action: "payment.release", Decision: audit.DecisionDeny, Reason: "attestation_required"}
	b, _ := e.Canonical()
	if err := (audit.HTTPSink{URL: f.url, Client: gateSrc.HTTPClient()}).Ship(ctx, [][]byte{b}); err != nil {
		t.Fatal(err)
	}
	_, doc := f.srv.Trust().Current()
	if c, ok := doc.Challenges[caller]; !ok || c.Rule != "fresh_attestation_required" {
		t.Errorf("challenge for %s: %+v", caller, doc.Challenges)
	}
}

// TestRefusedRequestsAudited: control-plane refusals other than enrollment and renewal are
// access events with the reason code and the caller: an agent on the admin API, a
// revoked agent fetching the trust state and a JWT-SVID, a request without a certificate.
func TestRefusedRequestsAudited(t *testing.T) {
	f, st, _ := startAudited(t)
	ctx := context.Background()
	_, src := f.enroll(t, "procurement")
	agent := "spiffe://supplychain.example/agent/procurement"
	get := func(c *http.Client, path string) int {
		res, err := c.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := get(src.HTTPClient(), api.PathAdminEntries); code != http.StatusForbidden {
		t.Fatalf("agent on the admin API: %d", code)
	}
	if _, err := f.admin.ChangeTrust(ctx, "revoke", api.TrustChange{ID: agent, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if code := get(src.HTTPClient(), api.PathTrustState); code != http.StatusForbidden {
		t.Fatalf("revoked agent fetching the trust state: %d", code)
	}
	body, _ := json.Marshal(api.JWTSVIDRequest{Audience: []string{"spiffe://supplychain.example/agent/erp"}})
	res, err := src.HTTPClient().Post(f.url+api.PathJWTSVID, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("revoked agent asking for a JWT-SVID: %d", res.StatusCode)
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if code := get(insecure, api.PathTrustState); code != http.StatusUnauthorized {
		t.Fatalf("no certificate: %d", code)
	}
	want := []struct{ subject, reason, path string }{
		{agent, api.ReasonForbidden, api.PathAdminEntries},
		{agent, api.ReasonIdentityRevoked, api.PathTrustState},
		{agent, api.ReasonIdentityRevoked, api.PathJWTSVID},
		{"unauthenticated", api.ReasonUnauthenticated, api.PathTrustState},
	}
	var got []audit.Event
	for _, ev := range events(t, st) {
		if ev.Kind == audit.KindAccess {
			got = append(got, ev)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d access events, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		e := got[i]
		if e.Subject != w.subject || e.Reason != w.reason || e.Outcome != "refused" || e.Detail["path"] != w.path || e.Detail["request_id"] == "" {
			t.Errorf("access event %d: %s %s %s %v, want %+v", i, e.Subject, e.Reason, e.Outcome, e.Detail, w)
		}
	}
}

// serveUntilCleanup runs srv on a loopback listener until the test ends.
func serveUntilCleanup(t testing.TB, srv *server.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	for srv.URL() == "" {
		time.Sleep(time.Millisecond)
	}
}

// TestIntermediateRotatedAtStart: a control plane whose intermediate CA has less than a
// third of its year left replaces it when it starts, records a ca_rotation event, and
// agents enrolled after it get SVIDs that chain to the same root through the new one.
func TestIntermediateRotatedAtStart(t *testing.T) {
	dir := t.TempDir()
	old, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: filepath.Join(dir, "ca"),
		Now: func() time.Time { return time.Now().Add(-300 * 24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	oldInter := old.Intermediates()[0]
	f, storage, _ := startAuditedIn(t, dir)
	srv := f.srv
	inter := srv.CA().Intermediates()[0]
	if inter.Equal(oldInter) || !srv.CA().Root().Equal(old.Root()) || srv.CA().IntermediateDue(time.Now()) {
		t.Fatal("the intermediate was not replaced under the same root")
	}
	var rotated []audit.Event
	for _, ev := range events(t, storage) {
		if ev.Kind == audit.KindCARotation && ev.Subject == "intermediate" { // its JWT key is due too: subject jwt_key
			rotated = append(rotated, ev)
		}
	}
	if len(rotated) != 1 || rotated[0].Serial != ca.SerialHex(inter) || rotated[0].Detail["previous_serial"] != ca.SerialHex(oldInter) {
		t.Fatalf("ca_rotation events: %+v", rotated)
	}
	svid, _ := f.enroll(t, "procurement")
	if len(svid.Certificates) != 2 || !svid.Certificates[1].Equal(inter) {
		t.Fatalf("enrolled SVID chain does not go through the new intermediate")
	}
	if _, _, err := x509svid.Verify(svid.Certificates, old.X509Bundle()); err != nil {
		t.Fatalf("the new SVID does not verify against the unchanged bundle: %v", err)
	}
}

// TestHandshakeRefusalAudited: a client certificate that is no X509-SVID of the bundle
// fails the handshake at the control plane and leaves an access event naming the identity
// it claimed (not as its subject) and its hash.
func TestHandshakeRefusalAudited(t *testing.T) {
	f, st, _ := startAudited(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	claimed := "spiffe://supplychain.example/warden/admin"
	u, _ := url.Parse(claimed)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(9), URIs: []*url.URL{u}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}}
	if res, err := c.Get(f.url + api.PathAdminEntries); err == nil {
		res.Body.Close()
		t.Fatalf("a self-signed admin certificate got an answer: %d", res.StatusCode)
	}
	sum := sha256.Sum256(der)
	var got []audit.Event
	for _, ev := range events(t, st) {
		if ev.Kind == audit.KindAccess && ev.Reason == "untrusted_certificate" {
			got = append(got, ev)
		}
	}
	if len(got) != 1 || got[0].Subject != "unauthenticated" || got[0].Detail["claimed_id"] != claimed ||
		got[0].Detail["certificate_sha256"] != hex.EncodeToString(sum[:]) || got[0].Detail["remote"] == "" {
		t.Fatalf("access events: %+v", got)
	}
}
