package gate

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/federation"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/truststate"
)

// Federated trust domains (docs/federation.md). The gate's bundle source is its own
// trust domain's bundle plus the federated bundles of the trust state it holds, so a
// partner's X509-SVID verifies against the partner's bundle only (SPIFFE Federation
// §7.3), and only while the control plane lists the relationship: a trust domain removed
// from the trust state fails the next handshake, and checkPartner refuses the next
// request on a connection already open.

// ReasonNotFederated: the caller's trust domain is no longer federated (the request came
// on a connection opened while it was).
const ReasonNotFederated = "trust_domain_not_federated"

// federate makes cfg.Bundle the federated source (home bundle + trust state) and
// returns it.
func federate(cfg *Config) *federation.Source {
	fs := &federation.Source{Home: cfg.Self.TrustDomain(), HomeX509: cfg.Bundle, TrustState: func() *truststate.Document {
		if cfg.Trust == nil {
			return nil
		}
		doc, _ := cfg.Trust.Current()
		return doc
	}}
	cfg.Bundle = fs
	return fs
}

// authorizeCaller is the handshake's authorizer: the caller's trust domain is the
// gate's own or federated now (the chain was verified against that trust domain's
// bundle before).
func (g *Gate) authorizeCaller(id spiffeid.ID, _ [][]*x509.Certificate) error {
	if !g.bundles.Trusted(id.TrustDomain()) {
		return fmt.Errorf("gate: trust domain %q is neither %q nor federated", id.TrustDomain(), g.cfg.Self.TrustDomain())
	}
	return nil
}

// checkPartner: a caller of another trust domain must still be federated in the
// trust state this request is judged by, and its chain must still verify against that
// trust domain's current bundle (the partner may have dropped the CA that signed it).
// The handshake checked both once; a kept-alive connection outlives that.
func (g *Gate) checkPartner(c *inboundCall) *Refusal {
	td := c.peerID.TrustDomain()
	if td == g.cfg.Self.TrustDomain() {
		return nil
	}
	if _, ok := c.doc.Federation[td.Name()]; !ok {
		return refusal(http.StatusUnauthorized, ReasonNotFederated, "trust domain "+td.Name()+" is not federated")
	}
	if !g.partners.verified(c.ev.CallerCertSHA256, c.doc.Version, c.now) {
		chains := c.r.TLS.PeerCertificates
		if _, _, err := x509svid.Verify(chains, g.bundles, x509svid.WithTime(c.now)); err != nil {
			return refusal(http.StatusUnauthorized, ReasonUntrustedCert, "the caller's certificate no longer verifies against the bundle of "+td.Name())
		}
		g.partners.remember(c.ev.CallerCertSHA256, c.doc.Version, chains)
	}
	return nil
}

// partnerChains remembers which partner chains verified against the federated bundles
// of which trust-state version, until the first certificate of the chain expires, so a
// kept-alive connection does not pay a chain verification per request; a new version
// (a bundle refreshed or removed) verifies again. Bounded: full, it starts over.
type partnerChains struct {
	mu sync.Mutex
	m  map[string]time.Time // leaf SHA-256 and version -> the chain's earliest NotAfter
}

const maxPartnerChains = 4096

func partnerKey(leafSHA string, version int64) string {
	return leafSHA + "@" + strconv.FormatInt(version, 10)
}

func (p *partnerChains) verified(leafSHA string, version int64, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.m[partnerKey(leafSHA, version)]
	return ok && now.Before(until)
}

func (p *partnerChains) remember(leafSHA string, version int64, chain []*x509.Certificate) {
	until := chain[0].NotAfter
	for _, c := range chain[1:] {
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= maxPartnerChains {
		p.m = map[string]time.Time{}
	}
	p.m[partnerKey(leafSHA, version)] = until
}

// partnerAgent is the policy principal of a caller of a federated trust domain: the
// gate's peers entry if it names the caller, else the relationship's attributes in the
// trust state. Either way Partner is set: no configuration makes a foreign identity a
// home agent.
func partnerAgent(peers map[string]policy.Agent, doc *truststate.Document, id spiffeid.ID) (policy.Agent, bool) {
	if a, ok := peers[id.String()]; ok {
		a.Partner = true
		return a, true
	}
	fd, ok := doc.Federation[id.TrustDomain().Name()]
	if !ok || fd.Role == "" {
		return policy.Agent{}, false
	}
	return policy.Agent{Role: fd.Role, Class: fd.Class, Zone: fd.Zone, Partner: true}, true
}

// callerAgent is the caller's policy principal: a home agent from the directory (or the
// gate's peers), a partner from partnerAgent.
func (g *Gate) callerAgent(c *inboundCall) (policy.Agent, bool) {
	if c.peerID.TrustDomain() != g.cfg.Self.TrustDomain() {
		return partnerAgent(g.cfg.Peers, c.doc, c.peerID)
	}
	return peerAgent(g.cfg.Peers, c.doc, c.ev.Peer)
}
