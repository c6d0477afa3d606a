package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/enroll"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/sqlite"
)

// The issuance benchmarks compare the store-backed issuer with bare x509.CreateCertificate
// using the same CA key and the same leaf key, in the same run (docs/benchmarks.md):
//
//	go test -run '^$' -bench 'Issue|BareCreate|RenewalPath' -benchtime 3s ./internal/ca/

func setup(b *testing.B) (*ca.CA, *ecdsa.PrivateKey, store.Store) {
	b.Helper()
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: spiffeid.RequireTrustDomainFromString("supplychain.example"), Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "warden.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return c, leafKey, st
}

var id = spiffeid.RequireFromString("spiffe://supplychain.example/agent/procurement")

// BenchmarkBareCreateCertificate is the baseline: the same template an SVID uses, signed
// by the intermediate's key, nothing else.
func BenchmarkBareCreateCertificate(b *testing.B) {
	c, leafKey, _ := setup(b)
	interKey := c.IntermediateKeyForBenchmark()
	parent := c.Intermediates()[0]
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
			now := time.Now()
			tpl := &x509.Certificate{
				SerialNumber: serial, Subject: pkix.Name{Organization: []string{"Warden"}}, URIs: []*url.URL{id.URL()},
				NotBefore: now, NotAfter: now.Add(15 * time.Minute), BasicConstraintsValid: true,
				KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			}
			if _, err := x509.CreateCertificate(rand.Reader, tpl, parent, leafKey.Public(), interKey); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// parallelism × GOMAXPROCS goroutines issue at once, as concurrent renewals do on a
// server; the store's group commit shares one fsync among them.
const parallelism = 64

// BenchmarkIssue is the store-backed issuer: sign, parse, record in SQLite.
func BenchmarkIssue(b *testing.B) {
	c, leafKey, st := setup(b)
	iss := &ca.Issuer{CA: c, Store: st}
	ctx := context.Background()
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := iss.Issue(ctx, leafKey.Public(), id, "procurement", "renew"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRenewalPath adds what a renewal does before issuing: parse the CSR, check its
// self-signature (proof of possession) and key strength.
func BenchmarkRenewalPath(b *testing.B) {
	c, leafKey, st := setup(b)
	iss := &ca.Issuer{CA: c, Store: st}
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, leafKey)
	ctx := context.Background()
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			pub, err := enroll.CheckCSR(csr, id)
			if err == nil {
				_, err = iss.Issue(ctx, pub, id, "procurement", "renew")
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
