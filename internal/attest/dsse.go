package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"

	"github.com/warden-a2a/warden/internal/pemkey"
)

// DSSE (Dead Simple Signing Envelope, github.com/secure-systems-lab/dsse, envelope.md and
// protocol.md) and in-toto Statement v1 (github.com/in-toto/attestation, spec/v1).

// PayloadTypeInToto is the DSSE payloadType of an in-toto statement.
const PayloadTypeInToto = "application/vnd.in-toto+json"

// StatementTypeV1 is the _type of an in-toto Statement v1.
const StatementTypeV1 = "https://in-toto.io/Statement/v1"

// PredicateSLSAProvenanceV1 is the predicateType of SLSA provenance v1.
const PredicateSLSAProvenanceV1 = "https://slsa.dev/provenance/v1"

// Envelope is a DSSE envelope. Payload is carried base64 in JSON (standard alphabet;
// the URL-safe alphabet and missing padding are accepted on input, as DSSE requires).
type Envelope struct {
	PayloadType string          `json:"payloadType"`
	Payload     B64             `json:"payload"`
	Signatures  []DSSESignature `json:"signatures"`
}

// DSSESignature is one signature of an envelope. KeyID is an unauthenticated hint.
type DSSESignature struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   B64    `json:"sig"`
}

// B64 is bytes carried as base64 that decodes standard or URL-safe, padded or not.
type B64 []byte

// MarshalJSON writes standard padded base64.
func (b B64) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.StdEncoding.EncodeToString(b))
}

// UnmarshalJSON accepts the standard and URL-safe alphabets, padded or not.
func (b *B64) UnmarshalJSON(in []byte) error {
	var s string
	if err := json.Unmarshal(in, &s); err != nil {
		return err
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding} {
		if d, err := enc.DecodeString(s); err == nil {
			*b = d
			return nil
		}
	}
	return errors.New("invalid base64")
}

func (e *Envelope) validate() error {
	if e.PayloadType == "" || len(e.PayloadType) > 256 {
		return errors.New("payloadType missing or too long")
	}
	if len(e.Payload) == 0 || len(e.Payload) > 64<<10 {
		return fmt.Errorf("payload length %d", len(e.Payload))
	}
	if len(e.Signatures) == 0 || len(e.Signatures) > 8 {
		return fmt.Errorf("%d signatures", len(e.Signatures))
	}
	for _, s := range e.Signatures {
		if len(s.Sig) == 0 || len(s.Sig) > 512 || len(s.KeyID) > 256 {
			return errors.New("bad signature entry")
		}
	}
	return nil
}

// PAE is the DSSE v1 pre-authentication encoding (protocol.md):
//
//	PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
//
// where SP is one space and LEN the length in bytes as ASCII decimal without leading zeros.
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(payloadType) + len(payload) + 32)
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// KeyID is Warden's DSSE keyid for a public key: lower-case hex SHA-256 of its
// SubjectPublicKeyInfo DER.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("attest: %w", err)
	}
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:]), nil
}

// SignEnvelope signs payload with an Ed25519 or ECDSA P-256 key. Ed25519 signs the PAE
// bytes; ECDSA signs SHA-256(PAE) and the signature is ASN.1 DER.
func SignEnvelope(signer crypto.Signer, payloadType string, payload []byte) (*Envelope, error) {
	pae := PAE(payloadType, payload)
	var sig []byte
	var err error
	switch pub := signer.Public().(type) {
	case ed25519.PublicKey:
		sig, err = signer.Sign(rand.Reader, pae, crypto.Hash(0))
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, errors.New("attest: ECDSA build keys must be P-256")
		}
		d := sha256.Sum256(pae)
		sig, err = signer.Sign(rand.Reader, d[:], crypto.SHA256)
	default:
		return nil, fmt.Errorf("attest: unsupported build key type %T", pub)
	}
	if err != nil {
		return nil, fmt.Errorf("attest: sign envelope: %w", err)
	}
	kid, err := KeyID(signer.Public())
	if err != nil {
		return nil, err
	}
	return &Envelope{PayloadType: payloadType, Payload: payload,
		Signatures: []DSSESignature{{KeyID: kid, Sig: sig}}}, nil
}

