package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/ca"
)

// kidOf returns the key id in a token's header.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	p, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	return p.Headers[0].KeyID
}

// verifiesWith checks tok's signature with the CA's published JWT keys.
func verifiesWith(t *testing.T, c *ca.CA, tok string) bool {
	t.Helper()
	p, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range c.JWTKeys() {
		if k.KID == p.Headers[0].KeyID {
			var cl jwt.Claims
			return p.Claims(k.Public, &cl) == nil
		}
	}
	return false
}

// TestJWTKeyRotationOverlap walks one rotation on a fake clock: the successor is
// published PublishAhead before it signs (sequence number up), the old key signs until
// then, and the old key stays published until every token it signed has expired, then
// leaves (sequence number up again). A second CA on the same directory (a replica)
// loads the same set.
func TestJWTKeyRotationOverlap(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().Truncate(time.Second)
	clock := t0
	now := func() time.Time { return clock }
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: dir, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	p := ca.JWTKeyPolicy{Rotation: 3 * time.Hour, PublishAhead: 10 * time.Minute}
	id := spiffeid.RequireFromPath(td, "/agent/a")
	if len(c.JWTKeys()) != 1 || c.BundleSequence() != 1 {
		t.Fatalf("new CA: %d keys, sequence %d", len(c.JWTKeys()), c.BundleSequence())
	}
	first := c.JWTKeys()[0].KID

	clock = t0.Add(2*time.Hour + 49*time.Minute)
	if ch, err := c.MaintainJWTKeys(p, nil); err != nil || len(ch.Published)+len(ch.Retired) != 0 {
		t.Fatalf("2h49m: %+v %v", ch, err)
	}
	clock = t0.Add(2*time.Hour + 50*time.Minute)
	ch, err := c.MaintainJWTKeys(p, nil)
	if err != nil || len(ch.Published) != 1 {
		t.Fatalf("2h50m: successor not published: %+v %v", ch, err)
	}
	second := ch.Published[0].KID
	if len(c.JWTKeys()) != 2 || c.BundleSequence() != 2 || c.SPIFFEBundle().JWTAuthorities()[second] == nil {
		t.Fatalf("successor not in the bundle: %d keys, sequence %d", len(c.JWTKeys()), c.BundleSequence())
	}
	clock = t0.Add(2*time.Hour + 59*time.Minute)
	old, err := c.SignJWTSVID(id, []string{"x"}, ca.MaxJWTTTL, "")
	if err != nil || kidOf(t, old) != first {
		t.Fatalf("before the successor's active_from the old key must sign: kid %s, err %v", kidOf(t, old), err)
	}
	replica, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: dir, Now: now})
	if err != nil || len(replica.JWTKeys()) != 2 || replica.BundleSequence() != 2 {
		t.Fatalf("replica sees %d keys, sequence %d, err %v", len(replica.JWTKeys()), replica.BundleSequence(), err)
	}
	clock = t0.Add(3 * time.Hour)
	tok, _ := c.SignJWTSVID(id, []string{"x"}, time.Minute, "")
	if kidOf(t, tok) != second {
		t.Fatal("the successor does not sign after its active_from")
	}
	if tok, _ := replica.SignJWTSVID(id, []string{"x"}, time.Minute, ""); kidOf(t, tok) != second {
		t.Fatal("the replica does not switch at the same time")
	}
	// The old token expires at 3h59m; the old key stays until 3h + 1h + margin.
	for _, at := range []time.Duration{3*time.Hour + 59*time.Minute, 4*time.Hour + 5*time.Minute} {
		clock = t0.Add(at)
		if _, err := c.MaintainJWTKeys(p, nil); err != nil {
			t.Fatal(err)
		}
		if !verifiesWith(t, c, old) {
			t.Fatalf("at +%s the key of a token signed at +2h59m (exp +3h59m) is no longer published", at)
		}
	}
	clock = t0.Add(4*time.Hour + 5*time.Minute + time.Second)
	ch, err = c.MaintainJWTKeys(p, nil)
	if err != nil || len(ch.Retired) != 1 || ch.Retired[0] != first {
		t.Fatalf("old key not retired: %+v %v", ch, err)
	}
	if verifiesWith(t, c, old) || len(c.JWTKeys()) != 1 || c.BundleSequence() != 3 {
		t.Fatalf("after retirement: %d keys, sequence %d", len(c.JWTKeys()), c.BundleSequence())
	}
	if _, err := replica.MaintainJWTKeys(p, nil); err != nil || replica.BundleSequence() != 3 || len(replica.JWTKeys()) != 1 {
		t.Fatalf("replica did not load the retirement: sequence %d, err %v", replica.BundleSequence(), err)
	}
}

// TestJWTKeyPolicyRefusesBadSchedules: a lead as long as the period would publish a
// successor before the current key ever signed alone.
func TestJWTKeyPolicyRefusesBadSchedules(t *testing.T) {
	for _, p := range []ca.JWTKeyPolicy{
		{Rotation: 30 * time.Second},
		{Rotation: time.Hour, PublishAhead: time.Hour},
		{Rotation: time.Hour, PublishAhead: -time.Second},
	} {
		if p.Validate() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}

// TestJWTKeyImportedFromOldCA: a data directory from before key rotation (jwt_key.pem
// only) keeps its key as the first of the set, so tokens it signed still verify.
func TestJWTKeyImportedFromOldCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: dir}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "jwt_keys.json")); err != nil {
		t.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	if err := os.WriteFile(filepath.Join(dir, "jwt_key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	keys := c.JWTKeys()
	if len(keys) != 1 || !keys[0].Public.(*ecdsa.PublicKey).Equal(k.Public()) {
		t.Fatal("the old jwt_key.pem was not imported")
	}
	if fi, err := os.Stat(filepath.Join(dir, "jwt_keys.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("jwt_keys.json: %v %v", fi, err)
	}
}
