package federation

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Endpoint profiles (SPIFFE Federation §5.2).
const (
	ProfileSPIFFE = "https_spiffe" // the endpoint presents an X509-SVID (§5.2.2)
	ProfileWeb    = "https_web"    // the endpoint presents a Web PKI certificate (§5.2.1)
)

// Endpoint is where and how a foreign trust domain's bundle is fetched. All fields are
// configured explicitly (§7.2): none is inferred from another.
type Endpoint struct {
	TrustDomain spiffeid.TrustDomain
	URL         string
	Profile     string
	// SPIFFEID is the ID the endpoint's X509-SVID must carry (https_spiffe only). When
	// it is in TrustDomain the endpoint is self-serving (§5.2.2.2).
	SPIFFEID spiffeid.ID
}

// Validate checks the parameters: an https URL without userinfo (§5.2.1.1, §5.2.2.1), a
// known profile, and an endpoint SPIFFE ID exactly when the profile is https_spiffe.
func (e Endpoint) Validate() error {
	if e.TrustDomain.IsZero() {
		return errors.New("federation: trust domain is required")
	}
	if err := CheckURL(e.URL); err != nil {
		return err
	}
	switch e.Profile {
	case ProfileSPIFFE:
		if e.SPIFFEID.IsZero() {
			return errors.New("federation: https_spiffe needs the endpoint's SPIFFE ID")
		}
	case ProfileWeb:
		if !e.SPIFFEID.IsZero() {
			return errors.New("federation: an endpoint SPIFFE ID is only for https_spiffe")
		}
	default:
		return fmt.Errorf("federation: profile %q: want %s or %s", e.Profile, ProfileSPIFFE, ProfileWeb)
	}
	return nil
}

// SelfServing reports whether an https_spiffe endpoint serves its own trust domain's
// bundle, so that the bundle it serves authenticates it next time (§5.2.2.4).
func (e Endpoint) SelfServing() bool {
	return e.Profile == ProfileSPIFFE && e.SPIFFEID.TrustDomain() == e.TrustDomain
}

// CheckURL accepts a valid bundle endpoint URL: scheme https, a host, no userinfo, no
// fragment. Redirect targets are held to the same rule.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("federation: endpoint URL: %w", err)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("federation: endpoint URL %q: scheme must be https", raw)
	case u.User != nil:
		return fmt.Errorf("federation: endpoint URL %q: must not carry userinfo", raw)
	case u.Host == "":
		return fmt.Errorf("federation: endpoint URL %q: no host", raw)
	case u.Fragment != "" || u.RawFragment != "":
		return fmt.Errorf("federation: endpoint URL %q: must not carry a fragment", raw)
	}
	return nil
}
