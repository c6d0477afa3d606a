package gate

import (
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/federation"
	"github.com/warden-a2a/warden/internal/federation/federationtest"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/truststate"
)

// TestCheckPartner walks a partner's kept-alive connection through trust-state versions:
// federated (passes, and again from the verified-chain memory), the partner's bundle
// replaced by one without the CA that signed the caller (untrusted_certificate), the
// relationship removed (trust_domain_not_federated). A caller of the home trust domain is
// not this stage's business.
func TestCheckPartner(t *testing.T) {
	home := spiffeid.RequireTrustDomainFromString("supplychain.example")
	p := federationtest.New(t, "partner.example")
	other := federationtest.New(t, "partner.example") // the partner's CA after a rotation
	chain := p.SVID(t, "/agent/carrier", time.Hour).Certificates
	doc := func(version int64, fed *federationtest.Domain) *truststate.Document {
		d := &truststate.Document{TrustDomain: home.Name(), Version: version}
		if fed != nil {
			b, _ := fed.Bundle().Marshal()
			d.Federation = map[string]truststate.FederatedDomain{"partner.example": {Bundle: b, Role: "carrier"}}
		}
		return d
	}
	var cur *truststate.Document
	g := &Gate{cfg: Config{Self: spiffeid.RequireFromPath(home, "/agent/logistics")}}
	g.bundles = &federation.Source{Home: home, HomeX509: x509bundle.New(home), TrustState: func() *truststate.Document { return cur }}
	call := func(d *truststate.Document) *Refusal {
		cur = d
		c := &inboundCall{r: &http.Request{TLS: &tls.ConnectionState{PeerCertificates: chain}}, doc: d, now: time.Now(),
			peerID: spiffeid.RequireFromPath(p.TD, "/agent/carrier"), leaf: chain[0]}
		c.ev.CallerCertSHA256 = certSHA256(chain[0])
		return g.checkPartner(c)
	}
	for _, step := range []struct {
		name string
		doc  *truststate.Document
		want string
	}{
		{"federated", doc(1, p), ""},
		{"federated, remembered", doc(1, p), ""},
		{"bundle without the caller's CA", doc(2, other), ReasonUntrustedCert},
		{"the old bundle again", doc(3, p), ""},
		{"relationship removed", doc(4, nil), ReasonNotFederated},
	} {
		got := ""
		if rf := call(step.doc); rf != nil {
			got = rf.Reason
		}
		if got != step.want {
			t.Errorf("%s: refusal %q, want %q", step.name, got, step.want)
		}
	}
	if a, ok := partnerAgent(map[string]policy.Agent{}, doc(1, p), spiffeid.RequireFromPath(p.TD, "/agent/carrier")); !ok || !a.Partner || a.Role != "carrier" {
		t.Errorf("partner principal from the relationship: %+v %v", a, ok)
	}
	peers := map[string]policy.Agent{"spiffe://partner.example/agent/carrier": {Role: "carrier-eu", Class: "advisory", Partner: false}}
	if a, _ := partnerAgent(peers, doc(1, p), spiffeid.RequireFromPath(p.TD, "/agent/carrier")); !a.Partner || a.Role != "carrier-eu" {
		t.Errorf("a peers: entry overrides the relationship's attributes but never makes a partner a home agent: %+v", a)
	}
	if _, ok := partnerAgent(map[string]policy.Agent{}, doc(4, nil), spiffeid.RequireFromPath(p.TD, "/agent/carrier")); ok {
		t.Error("a partner with neither a peers: entry nor a relationship role has a principal")
	}
}

// BenchmarkCheckPartner is the per-request cost of stage checkPartner on a kept-alive
// connection once the chain is verified for the trust-state version in force (the
// first request of a version pays BenchmarkVerifyPartnerSVID in internal/federation).
func BenchmarkCheckPartner(b *testing.B) {
	home := spiffeid.RequireTrustDomainFromString("supplychain.example")
	p := federationtest.New(b, "partner.example")
	chain := p.SVID(b, "/agent/carrier", time.Hour).Certificates
	bundle, _ := p.Bundle().Marshal()
	d := &truststate.Document{TrustDomain: home.Name(), Version: 1,
		Federation: map[string]truststate.FederatedDomain{"partner.example": {Bundle: bundle}}}
	g := &Gate{cfg: Config{Self: spiffeid.RequireFromPath(home, "/agent/logistics")}}
	g.bundles = &federation.Source{Home: home, HomeX509: x509bundle.New(home), TrustState: func() *truststate.Document { return d }}
	c := &inboundCall{r: &http.Request{TLS: &tls.ConnectionState{PeerCertificates: chain}}, doc: d,
		peerID: spiffeid.RequireFromPath(p.TD, "/agent/carrier"), leaf: chain[0]}
	c.ev.CallerCertSHA256 = certSHA256(chain[0])
	b.ReportAllocs()
	for b.Loop() {
		c.now = time.Now()
		if rf := g.checkPartner(c); rf != nil {
			b.Fatal(rf.Reason)
		}
	}
}
