package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/ca"
)

// TestAttestCLIEndToEnd: warden server with attestation on; an entry with --refs; enrol
// with --tpm sim succeeds, enrol of a transactional agent without --tpm is refused with
// evidence_required; entry refs replaces the reference values; attest challenge is
// accepted.
func TestAttestCLIEndToEnd(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	data := p("data")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		root.SetArgs([]string{"server", "--data-dir", data, "--listen", "127.0.0.1:0"})
		done <- root.ExecuteContext(ctx)
	}()
	defer func() { cancel(); <-done }()
	var url string
	for i := 0; i < 500 && url == ""; i++ {
		b, _ := os.ReadFile(filepath.Join(data, "admin", "server_url"))
		url = strings.TrimSpace(string(b))
		time.Sleep(10 * time.Millisecond)
	}
	if url == "" {
		t.Fatal("server did not start")
	}
	os.WriteFile(p("agent"), []byte("agent build 1"), 0o755)
	if _, err := runWarden(t, "attest", "refs", "--binary", p("agent"), "-o", p("refs.yaml")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"procurement", "logistics"} {
		if out, err := runWarden(t, "entry", "create", "--data-dir", data, "--name", name, "--role", "r", "--class", "transactional", "--refs", p("refs.yaml")); err != nil {
			t.Fatalf("entry create: %v %s", err, out)
		}
	}
	token := func(name string) string {
		out, err := runWarden(t, "token", "create", "--data-dir", data, "--entry", name)
		if err != nil {
			t.Fatal(err)
		}
		return strings.SplitN(out, "\n", 2)[0]
	}
	if out, err := runWarden(t, "enroll", "--server", url, "--token", token("procurement"), "--out", p("procurement"), "--tpm", "sim", "--tpm-seed", "7", "--binary", p("agent")); err != nil {
		t.Fatalf("attested enroll: %v\n%s", err, out)
	}
	if _, err := runWarden(t, "enroll", "--server", url, "--token", token("logistics"), "--out", p("logistics")); err == nil || !strings.Contains(err.Error(), "evidence_required") {
		t.Fatalf("enroll without --tpm: %v, want evidence_required", err)
	}
	if out, err := runWarden(t, "entry", "refs", "procurement", "--data-dir", data, "--file", p("refs.yaml")); err != nil {
		t.Fatalf("entry refs: %v %s", err, out)
	}
	if out, err := runWarden(t, "attest", "challenge", "--data-dir", data, "--id", "spiffe://supplychain.example/agent/procurement"); err != nil || !strings.Contains(out, "challenged") {
		t.Fatalf("attest challenge: %v %s", err, out)
	}
	if out, err := runWarden(t, "entry", "list", "--data-dir", data, "--json"); err != nil || !strings.Contains(out, "attestation_keys") {
		t.Fatalf("entry list: the TPM binding is gone after entry refs: %v %s", err, out)
	}
}

// TestLoadEKRoots: self-signed CA certificates become roots, other CAs intermediates; a
// file with no root, a leaf or a non-certificate block is refused.
func TestLoadEKRoots(t *testing.T) {
	dir := t.TempDir()
	mk := func(parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "x"},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: isCA, BasicConstraintsValid: true}
		if parent == nil {
			parent, parentKey = tpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tpl, parent, key.Public(), parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, key
	}
	root, rootKey := mk(nil, nil, true)
	inter, _ := mk(root, rootKey, true)
	leaf, _ := mk(root, rootKey, false)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	roots, inters, err := loadEKRoots(write("ok.pem", ca.CertsPEM(root, inter)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inter.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters}); err != nil {
		t.Errorf("the intermediate does not chain to the loaded root: %v", err)
	}
	for name, data := range map[string][]byte{
		"no-root.pem": ca.CertsPEM(inter),
		"leaf.pem":    ca.CertsPEM(root, leaf),
		"key.pem":     []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
	} {
		if _, _, err := loadEKRoots(write(name, data)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
