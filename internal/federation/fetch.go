package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// FetchConfig says how bundle endpoints are authenticated.
type FetchConfig struct {
	// Bundles authenticates https_spiffe endpoints: it must hold the bundle of the
	// endpoint SPIFFE ID's trust domain — for a self-serving endpoint the bundle held
	// for the foreign trust domain (at first the operator-supplied one, §5.2.2.2).
	Bundles x509bundle.Source
	// WebRoots are the roots of https_web endpoints; nil: the system's roots.
	WebRoots *x509.CertPool
	// Timeout bounds one fetch, redirects included; default 10s.
	Timeout time.Duration
}

// maxRedirects bounds the (temporary) redirects a fetch follows (§7.5.1).
const maxRedirects = 3

// Fetch fetches the bundle of ep.TrustDomain from its endpoint. https_spiffe: the
// server must present an X509-SVID of exactly ep.SPIFFEID that verifies against
// cfg.Bundles (§5.2.2.4); https_web: a certificate that chains to the Web PKI roots and
// names the URL's host (§5.2.1.4, RFC 6125). Redirects are followed to valid bundle
// endpoint URLs only, with the same authentication; nothing about them is remembered
// (§5.2.1.4). The answer must be 200 with a body of at most MaxBundleSize that
// ParseBundle accepts.
func Fetch(ctx context.Context, ep Endpoint, cfg FetchConfig) (*spiffebundle.Bundle, error) {
	if err := ep.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	var tc *tls.Config
	switch ep.Profile {
	case ProfileSPIFFE:
		if cfg.Bundles == nil {
			return nil, errors.New("federation: https_spiffe needs a bundle for the endpoint's trust domain")
		}
		tc = tlsconfig.TLSClientConfig(cfg.Bundles, tlsconfig.AuthorizeID(ep.SPIFFEID))
	case ProfileWeb:
		tc = &tls.Config{RootCAs: cfg.WebRoots, MinVersion: tls.VersionTLS12}
	}
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
		TLSClientConfig:        tc,
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 16 << 10,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("federation: more than %d redirects", maxRedirects)
			}
			return CheckURL(req.URL.String())
		}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.URL, http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("federation: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("federation: fetch %s: %w", ep.URL, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("federation: fetch %s: status %d", ep.URL, res.StatusCode)
	}
	doc, err := io.ReadAll(io.LimitReader(res.Body, MaxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("federation: fetch %s: %w", ep.URL, err)
	}
	return ParseBundle(ep.TrustDomain, doc)
}
