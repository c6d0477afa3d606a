package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"go.uber.org/goleak"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var td = spiffeid.RequireTrustDomainFromString("supplychain.example")

type fixture struct {
	srv   *server.Server
	admin *adminclient.Client
	url   string
	dir   string
}

type options struct {
	ttl   time.Duration
	store func(t testing.TB) store.Store
	now   func() time.Time
	att   *server.AttestConfig
	// recoverWindow is Config.RecoverWindow.
	recoverWindow time.Duration
	mod           func(*server.Config) // changes the config before New
	td            string               // default supplychain.example
}

func sqliteStore(t testing.TB) store.Store {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func start(t testing.TB, o options) *fixture {
	t.Helper()
	if o.store == nil {
		o.store = sqliteStore
	}
	dir := t.TempDir()
	name := td.Name()
	if o.td != "" {
		name = o.td
	}
	cfg := server.Config{TrustDomain: name, DataDir: dir, Store: o.store(t), SVIDTTL: o.ttl, Now: o.now, Attestation: o.att, RecoverWindow: o.recoverWindow}
	if o.mod != nil {
		o.mod(&cfg)
	}
	srv, err := server.New(context.Background(), cfg)
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
	return &fixture{srv: srv, admin: admin, url: srv.URL(), dir: dir}
}

func (f *fixture) entry(t testing.TB, name string) {
	t.Helper()
	if _, err := f.admin.CreateEntry(context.Background(), api.Entry{Name: name, Role: "procurement", Class: "transactional", Zone: "cloud"}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) token(t testing.TB, name string, ttl time.Duration) string {
	t.Helper()
	tok, err := f.admin.CreateToken(context.Background(), name, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

func (f *fixture) enroll(t testing.TB, name string) (*x509svid.SVID, *sdk.Source) {
	t.Helper()
	f.entry(t, name)
	svid, bundle, err := sdk.Enroll(context.Background(), sdk.EnrollConfig{ServerURL: f.url, Token: f.token(t, name, time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	src, err := sdk.NewSource(sdk.SourceConfig{ServerURL: f.url, SVID: svid, Bundle: bundle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.HTTPClient().CloseIdleConnections)
	return svid, src
}

// servedBundle fetches /v1/bundle (the SPIFFE bundle, JWKS) as a relying party would.
func (f *fixture) servedBundle(t *testing.T) *spiffebundle.Bundle {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	res, err := c.Get(f.url + api.PathBundle)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	b, err := spiffebundle.Parse(td, body)
	if err != nil {
		t.Fatalf("served bundle: %v\n%s", err, body)
	}
	if !strings.Contains(string(body), `"use":"x509-svid"`) {
		t.Errorf("bundle has no x509-svid key: %s", body)
	}
	return b
}

func reason(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	if err == nil {
		return ""
	}
	return "error: " + err.Error()
}

// TestIssuedSVIDsVerify: every issued SVID passes go-spiffe x509svid.Verify against the
// served bundle, has exactly one URI SAN and a lifetime no longer than its TTL.
func TestIssuedSVIDsVerify(t *testing.T) {
	for _, ttl := range []time.Duration{0, 2 * time.Minute, 24 * time.Hour} {
		f := start(t, options{ttl: ttl})
		bundle := f.servedBundle(t)
		svid, src := f.enroll(t, "procurement")
		if err := src.Renew(context.Background()); err != nil {
			t.Fatal(err)
		}
		renewed, _ := src.GetX509SVID()
		want := ttl
		if want == 0 {
			want = 15 * time.Minute
		}
		for _, s := range []*x509svid.SVID{svid, renewed} {
			id, _, err := x509svid.Verify(s.Certificates, bundle)
			if err != nil {
				t.Fatalf("ttl %s: go-spiffe rejects the SVID: %v", ttl, err)
			}
			if id.String() != "spiffe://supplychain.example/agent/procurement" {
				t.Errorf("id = %s", id)
			}
			leaf := s.Certificates[0]
			if len(leaf.URIs) != 1 || len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
				t.Errorf("SANs: uris %v dns %v ips %v", leaf.URIs, leaf.DNSNames, leaf.IPAddresses)
			}
			if life := leaf.NotAfter.Sub(leaf.NotBefore); life > want {
				t.Errorf("ttl %s: lifetime %s", ttl, life)
			}
			if leaf.IsCA || leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
				t.Errorf("leaf usage wrong: CA=%v usage=%v", leaf.IsCA, leaf.KeyUsage)
			}
		}
		if renewed.Certificates[0].SerialNumber.Cmp(svid.Certificates[0].SerialNumber) == 0 {
			t.Error("renewal reused the serial")
		}
	}
}

func TestTTLAboveMaximumRefused(t *testing.T) {
	_, err := server.New(context.Background(), server.Config{TrustDomain: td.Name(), DataDir: t.TempDir(), Store: sqliteStore(t), SVIDTTL: 25 * time.Hour})
	if err == nil {
		t.Fatal("a 25h SVID TTL was accepted")
	}
}

func TestJWTSVID(t *testing.T) {
	f := start(t, options{})
	_, src := f.enroll(t, "logistics")
	var resp api.JWTSVIDResponse
	body, _ := json.Marshal(api.JWTSVIDRequest{Audience: []string{"spiffe://supplychain.example/agent/erp"}})
	res, err := src.HTTPClient().Post(f.url+api.PathJWTSVID, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&resp); err != nil || res.StatusCode != 200 {
		t.Fatalf("status %d err %v", res.StatusCode, err)
	}
	jb := jwtbundle.FromJWTAuthorities(td, f.servedBundle(t).JWTAuthorities())
	sv, err := jwtsvid.ParseAndValidate(resp.Token, jb, []string{"spiffe://supplychain.example/agent/erp"})
	if err != nil {
		t.Fatalf("go-spiffe rejects the JWT-SVID: %v", err)
	}
	if sv.ID.String() != "spiffe://supplychain.example/agent/logistics" {
		t.Errorf("sub = %s", sv.ID)
	}
	if _, err := jwtsvid.ParseAndValidate(resp.Token, jb, []string{"spiffe://supplychain.example/agent/other"}); err == nil {
		t.Error("JWT-SVID accepted for another audience")
	}
}

// rawEnroll posts an enrollment with a caller-made CSR, as an attacker could.
func rawEnroll(t *testing.T, f *fixture, token string, csr []byte) error {
	t.Helper()
	body, _ := json.Marshal(api.EnrollRequest{Token: token, CSR: csr})
	return rawPost(t, f.url+api.PathEnroll, "application/json", body)
}

func rawPost(t *testing.T, url, ctype string, body []byte) error {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	res, err := c.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode == 200 {
		return nil
	}
	ae := &api.Error{Status: res.StatusCode}
	if err := json.Unmarshal(data, ae); err != nil || ae.Code == "" {
		t.Fatalf("status %d without a reason: %s", res.StatusCode, data)
	}
	if res.StatusCode < 400 || res.StatusCode >= 500 {
		t.Errorf("status %d for %s", res.StatusCode, ae.Code)
	}
	return ae
}

func csrFor(t *testing.T, key crypto.Signer, uris ...string) []byte {
	t.Helper()
	tpl := &x509.CertificateRequest{}
	for _, u := range uris {
		pu, _ := url.Parse(u)
		tpl.URIs = append(tpl.URIs, pu)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestJoinTokens(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := start(t, options{now: clock})
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	f.entry(t, "procurement")
	tok := f.token(t, "procurement", time.Minute)
	if err := rawEnroll(t, f, tok, csrFor(t, p256)); err != nil {
		t.Fatalf("first use: %v", err)
	}
	t.Run("reused-token", func(t *testing.T) {
		if got := reason(rawEnroll(t, f, tok, csrFor(t, p256))); got != api.ReasonTokenUsed {
			t.Errorf("got %q", got)
		}
	})
	t.Run("expired-token", func(t *testing.T) {
		tok := f.token(t, "procurement", time.Minute)
		mu.Lock()
		now = now.Add(2 * time.Minute)
		mu.Unlock()
		if got := reason(rawEnroll(t, f, tok, csrFor(t, p256))); got != api.ReasonTokenExpired {
			t.Errorf("got %q", got)
		}
	})
	t.Run("token-for-deleted-entry", func(t *testing.T) {
		f.entry(t, "vendor-portal")
		tok := f.token(t, "vendor-portal", time.Hour)
		if err := f.admin.DeleteEntry(context.Background(), "vendor-portal"); err != nil {
			t.Fatal(err)
		}
		if got := reason(rawEnroll(t, f, tok, csrFor(t, p256))); got != api.ReasonTokenInvalid && got != api.ReasonEntryNotFound {
			t.Errorf("got %q", got)
		}
	})
	t.Run("unknown-token", func(t *testing.T) {
		other := start(t, options{})
		other.entry(t, "x")
		foreign := other.token(t, "x", time.Minute) // right format, wrong server
		if got := reason(rawEnroll(t, f, foreign, csrFor(t, p256))); got != api.ReasonTokenInvalid {
			t.Errorf("got %q", got)
		}
		if got := reason(rawEnroll(t, f, "not-a-token", csrFor(t, p256))); got != api.ReasonTokenInvalid {
			t.Errorf("garbage token: got %q", got)
		}
	})
}

func TestCSRChecks(t *testing.T) {
	f := start(t, options{})
	f.entry(t, "logistics")
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	own := "spiffe://supplychain.example/agent/logistics"
	cases := []struct {
		name string
		csr  []byte
		want string
	}{
		{"csr-for-another-spiffe-id", csrFor(t, p256, "spiffe://supplychain.example/agent/payment-release"), api.ReasonCSRIDMismatch},
		{"csr-for-two-ids", csrFor(t, p256, own, "spiffe://supplychain.example/agent/x"), api.ReasonCSRIDMismatch},
		{"rsa-1024", csrFor(t, rsa1024), api.ReasonWeakKey},
		{"ecdsa-p224", csrFor(t, p224), api.ReasonWeakKey},
		{"ecdsa-p521-unsupported-curve", csrFor(t, p521), api.ReasonWeakKey},
		{"garbage-csr", []byte("this is not DER"), api.ReasonCSRInvalid},
		{"own-id-p256", csrFor(t, p256, own), ""},
		{"rsa-2048", csrFor(t, rsa2048), ""},
		{"ed25519", csrFor(t, ed), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := reason(rawEnroll(t, f, f.token(t, "logistics", time.Minute), c.csr)); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestBadRequests: malformed input gets a 4xx with a reason and the server stays up.
func TestBadRequests(t *testing.T) {
	f := start(t, options{})
	big := append([]byte(`{"token":"`), bytes.Repeat([]byte("a"), api.MaxBodyBytes+10)...)
	cases := []struct {
		name, ctype string
		body        []byte
		want        string
	}{
		{"wrong-content-type", "text/plain", []byte(`{}`), api.ReasonUnsupportedMedia},
		{"oversized-body", "application/json", big, api.ReasonBodyTooLarge},
		{"not-json", "application/json", []byte(`{{{`), api.ReasonBadRequest},
		{"unknown-field", "application/json", []byte(`{"token":"x","admin":true}`), api.ReasonBadRequest},
		{"trailing-data", "application/json", []byte(`{"token":"x"} {}`), api.ReasonBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := reason(rawPost(t, f.url+api.PathEnroll, c.ctype, c.body)); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	t.Run("admin-without-credential", func(t *testing.T) {
		if got := reason(rawPost(t, f.url+api.PathAdminEntries, "application/json", []byte(`{"name":"evil","role":"x","class":"regulated","zone":"z"}`))); got != api.ReasonUnauthenticated {
			t.Errorf("got %q", got)
		}
	})
	t.Run("admin-with-agent-credential", func(t *testing.T) {
		_, src := f.enroll(t, "procurement")
		res, err := src.HTTPClient().Post(f.url+api.PathAdminTokens, "application/json", strings.NewReader(`{"entry":"procurement","ttl_s":60}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("agent reached the admin API: %d", res.StatusCode)
		}
	})
	t.Run("renew-without-credential", func(t *testing.T) {
		if got := reason(rawPost(t, f.url+api.PathRenew, "application/json", []byte(`{}`))); got != api.ReasonUnauthenticated {
			t.Errorf("got %q", got)
		}
	})
	// Still up.
	if _, err := f.admin.ListEntries(context.Background()); err != nil {
		t.Fatalf("server not answering after bad requests: %v", err)
	}
}

func TestRevokedSuspendedUnknownCannotRenew(t *testing.T) {
	f := start(t, options{})
	ctx := context.Background()
	_, revoked := f.enroll(t, "demand-planner")
	_, suspended := f.enroll(t, "payment-release")
	_, deleted := f.enroll(t, "old-agent")
	_, quarantined := f.enroll(t, "edge-sensor")
	_, bySerial := f.enroll(t, "vendor-portal")
	mustChange := func(op string, ch api.TrustChange) {
		t.Helper()
		if _, err := f.admin.ChangeTrust(ctx, op, ch); err != nil {
			t.Fatal(err)
		}
	}
	mustChange("revoke", api.TrustChange{ID: "spiffe://supplychain.example/agent/demand-planner", Reason: "test"})
	mustChange("suspend", api.TrustChange{ID: "spiffe://supplychain.example/agent/payment-release", Reason: "test"})
	mustChange("quarantine", api.TrustChange{ID: "spiffe://supplychain.example/agent/edge-sensor", Reason: "test"})
	sv, _ := bySerial.GetX509SVID()
	mustChange("revoke", api.TrustChange{Serial: strings.ToLower(sv.Certificates[0].SerialNumber.Text(16)), Reason: "key leaked"})
	if err := f.admin.DeleteEntry(ctx, "old-agent"); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		src  *sdk.Source
		want string
	}{
		"revoked-identity": {revoked, api.ReasonIdentityRevoked},
		"revoked-serial":   {bySerial, api.ReasonIdentityRevoked},
		"suspended":        {suspended, api.ReasonIdentitySuspend},
		"unknown-identity": {deleted, api.ReasonUnknownIdentity},
		"quarantined":      {quarantined, ""}, // quarantine restricts calls by policy, not renewal
	} {
		t.Run(name, func(t *testing.T) {
			if got := reason(c.src.Renew(ctx)); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	mustChange("restore", api.TrustChange{ID: "spiffe://supplychain.example/agent/payment-release", Reason: "cleared"})
	if err := suspended.Renew(ctx); err != nil {
		t.Errorf("restored agent cannot renew: %v", err)
	}
	// Status is reported on the admin API.
	entries, _ := f.admin.ListEntries(ctx)
	got := map[string]string{}
	for _, e := range entries {
		got[e.Name] = e.Status
	}
	if got["demand-planner"] != "revoked" || got["edge-sensor"] != "quarantined" || got["payment-release"] != "active" {
		t.Errorf("statuses: %v", got)
	}
}

// TestRevocationOnStreamWithin1s: a follower on the watch stream holds a verified
// document listing the revocation within one second of the admin call returning.
func TestRevocationOnStreamWithin1s(t *testing.T) {
	f := start(t, options{})
	_, gate := f.enroll(t, "gate-vendor")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fo := truststate.NewFollower(truststate.FollowerConfig{URL: f.url, Client: gate.HTTPClient(), Bundle: gate, TrustDomain: td})
	updates := make(chan *truststate.Document, 8)
	done := make(chan struct{})
	go func() { defer close(done); _ = fo.Run(ctx, func(d *truststate.Document) { updates <- d }) }()
	defer func() { cancel(); <-done }()
	first := <-updates
	start := time.Now()
	if _, err := f.admin.ChangeTrust(ctx, "revoke", api.TrustChange{ID: "spiffe://supplychain.example/agent/procurement", Reason: "stolen"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(time.Second)
	for {
		select {
		case d := <-updates:
			if _, ok := d.IsRevoked("spiffe://supplychain.example/agent/procurement", ""); ok {
				if d.Version <= first.Version {
					t.Errorf("version did not increase: %d -> %d", first.Version, d.Version)
				}
				t.Logf("seen after %s", time.Since(start))
				return
			}
		case <-deadline:
			t.Fatal("revocation not on the stream within 1s")
		}
	}
}

// TestConcurrentEnrollments: 100 agents enrol at once; all succeed with unique serials.
func TestConcurrentEnrollments(t *testing.T) {
	concurrentEnrollments(t, start(t, options{}))
}

func concurrentEnrollments(t *testing.T, f *fixture) {
	const n = 100
	tokens := make([]string, n)
	for i := range tokens {
		name := "agent-" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		f.entry(t, name)
		tokens[i] = f.token(t, name, time.Minute)
	}
	serials := make(chan string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for _, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svid, _, err := sdk.Enroll(context.Background(), sdk.EnrollConfig{ServerURL: f.url, Token: tok})
			if err != nil {
				errs <- err
				return
			}
			serials <- svid.Certificates[0].SerialNumber.String()
		}()
	}
	wg.Wait()
	close(errs)
	close(serials)
	for err := range errs {
		t.Error(err)
	}
	seen := map[string]bool{}
	for s := range serials {
		if seen[s] {
			t.Errorf("duplicate serial %s", s)
		}
		seen[s] = true
	}
	if len(seen) != n {
		t.Errorf("%d unique serials, want %d", len(seen), n)
	}
}

func TestCAFilesPrivate(t *testing.T) {
	f := start(t, options{})
	for _, sub := range []string{"ca", "admin"} {
		ents, err := os.ReadDir(filepath.Join(f.dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			info, _ := e.Info()
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s/%s has mode %v", sub, e.Name(), info.Mode().Perm())
			}
		}
	}
	// A second start on the same data dir keeps the same CA.
	srv2, err := server.New(context.Background(), server.Config{TrustDomain: td.Name(), DataDir: f.dir, Store: sqliteStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !srv2.CA().Root().Equal(f.srv.CA().Root()) {
		t.Error("restart made a new root CA")
	}
	// ...and refuses another trust domain's data dir.
	if _, err := server.New(context.Background(), server.Config{TrustDomain: "other.example", DataDir: f.dir, Store: sqliteStore(t)}); err == nil {
		t.Error("data dir of supplychain.example accepted for other.example")
	}
}

// TestGateEntries: a gate registers as spiffe://TD/gate/NAME, enrols like an agent, and
// its name cannot take an agent's name.
func TestGateEntries(t *testing.T) {
	f := start(t, options{})
	ctx := context.Background()
	e, err := f.admin.CreateEntry(ctx, api.Entry{Name: "treasury", Kind: "gate", Role: "gate", Class: "regulated", Zone: "finance"})
	if err != nil {
		t.Fatal(err)
	}
	if e.SPIFFEID != "spiffe://supplychain.example/gate/treasury" || e.Kind != "gate" {
		t.Fatalf("entry %+v", e)
	}
	tok := f.token(t, "treasury", time.Minute)
	svid, _, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: f.url, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if svid.ID.String() != e.SPIFFEID {
		t.Errorf("enrolled as %s", svid.ID)
	}
	if _, err := f.admin.CreateEntry(ctx, api.Entry{Name: "treasury", Role: "r", Class: "advisory", Zone: "z"}); reason(err) != api.ReasonConflict {
		t.Errorf("agent with a gate's name: %v", err)
	}
	if _, err := f.admin.CreateEntry(ctx, api.Entry{Name: "x", Kind: "server", Role: "r", Class: "advisory", Zone: "z"}); reason(err) != api.ReasonBadRequest {
		t.Errorf("kind server: %v", err)
	}
}

// TestDirectoryInTrustState: the signed trust state carries every entry's attributes,
// following creates and deletes, so gates need no local copy of them.
func TestDirectoryInTrustState(t *testing.T) {
	f := start(t, options{})
	ctx := context.Background()
	f.entry(t, "procurement")
	_, doc := f.srv.Trust().Current()
	d, ok := doc.Directory["spiffe://supplychain.example/agent/procurement"]
	if !ok || d.Role != "procurement" || d.Class != "transactional" || d.Zone != "cloud" {
		t.Fatalf("directory after create: %+v", doc.Directory)
	}
	if err := f.admin.DeleteEntry(ctx, "procurement"); err != nil {
		t.Fatal(err)
	}
	if _, doc = f.srv.Trust().Current(); len(doc.Directory) != 0 {
		t.Errorf("directory after delete: %+v", doc.Directory)
	}
}
