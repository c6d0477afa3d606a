// Package enroll holds the pieces of agent enrollment shared by the control plane and the
// SDK: the join-token format and the checks every certificate signing request passes.
//
// A join token is "wdn1.<secret>.<pin>", both parts unpadded base64url: secret is 32
// random bytes, of which the server stores only SHA-256; pin is the SHA-256 of the trust
// domain's root certificate (DER), so a new agent authenticates the server on its first
// TLS connection before it holds a bundle (the idea of kubeadm's discovery-token CA hash).
package enroll

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

const tokenPrefix = "wdn1"

// ErrTokenFormat is returned by ParseToken for anything that is not a join token.
var ErrTokenFormat = errors.New("enroll: malformed join token")

// Token is a parsed join token. It must not be logged or compared with ==.
type Token struct {
	Secret [32]byte
	Pin    [32]byte
	_      [0]func() // not comparable: compare hashes with crypto/subtle
}

// NewToken returns a fresh token for a server whose root certificate has the given pin.
func NewToken(pin [32]byte) (Token, string) {
	var t Token
	_, _ = rand.Read(t.Secret[:])
	t.Pin = pin
	return t, t.String()
}

// String formats the token for the operator. It is the secret: print it once.
func (t Token) String() string {
	enc := base64.RawURLEncoding
	return tokenPrefix + "." + enc.EncodeToString(t.Secret[:]) + "." + enc.EncodeToString(t.Pin[:])
}

// Hash is what the store keeps: SHA-256 of the secret.
func (t Token) Hash() []byte {
	h := sha256.Sum256(t.Secret[:])
	return h[:]
}

// ParseToken parses a join token.
func ParseToken(s string) (Token, error) {
	var t Token
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 || parts[0] != tokenPrefix {
		return t, ErrTokenFormat
	}
	enc := base64.RawURLEncoding
	sec, err1 := enc.DecodeString(parts[1])
	pin, err2 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || len(sec) != 32 || len(pin) != 32 {
		return t, ErrTokenFormat
	}
	copy(t.Secret[:], sec)
	copy(t.Pin[:], pin)
	return t, nil
}
