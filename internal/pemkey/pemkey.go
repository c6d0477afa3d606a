// Package pemkey parses the signing keys Warden accepts from people and build systems —
// approvers' keys, build signers' keys — as PEM: Ed25519 or ECDSA P-256, nothing else.
package pemkey

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ErrKind is returned for a well-formed key of another kind (RSA, other curves).
var ErrKind = errors.New("key must be Ed25519 or ECDSA P-256")

// ParsePublic parses exactly one PKIX "PUBLIC KEY" PEM block (white space around it is
// allowed) holding an Ed25519 or ECDSA P-256 key.
func ParsePublic(b []byte) (crypto.PublicKey, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("want exactly one PEM block of type PUBLIC KEY")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w (got %T)", ErrKind, pub)
}

// ParsePrivate parses a PKCS#8 "PRIVATE KEY" PEM block holding an Ed25519 or ECDSA P-256
// key.
func ParsePrivate(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("want a PEM block of type PRIVATE KEY (PKCS#8)")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P256() {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w (got %T)", ErrKind, k)
}
