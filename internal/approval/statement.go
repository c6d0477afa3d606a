package approval

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/jcs"
	"github.com/warden-a2a/warden/internal/pemkey"
)

// Statement is what an approver signs: its decision on one request, naming every field
// the request is bound to.
type Statement = api.ApprovalStatement

// StatementVersion is the only Statement.Version accepted.
const StatementVersion = 1

// Decisions an approver may sign.
const (
	DecisionApprove = "approve"
	DecisionDeny    = "deny"
)

// signingContext separates approval signatures from every other use of an approver key.
const signingContext = "warden-approval-v1\n"

// SigningBytes returns the bytes an approver signs: "warden-approval-v1\n" followed by
// the RFC 8785 canonical JSON of st.
func SigningBytes(st *Statement) ([]byte, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("approval: statement: %w", err)
	}
	canon, err := jcs.Transform(b)
	if err != nil {
		return nil, fmt.Errorf("approval: statement: %w", err)
	}
	return append([]byte(signingContext), canon...), nil
}

// Sign signs st with an Ed25519 or ECDSA P-256 private key (ECDSA: ASN.1 DER signature
// over SHA-256 of the signing bytes).
func Sign(key crypto.Signer, st *Statement) ([]byte, error) {
	msg, err := SigningBytes(st)
	if err != nil {
		return nil, err
	}
	switch k := key.Public().(type) {
	case ed25519.PublicKey:
		return key.Sign(rand.Reader, msg, crypto.Hash(0))
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("approval: only ECDSA P-256 keys")
		}
		d := sha256.Sum256(msg)
		return key.Sign(rand.Reader, d[:], crypto.SHA256)
	default:
		return nil, fmt.Errorf("approval: unsupported key type %T", k)
	}
}

// Verify reports whether sig is pub's signature over st.
func Verify(pub crypto.PublicKey, st *Statement, sig []byte) bool {
	msg, err := SigningBytes(st)
	if err != nil {
		return false
	}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		return k.Curve == elliptic.P256() && ecdsa.VerifyASN1(k, d[:], sig)
	}
	return false
}

// ParsePublicKeyPEM parses a PKIX "PUBLIC KEY" PEM block holding an Ed25519 or ECDSA
// P-256 key, the only kinds approvers may register.
func ParsePublicKeyPEM(b []byte) (crypto.PublicKey, error) {
	k, err := pemkey.ParsePublic(b)
	if err != nil {
		return nil, fmt.Errorf("approval: %w", err)
	}
	return k, nil
}

// ParsePrivateKeyPEM parses a PKCS#8 "PRIVATE KEY" PEM block holding an Ed25519 or
// ECDSA P-256 key.
func ParsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	k, err := pemkey.ParsePrivate(b)
	if err != nil {
		return nil, fmt.Errorf("approval: %w", err)
	}
	return k, nil
}

// GenerateKey makes a new Ed25519 approver key pair as PKCS#8 and PKIX PEM.
func GenerateKey() (privPEM, pubPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	return MarshalKeyPair(priv, pub)
}

// MarshalKeyPair encodes a key pair as PKCS#8 and PKIX PEM.
func MarshalKeyPair(priv crypto.Signer, pub crypto.PublicKey) (privPEM, pubPEM []byte, err error) {
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), nil
}

// KeyID is base64url(SHA-256(PKIX DER of pub)), unpadded.
func KeyID(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
