package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/ca"
)

var td = spiffeid.RequireTrustDomainFromString("supplychain.example")

// verifyAt checks leaf + chain against the CA's root at a given time.
func verifyAt(c *ca.CA, leaf *x509.Certificate, chain []*x509.Certificate, at time.Time) error {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(c.Root())
	for _, in := range chain {
		inter.AddCert(in)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// TestRotateIntermediate: with a third of its life left the intermediate is due; the new
// one signs new SVIDs, the SVIDs the old one signed still verify (ChainFor completes each
// chain with its own intermediate), the same root stays the only trust anchor, and a
// reload finds the new intermediate, also after a rotation cut between its renames.
func TestRotateIntermediate(t *testing.T) {
	dir := t.TempDir()
	clock := time.Now().Add(-300 * 24 * time.Hour)
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: dir, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if c.IntermediateDue(clock) {
		t.Fatal("due when new")
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	req := ca.X509Request{PublicKey: key.Public(), ID: spiffeid.RequireFromPath(td, "/agent/a"), TTL: time.Hour}
	clock = clock.Add(250 * 24 * time.Hour)
	if !c.IntermediateDue(clock) {
		t.Fatal("not due with 115 days left")
	}
	old, err := c.SignX509SVID(req)
	if err != nil {
		t.Fatal(err)
	}
	oldInter := c.Intermediates()[0]
	newInter, err := c.RotateIntermediate()
	if err != nil {
		t.Fatal(err)
	}
	if newInter.Equal(oldInter) || newInter.CheckSignatureFrom(c.Root()) != nil || c.IntermediateDue(clock) {
		t.Fatalf("new intermediate: same %v, root-signed error %v, due %v", newInter.Equal(oldInter), newInter.CheckSignatureFrom(c.Root()), c.IntermediateDue(clock))
	}
	fresh, err := c.SignX509SVID(req)
	if err != nil {
		t.Fatal(err)
	}
	at := clock.Add(time.Minute)
	for name, leaf := range map[string]*x509.Certificate{"signed before": old, "signed after": fresh} {
		if err := verifyAt(c, leaf, c.ChainFor(leaf), at); err != nil {
			t.Errorf("%s the rotation: %v", name, err)
		}
	}
	if !c.ChainFor(old)[0].Equal(oldInter) || !c.ChainFor(fresh)[0].Equal(newInter) {
		t.Error("ChainFor picked the wrong intermediate")
	}
	if verifyAt(c, old, []*x509.Certificate{newInter}, at) == nil {
		t.Error("an old leaf verified with the new intermediate: the test proves nothing")
	}

	again, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: dir, Now: func() time.Time { return clock }})
	if err != nil || !again.Intermediates()[0].Equal(newInter) || !again.Root().Equal(c.Root()) {
		t.Fatalf("reload: %v", err)
	}

	// A rotation cut after the key rename: the new key is in place, its certificate still
	// under .next and the old certificate beside it. Loading finishes the rotation.
	p := func(n string) string { return filepath.Join(dir, n) }
	if _, err := c.RotateIntermediate(); err != nil {
		t.Fatal(err)
	}
	third := c.Intermediates()[0]
	if err := os.Rename(p("intermediate.pem"), p("intermediate.pem.next")); err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteFileAtomic(p("intermediate.pem"), ca.CertsPEM(newInter), 0o600); err != nil {
		t.Fatal(err)
	}
	cut, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: dir, Now: func() time.Time { return clock }})
	if err != nil || !cut.Intermediates()[0].Equal(third) {
		t.Fatalf("load after a cut rotation: %v", err)
	}
	if _, err := os.Stat(p("intermediate.pem.next")); !os.IsNotExist(err) {
		t.Errorf("the .next certificate is still there: %v", err)
	}
	// A key that matches neither certificate is refused, not used.
	if err := ca.WriteFileAtomic(p("intermediate.pem"), ca.CertsPEM(oldInter), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: dir}); err == nil {
		t.Fatal("loaded an intermediate whose key does not match")
	}
}

// TestConcurrentRotations: rotations at once, in one process, leave a key and a
// certificate on disk that belong together, and the CA signing with one of them.
func TestConcurrentRotations(t *testing.T) {
	dir := t.TempDir()
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: dir}) // a second replica
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			x := c
			if i%2 == 1 {
				x = other
			}
			_, err := x.RotateIntermediate()
			done <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	reloaded, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: dir})
	if err != nil {
		t.Fatalf("after concurrent rotations the directory does not load: %v", err)
	}
	if !reloaded.Intermediates()[0].Equal(c.Intermediates()[0]) && !reloaded.Intermediates()[0].Equal(other.Intermediates()[0]) {
		t.Error("the intermediate on disk is neither replica's current one")
	}
}
