package policy

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// BundleFormat names the signed bundle format written by WriteBundle.
const BundleFormat = "warden-policy-bundle/v1"

// A signed bundle is one JSON document:
//
//	{"payload": base64(JSON body), "alg": "Ed25519", "key_id": hex SHA-256(public key), "signature": base64(Ed25519(payload bytes))}
//
// and the body is {"format", "revision", "created", "files": {name: content}}.
// The signature covers the exact payload bytes, so no canonicalization is needed.
type signedBundle struct {
	Payload   string `json:"payload"`
	Alg       string `json:"alg"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"`
}

// BundleBody is the signed content of a bundle.
type BundleBody struct {
	Format   string            `json:"format"`
	Revision string            `json:"revision"`
	Created  time.Time         `json:"created"`
	Files    map[string]string `json:"files"`
}

// Errors from ReadBundle.
var (
	ErrBundleSignature = errors.New("policy: bundle signature does not verify")
	ErrBundleRevision  = errors.New("policy: bundle revision does not match its content")
)

// KeyID is the hex SHA-256 of an Ed25519 public key.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:])
}

// WriteBundle checks and compiles e's source and returns a signed bundle of it.
func WriteBundle(e *Engine, key ed25519.PrivateKey, created time.Time) ([]byte, error) {
	body := BundleBody{Format: BundleFormat, Revision: e.revision, Created: created.UTC(), Files: map[string]string{}}
	for n, b := range e.src {
		body.Files[n] = string(b)
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	pub := key.Public().(ed25519.PublicKey)
	return json.MarshalIndent(signedBundle{
		Payload:   base64.StdEncoding.EncodeToString(payload),
		Alg:       "Ed25519",
		KeyID:     KeyID(pub),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, payload)),
	}, "", "  ")
}

// ReadBundle verifies a signed bundle with pub, compiles it and checks that the
// recomputed revision equals the signed one. Errors: ErrBundleSignature,
// ErrBundleRevision, *InvalidBundleError, or a format error.
func ReadBundle(b []byte, pub ed25519.PublicKey, opts Options) (*Engine, error) {
	return readBundle(b, pub, opts)
}

// ReadBundleUnverified compiles a bundle WITHOUT checking its signature. Use it
// only for reports such as drift, never to decide.
func ReadBundleUnverified(b []byte) (*Engine, error) { return readBundle(b, nil, Options{}) }

func readBundle(b []byte, pub ed25519.PublicKey, opts Options) (*Engine, error) {
	var sb signedBundle
	if err := json.Unmarshal(b, &sb); err != nil {
		return nil, fmt.Errorf("policy: bundle: %w", err)
	}
	payload, err := base64.StdEncoding.DecodeString(sb.Payload)
	if err != nil {
		return nil, fmt.Errorf("policy: bundle payload: %w", err)
	}
	if pub != nil {
		sig, err := base64.StdEncoding.DecodeString(sb.Signature)
		if err != nil || sb.Alg != "Ed25519" || !ed25519.Verify(pub, payload, sig) {
			return nil, ErrBundleSignature
		}
	}
	var body BundleBody
	if err := json.Unmarshal(payload, &body); err != nil {
		return nil, fmt.Errorf("policy: bundle body: %w", err)
	}
	if body.Format != BundleFormat {
		return nil, fmt.Errorf("policy: bundle format %q, want %q", body.Format, BundleFormat)
	}
	src := source{}
	for n, c := range body.Files {
		src[n] = []byte(c)
	}
	if _, ok := src[SchemaFile]; !ok {
		return nil, fmt.Errorf("policy: bundle has no %s", SchemaFile)
	}
	e, probs := compile(src)
	if len(probs) > 0 {
		return nil, &InvalidBundleError{Problems: probs}
	}
	if e.revision != body.Revision {
		return nil, ErrBundleRevision
	}
	if opts.Logger != nil {
		opts.Logger.Info("policy bundle loaded", "revision", e.revision, "created", body.Created)
	}
	return e, nil
}

// MarshalKeys encodes an Ed25519 key pair as PKCS#8 and PKIX PEM.
func MarshalKeys(key ed25519.PrivateKey) (privPEM, pubPEM []byte, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	pder, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), nil
}

// ParsePrivateKey reads a PKCS#8 PEM Ed25519 private key.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("policy: no PEM block in key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("policy: bundle key must be Ed25519")
	}
	return ek, nil
}

// ParsePublicKey reads a PKIX PEM Ed25519 public key.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("policy: no PEM block in key")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("policy: bundle key must be Ed25519")
	}
	return ek, nil
}

// BundleMeta reads a signed bundle's revision, signing key id and creation time WITHOUT
// checking its signature or compiling it: for listings and storage keys of a bundle that
// ReadBundle has verified, never to decide.
func BundleMeta(b []byte) (revision, keyID string, created time.Time, err error) {
	var sb signedBundle
	if err := json.Unmarshal(b, &sb); err != nil {
		return "", "", time.Time{}, fmt.Errorf("policy: bundle: %w", err)
	}
	payload, err := base64.StdEncoding.DecodeString(sb.Payload)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("policy: bundle payload: %w", err)
	}
	var body BundleBody
	if err := json.Unmarshal(payload, &body); err != nil {
		return "", "", time.Time{}, fmt.Errorf("policy: bundle body: %w", err)
	}
	return body.Revision, sb.KeyID, body.Created, nil
}
