package federation_test

import (
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/federation"
	"github.com/warden-a2a/warden/internal/federation/federationtest"
	"github.com/warden-a2a/warden/internal/truststate"
)

// BenchmarkVerifyPartnerSVID is what a gate adds per request of a partner (stage
// checkPartner): the federated bundle from the trust state (parsed once per version) and
// go-spiffe's X509-SVID verification of the partner's chain against it.
func BenchmarkVerifyPartnerSVID(b *testing.B) {
	p := federationtest.New(b, partner.Name())
	doc, _ := p.Bundle().Marshal()
	ts := &truststate.Document{TrustDomain: "supplychain.example", Version: 7,
		Federation: map[string]truststate.FederatedDomain{partner.Name(): {Bundle: doc}}}
	home := spiffeid.RequireTrustDomainFromString("supplychain.example")
	src := &federation.Source{Home: home, HomeX509: x509bundle.New(home), TrustState: func() *truststate.Document { return ts }}
	chain := p.SVID(b, "/agent/carrier", time.Hour).Certificates
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := x509svid.Verify(chain, src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyHomeSVID is the same verification against a plain bundle: the
// baseline of BenchmarkVerifyPartnerSVID.
func BenchmarkVerifyHomeSVID(b *testing.B) {
	p := federationtest.New(b, partner.Name())
	chain := p.SVID(b, "/agent/carrier", time.Hour).Certificates
	bundle := p.X509Bundle()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := x509svid.Verify(chain, bundle); err != nil {
			b.Fatal(err)
		}
	}
}
