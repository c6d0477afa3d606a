package intent

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/http"
)

// HeaderName is the HTTP header that carries the compact JWS of an intent.
const HeaderName = "Warden-Intent"

// BodyDigest returns the bdy claim for an HTTP body: base64url (no padding) of its
// SHA-256. An empty body has the digest of zero bytes.
func BodyDigest(body []byte) string {
	h := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Thumbprint returns the cnf.x5t#S256 value of a certificate: base64url (no padding)
// of the SHA-256 of its DER encoding (RFC 8705 section 3.1).
func Thumbprint(cert *x509.Certificate) string {
	h := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// TokenFromHeader returns the single Warden-Intent value of h. A missing header or more
// than one value is refused as malformed.
func TokenFromHeader(h http.Header) (string, error) {
	v := h.Values(HeaderName)
	switch len(v) {
	case 0:
		return "", refuse(ReasonMalformed, "no "+HeaderName+" header")
	case 1:
		return v[0], nil
	default:
		return "", refuse(ReasonMalformed, "more than one "+HeaderName+" header")
	}
}
