package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// EvidenceVersion is the only evidence format version this package writes and reads.
const EvidenceVersion = 1

// MeasurementPCR is the PCR the agent's measurements are extended into: PCR 23, the
// "application support" PCR of the TCG PC Client Platform Firmware Profile, which firmware
// and the OS leave alone and which is resettable and extendable from locality 0. See
// docs/attestation.md for what that choice does and does not prove.
const MeasurementPCR = 23

// Limits for untrusted evidence.
const (
	MaxEvidenceBytes = 256 << 10 // whole JSON document
	MaxEvents        = 1024      // event-log entries
	maxBlob          = 4096      // any TPM structure
)

// Kind is what a measurement event measures.
type Kind string

// Measurement kinds.
const (
	KindBinary   Kind = "binary"   // the agent's executable
	KindConfig   Kind = "config"   // its configuration file
	KindManifest Kind = "manifest" // its dependency manifest (go.sum, SBOM, lock file)
)

func (k Kind) valid() bool { return k == KindBinary || k == KindConfig || k == KindManifest }

// Event is one entry of the measurement log: one digest extended into MeasurementPCR.
type Event struct {
	Kind   Kind   `json:"kind"`
	Digest string `json:"digest"`         // "sha256:<64 lower-case hex>"
	Name   string `json:"name,omitempty"` // informational (file path); not bound into the PCR
}

// extendDigest is the value the TPM extends for e:
// SHA256("warden.measurement.v1" || 0x00 || kind || 0x00 || raw digest),
// so that the PCR binds the kind of each digest as well as the digest.
func (e Event) extendDigest() ([32]byte, error) {
	raw, err := parseDigest(e.Digest)
	if err != nil {
		return [32]byte{}, err
	}
	h := sha256.New()
	h.Write([]byte("warden.measurement.v1\x00"))
	h.Write([]byte(e.Kind))
	h.Write([]byte{0})
	h.Write(raw)
	var out [32]byte
	h.Sum(out[:0])
	return out, nil
}

// ReplayEventLog recomputes the SHA-256 PCR value the log must produce from a zero PCR:
// PCR := SHA256(PCR || extendDigest(event)) for each event in order (TPM 2.0 Part 1 §17.2).
func ReplayEventLog(log []Event) ([]byte, error) {
	pcr := make([]byte, 32)
	for i, e := range log {
		d, err := e.extendDigest()
		if err != nil {
			return nil, fmt.Errorf("attest: event %d: %w", i, err)
		}
		h := sha256.New()
		h.Write(pcr)
		h.Write(d[:])
		pcr = h.Sum(pcr[:0])
	}
	return pcr, nil
}

// Evidence is the attestation evidence slot of an enroll or renew request. All TPM
// structures are in their TPM 2.0 Part 2 wire encoding, base64 in JSON.
type Evidence struct {
	Version int `json:"version"`
	// EKPublic is the endorsement key's TPMT_PUBLIC (Part 2 §12.2.4); EKCert its
	// manufacturer certificate (DER) when the TPM has one.
	EKPublic []byte `json:"ek_public"`
	EKCert   []byte `json:"ek_cert,omitempty"`
	// AKPublic is the attestation key's TPMT_PUBLIC.
	AKPublic []byte `json:"ak_public"`
	// Quote is the TPMS_ATTEST the TPM produced (Part 2 §10.12.12) and QuoteSignature its
	// TPMT_SIGNATURE (§11.3.4) by the AK.
	Quote          []byte `json:"quote"`
	QuoteSignature []byte `json:"quote_signature"`
	// PCRs holds the SHA-256 bank values of the quoted PCRs, by index.
	PCRs map[int][]byte `json:"pcrs"`
	// EventLog lists the measurements extended into MeasurementPCR, in order.
	EventLog []Event `json:"event_log"`
	// Provenance is an in-toto Statement v1 in a DSSE envelope, subject the binary digest.
	Provenance *Envelope `json:"provenance,omitempty"`
	// Nonce is the verifier's challenge nonce, also the quote's extraData.
	Nonce []byte `json:"nonce"`
}

// ErrMalformed wraps every ParseEvidence failure.
var ErrMalformed = errors.New("attest: malformed evidence")

// ParseEvidence decodes untrusted evidence strictly: size limits, no unknown fields, no
// trailing data, the supported version, well-formed digests and kinds. It does not verify
// anything cryptographic; Verifier.Appraise does. Every error wraps ErrMalformed.
func ParseEvidence(b []byte) (*Evidence, error) {
	if len(b) > MaxEvidenceBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(b), MaxEvidenceBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ev Evidence
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	if err := ev.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &ev, nil
}

func (ev *Evidence) validate() error {
	if ev.Version != EvidenceVersion {
		return fmt.Errorf("version %d, want %d", ev.Version, EvidenceVersion)
	}
	for name, blob := range map[string][]byte{"ek_public": ev.EKPublic, "ak_public": ev.AKPublic,
		"quote": ev.Quote, "quote_signature": ev.QuoteSignature} {
		if len(blob) == 0 || len(blob) > maxBlob {
			return fmt.Errorf("%s: length %d", name, len(blob))
		}
	}
	if len(ev.EKCert) > 4*maxBlob {
		return fmt.Errorf("ek_cert: length %d", len(ev.EKCert))
	}
	if len(ev.Nonce) < 16 || len(ev.Nonce) > 64 {
		return fmt.Errorf("nonce: length %d, want 16..64", len(ev.Nonce))
	}
	if len(ev.PCRs) == 0 || len(ev.PCRs) > 24 {
		return fmt.Errorf("pcrs: %d values", len(ev.PCRs))
	}
	for i, v := range ev.PCRs {
		if i < 0 || i > 23 || len(v) != sha256.Size {
			return fmt.Errorf("pcrs: bad PCR %d (%d bytes)", i, len(v))
		}
	}
	if len(ev.EventLog) > MaxEvents {
		return fmt.Errorf("event_log: %d events, limit %d", len(ev.EventLog), MaxEvents)
	}
	for i, e := range ev.EventLog {
		if !e.Kind.valid() {
			return fmt.Errorf("event %d: kind %q", i, e.Kind)
		}
		if _, err := parseDigest(e.Digest); err != nil {
			return fmt.Errorf("event %d: %v", i, err)
		}
		if len(e.Name) > 1024 {
			return fmt.Errorf("event %d: name too long", i)
		}
	}
	if ev.Provenance != nil {
		if err := ev.Provenance.validate(); err != nil {
			return fmt.Errorf("provenance: %v", err)
		}
	}
	return nil
}

// Marshal encodes the evidence as JSON.
func (ev *Evidence) Marshal() ([]byte, error) { return json.Marshal(ev) }

// DigestOf returns "sha256:<hex>" of b.
func DigestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// parseDigest parses "sha256:<64 lower-case hex>".
func parseDigest(s string) ([]byte, error) {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return nil, fmt.Errorf("digest %.80q: want sha256:<64 hex>", s)
	}
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return nil, fmt.Errorf("digest %.80q: want lower-case hex", s)
		}
	}
	return hex.DecodeString(h)
}

// NormalizeDigest accepts "sha256:<hex>" or bare hex, any case, and returns the canonical
// "sha256:<lower-case hex>" form used in evidence and reference values.
func NormalizeDigest(s string) (string, error) {
	s = strings.TrimSpace(s)
	if h, ok := strings.CutPrefix(strings.ToLower(s), "sha256:"); ok {
		s = h
	}
	s = "sha256:" + strings.ToLower(s)
	if _, err := parseDigest(s); err != nil {
		return "", fmt.Errorf("attest: %w", err)
	}
	return s, nil
}
