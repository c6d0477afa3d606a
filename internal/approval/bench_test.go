package approval_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/warden-a2a/warden/internal/approval"
)

// BenchmarkIntentHash is the gate's cost per filing and per retry check, against the
// baseline of hashing the full canonical claims (what it would cost without removing
// jti/iat/exp/apr/cnf).
func BenchmarkIntentHash(b *testing.B) {
	c := baseClaims()
	b.Run("baseline=sha256-canonical", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = c.AppendCanonical(buf[:0])
			_ = sha256.Sum256(buf)
		}
	})
	b.Run("IntentHash", func(b *testing.B) {
		for b.Loop() {
			_ = approval.IntentHash(c)
		}
	})
}

// BenchmarkVerifyStatement is the server's cost per decision against a bare Ed25519
// verify of the same bytes.
func BenchmarkVerifyStatement(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	st := statement()
	sig, _ := approval.Sign(priv, &st)
	msg, _ := approval.SigningBytes(&st)
	b.Run("baseline=ed25519.Verify", func(b *testing.B) {
		for b.Loop() {
			_ = ed25519.Verify(pub, msg, sig)
		}
	})
	b.Run("Verify", func(b *testing.B) {
		for b.Loop() {
			_ = approval.Verify(pub, &st, sig)
		}
	})
}