// Errors of VerifyEnvelope.
var (
	// ErrUnknownSigner: no signature verifies under any of the given keys, and none claims
	// (by keyid) to be from one of them.
	ErrUnknownSigner = errors.New("attest: envelope not signed by a trusted key")
	// ErrBadSignature: a signature names a trusted key but does not verify.
	ErrBadSignature = errors.New("attest: envelope signature invalid")
)

// VerifyEnvelope checks that at least one signature of env verifies under one of keys
// (Ed25519 or ECDSA P-256 public keys) and returns the keyid of the key that verified.
// The keyid field is only a hint: every key is tried against every signature.
func VerifyEnvelope(env *Envelope, keys []crypto.PublicKey) (string, error) {
	if env == nil || len(env.Signatures) == 0 {
		return "", ErrUnknownSigner
	}
	pae := PAE(env.PayloadType, env.Payload)
	digest := sha256.Sum256(pae)
	claimed := false
	for _, k := range keys {
		kid, err := KeyID(k)
		if err != nil {
			continue
		}
		for _, s := range env.Signatures {
			if s.KeyID == kid {
				claimed = true
			}
			ok := false
			switch pub := k.(type) {
			case ed25519.PublicKey:
				ok = len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, pae, s.Sig)
			case *ecdsa.PublicKey:
				ok = pub.Curve == elliptic.P256() && ecdsa.VerifyASN1(pub, digest[:], s.Sig)
			}
			if ok {
				return kid, nil
			}
		}
	}
	if claimed {
		return "", ErrBadSignature
	}
	return "", ErrUnknownSigner
}

// Statement is an in-toto Statement v1.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate,omitempty"`
}

// Subject is one artifact of a statement; Digest maps algorithm to lower-case hex.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// NewProvenance builds a Statement v1 whose subject is the binary with the given
// "sha256:<hex>" digest, with an SLSA provenance v1 predicate.
func NewProvenance(name, binaryDigest string, predicate any) (Statement, error) {
	raw, err := parseDigest(binaryDigest)
	if err != nil {
		return Statement{}, fmt.Errorf("attest: %w", err)
	}
	p, err := json.Marshal(predicate)
	if err != nil {
		return Statement{}, fmt.Errorf("attest: predicate: %w", err)
	}
	return Statement{Type: StatementTypeV1, PredicateType: PredicateSLSAProvenanceV1, Predicate: p,
		Subject: []Subject{{Name: name, Digest: map[string]string{"sha256": hex.EncodeToString(raw)}}}}, nil
}

// SignStatement serializes st and signs it into a DSSE envelope.
func SignStatement(signer crypto.Signer, st Statement) (*Envelope, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("attest: statement: %w", err)
	}
	return SignEnvelope(signer, PayloadTypeInToto, b)
}

// ParseStatement decodes an in-toto Statement v1 payload (untrusted; checked before use).
func ParseStatement(payload []byte) (Statement, error) {
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return st, fmt.Errorf("attest: statement: %w", err)
	}
	if st.Type != StatementTypeV1 {
		return st, fmt.Errorf("attest: statement _type %.80q, want %s", st.Type, StatementTypeV1)
	}
	if len(st.Subject) == 0 || len(st.Subject) > 1024 {
		return st, fmt.Errorf("attest: statement has %d subjects", len(st.Subject))
	}
	return st, nil
}

// HasSubjectDigest reports whether some subject has the "sha256:<hex>" digest d.
func (st Statement) HasSubjectDigest(d string) bool {
	h, ok := bytes.CutPrefix([]byte(d), []byte("sha256:"))
	if !ok {
		return false
	}
	for _, s := range st.Subject {
		if v, ok := s.Digest["sha256"]; ok && v == string(h) {
			return true
		}
	}
	return false
}

// ParsePublicKeyPEM parses a PEM "PUBLIC KEY" (SubjectPublicKeyInfo) holding an Ed25519 or
// ECDSA P-256 key: the form build signer keys take in reference values.
func ParsePublicKeyPEM(s string) (crypto.PublicKey, error) {
	k, err := pemkey.ParsePublic([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("attest: build signer: %w", err)
	}
	return k, nil
}

// MarshalPublicKeyPEM encodes pub as a PEM PUBLIC KEY block.
func MarshalPublicKeyPEM(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("attest: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}
