package approval_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/warden-a2a/warden/internal/approval"
)

func statement() approval.Statement {
	return approval.Statement{Version: 1, ApprovalID: "apr_1", IntentHash: "ks2kTWnYz_Es0lRqmf3mPlEotjl03kBXdq0ODlZivtg",
		Requester: "spiffe://supplychain.example/agent/payments", Action: "payment.release", Resource: "Invoice/INV-7",
		Amount: 25000, Currency: "EUR", Approver: "alice", Decision: "approve", Reason: "invoice checked", SignedAt: 1764212400}
}

func TestSigningBytesCanonical(t *testing.T) {
	st := statement()
	b, err := approval.SigningBytes(&st)
	if err != nil {
		t.Fatal(err)
	}
	want := "warden-approval-v1\n" + `{"action":"payment.release","amount":25000,"approval_id":"apr_1","approver":"alice","currency":"EUR","decision":"approve","intent_hash":"ks2kTWnYz_Es0lRqmf3mPlEotjl03kBXdq0ODlZivtg","reason":"invoice checked","requester":"spiffe://supplychain.example/agent/payments","resource":"Invoice/INV-7","signed_at":1764212400,"v":1}`
	if string(b) != want {
		t.Errorf("SigningBytes =\n%s\nwant\n%s", b, want)
	}
}

// TestSignVerify: both key kinds verify; any changed field, another key or a truncated
// signature does not.
func TestSignVerify(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	for name, key := range map[string]crypto.Signer{"ed25519": edKey, "p256": ecKey} {
		st := statement()
		sig, err := approval.Sign(key, &st)
		if err != nil {
			t.Fatal(err)
		}
		if !approval.Verify(key.Public(), &st, sig) {
			t.Fatalf("%s: own signature does not verify", name)
		}
		tampered := map[string]func(s *approval.Statement){
			"amount":   func(s *approval.Statement) { s.Amount++ },
			"resource": func(s *approval.Statement) { s.Resource = "Invoice/INV-8" },
			"decision": func(s *approval.Statement) { s.Decision = "deny" },
			"approver": func(s *approval.Statement) { s.Approver = "bob" },
			"id":       func(s *approval.Statement) { s.ApprovalID = "apr_2" },
		}
		for what, mut := range tampered {
			s2 := st
			mut(&s2)
			if approval.Verify(key.Public(), &s2, sig) {
				t.Errorf("%s: tampered %s verifies", name, what)
			}
		}
		if approval.Verify(otherKey.Public(), &st, sig) {
			t.Errorf("%s: verifies under another key", name)
		}
		if approval.Verify(key.Public(), &st, sig[:len(sig)-1]) {
			t.Errorf("%s: truncated signature verifies", name)
		}
	}
}

func TestParseKeysRefusesOtherKinds(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, pub := range map[string]crypto.PublicKey{"rsa": rk.Public(), "p384": p384.Public()} {
		der, _ := x509.MarshalPKIXPublicKey(pub)
		if _, err := approval.ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); err == nil {
			t.Errorf("%s public key accepted", name)
		}
	}
	priv, pub, err := approval.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := approval.ParsePrivateKeyPEM(priv); err != nil {
		t.Error(err)
	}
	if _, err := approval.ParsePublicKeyPEM(pub); err != nil {
		t.Error(err)
	}
	if _, err := approval.ParsePublicKeyPEM(append(pub, pub...)); err == nil {
		t.Error("two PEM blocks accepted")
	}
	if _, err := approval.ParsePublicKeyPEM(priv); err == nil {
		t.Error("a private key accepted as public key")
	}
}
