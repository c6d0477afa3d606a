package approval_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/warden-a2a/warden/internal/approval"
)

// BenchmarkIntentHash is the gate's cost per filing and per retry check (IntentHash of
// the binding: JSON encoding, RFC 8785 canonicalization, SHA-256), against the baseline
// of hashing the same canonical bytes alone.
func BenchmarkIntentHash(b *testing.B) {
	bind := baseBinding()
	canon := []byte(`{"act":"payment.release","amount":25000,"aud":"spiffe://supplychain.example/agent/bank","cur":"EUR","iss":"spiffe://supplychain.example/agent/payments","res":"Invoice/INV-7","wf":"wf-1"}`)
	b.Run("baseline=sha256-canonical", func(b *testing.B) {
		for b.Loop() {
			_ = sha256.Sum256(canon)
		}
	})
	b.Run("IntentHash", func(b *testing.B) {
		for b.Loop() {
			_ = approval.IntentHash(bind)
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
