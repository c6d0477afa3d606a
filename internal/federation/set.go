package federation

import (
	"fmt"
	"sync"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/truststate"
)

// Set is the federated bundles of one trust-state version, parsed once. A bundle in
// the document that does not parse (it was checked when fetched, so only a bug or a
// newer writer makes one) is left out: its trust domain is not trusted.
type Set struct {
	Version int64
	Bundles map[spiffeid.TrustDomain]*spiffebundle.Bundle
	Errors  map[string]error // trust domains left out, and why
}

// SetOf parses the federated bundles of doc.
func SetOf(doc *truststate.Document) *Set {
	s := &Set{Bundles: map[spiffeid.TrustDomain]*spiffebundle.Bundle{}}
	if doc == nil {
		return s
	}
	s.Version = doc.Version
	for name, fd := range doc.Federation {
		td, err := spiffeid.TrustDomainFromString(name)
		if err == nil && td.Name() != doc.TrustDomain {
			var b *spiffebundle.Bundle
			if b, err = ParseBundle(td, fd.Bundle); err == nil {
				s.Bundles[td] = b
				continue
			}
		} else if err == nil {
			err = fmt.Errorf("federation: the own trust domain %s cannot be federated", name)
		}
		if s.Errors == nil {
			s.Errors = map[string]error{}
		}
		s.Errors[name] = err
	}
	return s
}

// Cache holds the Set of the newest document it was asked about and parses again only
// when the version changes: handshakes ask on every connection.
type Cache struct {
	mu  sync.Mutex
	cur *Set
}

// Of returns the Set of doc (nil doc: an empty set).
func (c *Cache) Of(doc *truststate.Document) *Set {
	if doc == nil {
		return SetOf(nil)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.Version != doc.Version {
		c.cur = SetOf(doc)
	}
	return c.cur
}

// Source is an x509bundle.Source and jwtbundle.Source of one home bundle source plus the
// federated bundles of the current trust state. Each trust domain's SVIDs verify against
// its own bundle only (§7.3).
type Source struct {
	Home       spiffeid.TrustDomain
	HomeX509   x509bundle.Source
	HomeJWT    jwtbundle.Source // may be nil: no JWT bundle for the home trust domain
	TrustState func() *truststate.Document

	cache Cache
}

var (
	_ x509bundle.Source = (*Source)(nil)
	_ jwtbundle.Source  = (*Source)(nil)
)

// Federated returns the federated set of the current trust state.
func (s *Source) Federated() *Set { return s.cache.Of(s.TrustState()) }

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (s *Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td == s.Home {
		return s.HomeX509.GetX509BundleForTrustDomain(td)
	}
	if b, ok := s.Federated().Bundles[td]; ok {
		return b.X509Bundle(), nil
	}
	return nil, fmt.Errorf("federation: trust domain %q is not federated", td)
}

// GetJWTBundleForTrustDomain implements jwtbundle.Source.
func (s *Source) GetJWTBundleForTrustDomain(td spiffeid.TrustDomain) (*jwtbundle.Bundle, error) {
	if td == s.Home {
		if s.HomeJWT == nil {
			return nil, fmt.Errorf("federation: no JWT bundle for %q", td)
		}
		return s.HomeJWT.GetJWTBundleForTrustDomain(td)
	}
	if b, ok := s.Federated().Bundles[td]; ok {
		return b.JWTBundle(), nil
	}
	return nil, fmt.Errorf("federation: trust domain %q is not federated", td)
}

// Trusted reports whether td is the home trust domain or federated now.
func (s *Source) Trusted(td spiffeid.TrustDomain) bool {
	if td == s.Home {
		return true
	}
	_, ok := s.Federated().Bundles[td]
	return ok
}
