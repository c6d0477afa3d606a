package truststate

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Type is the JWS "typ" of a signed trust-state document.
const Type = "warden-trust-state+jwt"

// MaxSize bounds a signed document; larger input is refused before parsing.
const MaxSize = 4 << 20

// ErrBadSignature means the document, its header or its signature was altered, or it was
// not signed by the control plane of the trust domain.
var ErrBadSignature = errors.New("truststate: signature check failed")

// ErrMalformed means the input is not a signed trust-state document.
var ErrMalformed = errors.New("truststate: malformed document")

// ServerID returns the SPIFFE ID of the control plane of td, the only signer of trust states.
func ServerID(td spiffeid.TrustDomain) spiffeid.ID {
	return spiffeid.RequireFromPath(td, "/warden/server")
}

type header struct {
	Alg string   `json:"alg"`
	Typ string   `json:"typ"`
	X5C []string `json:"x5c"`
}

// Sign serializes doc and signs it with key, whose certificate chain (leaf first) is chain.
// key must be an ECDSA P-256 key (ES256, RFC 7518 §3.4).
func Sign(doc *Document, key crypto.Signer, chain []*x509.Certificate) ([]byte, error) {
	ek, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("truststate: signing key must be ECDSA P-256")
	}
	h := header{Alg: "ES256", Typ: Type}
	for _, c := range chain {
		h.X5C = append(h.X5C, base64.StdEncoding.EncodeToString(c.Raw)) // x5c is standard base64 (RFC 7515 §4.1.6)
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	pj, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding.Strict() // RFC 7515 §2: no padding; Strict refuses non-zero trailing bits, so every byte counts
	signingInput := enc.EncodeToString(hj) + "." + enc.EncodeToString(pj)
	digest := sha256.Sum256([]byte(signingInput))
	r, s, err := ecdsa.Sign(rand.Reader, ek, digest[:])
	if err != nil {
		return nil, fmt.Errorf("truststate: %w", err)
	}
	sig := make([]byte, 64) // R || S, each 32 bytes big-endian (RFC 7518 §3.4)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return []byte(signingInput + "." + enc.EncodeToString(sig)), nil
}

// Verify checks a signed document against the trust bundle: the x5c chain must be a valid
// X509-SVID of the trust domain's control plane at now, and the ES256 signature must verify
// over the bytes as received. It returns the decoded document.
func Verify(signed []byte, bundle x509bundle.Source, td spiffeid.TrustDomain, now time.Time) (*Document, error) {
	if len(signed) > MaxSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxSize)
	}
	parts := strings.Split(string(signed), ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	enc := base64.RawURLEncoding.Strict() // RFC 7515 §2: no padding; Strict refuses non-zero trailing bits, so every byte counts
	hj, err1 := enc.DecodeString(parts[0])
	pj, err2 := enc.DecodeString(parts[1])
	sig, err3 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, fmt.Errorf("%w: bad base64url", ErrMalformed)
	}
	var h header
	if err := strictUnmarshal(hj, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if h.Alg != "ES256" || h.Typ != Type || len(h.X5C) == 0 || len(h.X5C) > 4 {
		return nil, fmt.Errorf("%w: header must be alg ES256, typ %s, with an x5c chain", ErrBadSignature, Type)
	}
	raw := make([][]byte, len(h.X5C))
	for i, c := range h.X5C {
		if raw[i], err1 = base64.StdEncoding.DecodeString(c); err1 != nil {
			return nil, fmt.Errorf("%w: x5c: %v", ErrMalformed, err1)
		}
	}
	id, _, err := x509svid.ParseAndVerify(raw, bundle, x509svid.WithTime(now))
	if err != nil {
		return nil, fmt.Errorf("%w: signer: %v", ErrBadSignature, err)
	}
	if id != ServerID(td) {
		return nil, fmt.Errorf("%w: signed by %s, not the control plane", ErrBadSignature, id)
	}
	leaf, _ := x509.ParseCertificate(raw[0])
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || len(sig) != 64 {
		return nil, ErrBadSignature
	}
	digest := sha256.Sum256(signed[:len(parts[0])+1+len(parts[1])])
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return nil, ErrBadSignature
	}
	var doc Document
	if err := strictUnmarshal(pj, &doc); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if doc.TrustDomain != td.Name() {
		return nil, fmt.Errorf("%w: document is for trust domain %q", ErrBadSignature, doc.TrustDomain)
	}
	return &doc, nil
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// splitCompact returns the decoded header and payload of a compact JWS, or nil.
func splitCompact(signed []byte) [][]byte {
	parts := strings.Split(string(signed), ".")
	if len(parts) != 3 {
		return nil
	}
	h, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	p, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil {
		return nil
	}
	return [][]byte{h, p}
}
