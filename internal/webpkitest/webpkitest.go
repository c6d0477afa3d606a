// Package webpkitest makes a throw-away Web PKI for tests: a root CA and a server
// certificate for 127.0.0.1 and localhost, as a public CA would issue one (serverAuth,
// DNS and IP SANs, no SPIFFE ID). Tests use it for the https_web bundle endpoint and the
// OpenID Connect discovery listener; nothing in the product imports it.
package webpkitest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a root and one server certificate written to files.
type PKI struct {
	Root     *x509.Certificate
	Pool     *x509.CertPool // holds Root only
	CertFile string         // leaf PEM
	KeyFile  string         // leaf key, PKCS#8 PEM

	rootKey *ecdsa.PrivateKey
}

// New makes a PKI in a temporary directory of t.
func New(t testing.TB) *PKI {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootTpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Web PKI root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTpl, rootTpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	p := &PKI{Root: root, Pool: x509.NewCertPool(), rootKey: rootKey}
	p.Pool.AddCert(root)
	p.CertFile, p.KeyFile = p.Issue(t, "bundle.test")
	return p
}

// Issue writes a fresh leaf for 127.0.0.1, ::1, localhost and name, signed by the root,
// and returns its files.
func (p *PKI) Issue(t testing.TB, name string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(12 * time.Hour),
		DNSNames: []string{"localhost", name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, p.Root, key.Public(), p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "web.pem"), filepath.Join(dir, "web_key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
