package gate_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/truststate"
)

// shortSVID issues an SVID for path that lives ttl.
func (e *env) shortSVID(path string, ttl time.Duration) *x509svid.SVID {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id := spiffeid.RequireFromPath(td, path)
	cert, err := e.ca.SignX509SVID(ca.X509Request{PublicKey: key.Public(), ID: id, TTL: ttl})
	if err != nil {
		e.t.Fatal(err)
	}
	return &x509svid.SVID{ID: id, Certificates: append([]*x509.Certificate{cert}, e.ca.Intermediates()...), PrivateKey: key}
}

// outboundCall sends one SendMessage through the outbound gate on its unix socket and
// returns the refusal's reason code and message ("" if the call went through).
func outboundCall(t *testing.T, sock string) (string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://outbound-gate/", strings.NewReader(string(rpcBody("purchase_order.read", "Order/PO-1"))))
	req.Header.Set("X-Warden-Action", "purchase_order.read")
	res, err := unixClient(sock).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b := string(readAll(t, res))
	if !strings.Contains(b, `"error"`) {
		return "", ""
	}
	for _, code := range []string{gate.ReasonSVIDExpired, gate.ReasonUpstreamTLS, gate.ReasonUpstream} {
		if strings.Contains(b, `"reason":"`+code+`"`) {
			return code, b
		}
	}
	return "other", b
}

// TestOutboundNamesTLSCauses: a call the outbound gate cannot complete names why —
// its own SVID expired (gate_svid_expired, before anything is sent), or the remote
// gate's certificate expired (upstream_tls_failed) — instead of upstream_unavailable.
func TestOutboundNamesTLSCauses(t *testing.T) {
	e := newEnv(t)
	in, inSVID := e.inbound(startAgent(t).url, nil)
	remote := "https://" + startGate(t, in, "tcp")

	// This gate's own SVID expired: refused here, with the SVID and its expiry named.
	own := e.shortSVID("/agent/procurement", time.Second)
	time.Sleep(time.Until(own.Certificates[0].NotAfter) + 50*time.Millisecond)
	sock := startGate(t, e.outbound(remote, &rotSVID{s: own}), "unix")
	if code, body := outboundCall(t, sock); code != gate.ReasonSVIDExpired || !strings.Contains(body, "spiffe://supplychain.example/agent/procurement") ||
		!strings.Contains(body, "warden enroll --watch") {
		t.Errorf("own SVID expired: %s %s", code, body)
	}

	// The remote gate presents an expired certificate.
	expired := e.shortSVID("/gate/vendor-portal", time.Second)
	inSVID.set(expired)
	time.Sleep(time.Until(expired.Certificates[0].NotAfter) + 50*time.Millisecond)
	sock = startGate(t, e.outbound(remote, &rotSVID{s: e.svid("/agent/procurement")}), "unix")
	if code, body := outboundCall(t, sock); code != gate.ReasonUpstreamTLS || !strings.Contains(body, "expired") {
		t.Errorf("remote certificate expired: %s %s", code, body)
	}
	inSVID.set(e.svid("/gate/vendor-portal"))
	if code, body := outboundCall(t, sock); code != "" {
		t.Errorf("after the remote rotated: %s %s", code, body)
	}
}

// fixedTrust is a TrustSource holding one document of a given age.
type fixedTrust struct {
	doc *truststate.Document
	age time.Duration
}

func (f fixedTrust) Current() (*truststate.Document, time.Duration) { return f.doc, f.age }

// TestReady: a gate is ready with a valid SVID, a loaded policy and a trust state within
// max_staleness; each missing piece is named.
func TestReady(t *testing.T) {
	e := newEnv(t)
	doc := &truststate.Document{TrustDomain: td.Name(), Version: 3}
	for _, tc := range []struct {
		name string
		mut  func(*gate.Config)
		want string
	}{
		{"ready", func(c *gate.Config) { c.Trust = fixedTrust{doc: doc, age: time.Second} }, ""},
		{"no trust state", func(c *gate.Config) { c.Trust = fixedTrust{} }, "no verified trust state"},
		{"stale trust state", func(c *gate.Config) { c.Trust = fixedTrust{doc: doc, age: 6 * time.Minute} }, "over max_staleness 5m0s"},
		{"SVID expired", func(c *gate.Config) {
			c.Trust = fixedTrust{doc: doc}
			c.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		}, "the gate's SVID (spiffe://supplychain.example/gate/vendor-portal) expired"},
	} {
		g, _ := e.inbound("http://127.0.0.1:1", tc.mut)
		err := g.Ready()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Ready() = %v, want %q", tc.name, err, tc.want)
		}
	}
}
