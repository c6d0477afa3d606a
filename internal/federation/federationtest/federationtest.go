// Package federationtest runs a foreign SPIFFE trust domain for tests, the way a SPIRE
// deployment would present itself to Warden: its own CA, a bundle (with refresh hint
// and sequence number) served by go-spiffe's own federation.NewHandler over TLS — with
// the endpoint's X509-SVID (https_spiffe) or a Web PKI certificate (https_web) — and
// X509-SVIDs for its workloads. Nothing in the product imports it.
package federationtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	gofed "github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/ca"
)

// Domain is a foreign trust domain.
type Domain struct {
	TD         spiffeid.TrustDomain
	CA         *ca.CA
	EndpointID spiffeid.ID // the bundle endpoint's SPIFFE ID: spiffe://TD/spire/server

	mu     sync.Mutex
	bundle *spiffebundle.Bundle
}

// New makes a trust domain named td whose served bundle has a 90 s refresh hint.
func New(t testing.TB, td string) *Domain {
	t.Helper()
	d := &Domain{TD: spiffeid.RequireTrustDomainFromString(td)}
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: d.TD, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	d.CA = c
	d.EndpointID = spiffeid.RequireFromPath(d.TD, "/spire/server")
	d.bundle = c.SPIFFEBundle()
	d.bundle.SetRefreshHint(90 * time.Second)
	return d
}

// Bundle returns (a copy of) the bundle served now.
func (d *Domain) Bundle() *spiffebundle.Bundle {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bundle.Clone()
}

// X509Bundle returns the X.509 part of the served bundle.
func (d *Domain) X509Bundle() *x509bundle.Bundle { return d.Bundle().X509Bundle() }

// SetBundle changes the bundle served from now on.
func (d *Domain) SetBundle(b *spiffebundle.Bundle) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.bundle = b.Clone()
}

// GetBundleForTrustDomain implements spiffebundle.Source for the handler.
func (d *Domain) GetBundleForTrustDomain(td spiffeid.TrustDomain) (*spiffebundle.Bundle, error) {
	return d.Bundle().GetBundleForTrustDomain(td)
}

// SVID issues an X509-SVID for path in the trust domain, valid for ttl.
func (d *Domain) SVID(t testing.TB, path string, ttl time.Duration) *x509svid.SVID {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id := spiffeid.RequireFromPath(d.TD, path)
	leaf, err := d.CA.SignX509SVID(ca.X509Request{PublicKey: key.Public(), ID: id, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return &x509svid.SVID{ID: id, Certificates: append([]*x509.Certificate{leaf}, d.CA.ChainFor(leaf)...), PrivateKey: key}
}

// ServeSPIFFE serves the bundle with go-spiffe's handler at https://127.0.0.1:PORT/ with
// the endpoint's X509-SVID (https_spiffe) and returns the URL.
func (d *Domain) ServeSPIFFE(t testing.TB) string {
	t.Helper()
	sv := d.SVID(t, d.EndpointID.Path(), time.Hour)
	cert := tls.Certificate{PrivateKey: sv.PrivateKey}
	for _, c := range sv.Certificates {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return d.serve(t, cert)
}

// ServeWeb serves the bundle with go-spiffe's handler behind a Web PKI certificate
// (files of webpkitest, say) and returns the URL.
func (d *Domain) ServeWeb(t testing.TB, certFile, keyFile string) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return d.serve(t, cert)
}

func (d *Domain) serve(t testing.TB, cert tls.Certificate) string {
	h, err := gofed.NewHandler(d.TD, d)
	if err != nil {
		t.Fatal(err)
	}
	return ServeTLS(t, h, cert) + "/"
}

// ServeTLS serves h over TLS with cert on a loopback port until the test ends and
// returns https://127.0.0.1:PORT.
func ServeTLS(t testing.TB, h http.Handler, cert tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String()
}
