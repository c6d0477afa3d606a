package intent_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/intent"
)

// testCA is a self-made SPIFFE CA issuing X509-SVID-shaped leaves (one URI SAN, not a CA).
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"test"}},
		NotBefore:             time.Unix(0, 0),
		NotAfter:              time.Unix(1<<33, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: "example.org"}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

var serial int64 = 100

// issue returns a leaf for spiffe://example.org/agent/NAME with a fresh key of alg.
func (ca *testCA) issue(t testing.TB, name, alg string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	var key crypto.Signer
	if alg == intent.AlgES256 {
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		_, key, _ = ed25519.GenerateKey(rand.Reader)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(1<<33, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		URIs:         []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/agent/" + name}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

const (
	sender   = "spiffe://example.org/agent/procurement"
	receiver = "spiffe://example.org/agent/vendor-portal"
)

var t0 = time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z

func newJTI(t testing.TB) string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// claimsFor returns valid claims from cert's owner to receiver for body at t0.
func claimsFor(t testing.TB, cert *x509.Certificate, body []byte) *intent.Claims {
	return &intent.Claims{
		Issuer:         cert.URIs[0].String(),
		Audience:       receiver,
		ID:             newJTI(t),
		IssuedAt:       t0.Unix(),
		Expiry:         t0.Unix() + 30,
		Workflow:       "wf-42",
		Action:         "purchase_order.create",
		Resource:       "po/1001",
		Purpose:        "restock SKU 1001",
		Scope:          []string{"purchase_order.create", "purchase_order.read"},
		BodyDigest:     intent.BodyDigest(body),
		CertThumbprint: intent.Thumbprint(cert),
	}
}

func sign(t testing.TB, c *intent.Claims, key crypto.Signer) string {
	t.Helper()
	tok, err := intent.Sign(c, key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newVerifier(t testing.TB, cfg intent.Config) *intent.Verifier {
	t.Helper()
	if cfg.Audience == "" {
		cfg.Audience = receiver
	}
	if cfg.Replay == nil {
		cfg.Replay = intent.NewMemoryCache(1024)
	}
	v, err := intent.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
