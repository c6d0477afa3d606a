package enroll

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Errors of CheckCSR, told apart by the server to pick a reason code.
var (
	ErrCSRInvalid    = errors.New("enroll: invalid CSR")
	ErrWeakKey       = errors.New("enroll: weak or unsupported key")
	ErrCSRIDMismatch = errors.New("enroll: CSR asks for another identity")
)

// CheckCSR parses a DER PKCS#10 request, checks its self-signature (proof of possession
// of the private key), that its key is strong enough, and that it asks for no name other
// than want: at most one URI SAN equal to want, no DNS, IP or e-mail SANs. It returns the
// public key to certify.
//
// Accepted keys: ECDSA P-256 and P-384, Ed25519, RSA of 2048 bits or more.
func CheckCSR(der []byte, want spiffeid.ID) (crypto.PublicKey, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCSRInvalid, err)
	}
	if err := CheckKey(csr.PublicKey); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrCSRInvalid, err)
	}
	if len(csr.DNSNames) > 0 || len(csr.IPAddresses) > 0 || len(csr.EmailAddresses) > 0 {
		return nil, fmt.Errorf("%w: only a SPIFFE ID may be requested", ErrCSRIDMismatch)
	}
	switch len(csr.URIs) {
	case 0:
	case 1:
		if csr.URIs[0].String() != want.String() {
			return nil, fmt.Errorf("%w: asks for %s, entitled to %s", ErrCSRIDMismatch, csr.URIs[0], want)
		}
	default:
		return nil, fmt.Errorf("%w: more than one URI SAN", ErrCSRIDMismatch)
	}
	return csr.PublicKey, nil
}

// CheckKey refuses keys that are weak or of an unknown kind.
func CheckKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("%w: ECDSA curve %s", ErrWeakKey, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("%w: RSA key of %d bits (minimum 2048)", ErrWeakKey, k.N.BitLen())
		}
	default:
		return fmt.Errorf("%w: %T", ErrWeakKey, pub)
	}
	return nil
}
