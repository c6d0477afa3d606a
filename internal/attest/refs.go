package attest

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"gopkg.in/yaml.v3"
)

// ReferenceValues are the approved values of one registration entry (RFC 9334 §8.3). They
// live in the entry's Attrs under the key "attestation" (see AttrsWithRefs) and load from a
// YAML or JSON file (LoadReferenceValues).
type ReferenceValues struct {
	// Binaries are the approved digests of the agent executable ("sha256:<hex>").
	Binaries []string `json:"binaries" yaml:"binaries"`
	// Configs are the approved digests of its configuration and dependency manifest. When
	// empty, config/manifest events are not checked (and the configuration claim is none).
	Configs []string `json:"configs,omitempty" yaml:"configs,omitempty"`
	// PCRs optionally pins whole PCR values ("sha256:<hex>" per index); any listed value is
	// accepted. Usually left empty: the event log is checked against Binaries and Configs.
	PCRs map[int][]string `json:"pcrs,omitempty" yaml:"pcrs,omitempty"`
	// BuildSigners are PEM PUBLIC KEY blocks (Ed25519 or ECDSA P-256) trusted to sign the
	// binary's provenance. When non-empty, evidence must carry provenance signed by one.
	BuildSigners []string `json:"build_signers,omitempty" yaml:"build_signers,omitempty"`
	// EKs optionally pins the TPM: TPM names ("sha256:<hex>" of the EK TPMT_PUBLIC) of the
	// endorsement keys allowed. When set, the hardware claim is genuine_hw on a match.
	EKs []string `json:"eks,omitempty" yaml:"eks,omitempty"`
}

// Validate normalizes every digest and parses every key; it reports the first problem.
func (r *ReferenceValues) Validate() error {
	norm := func(list []string, what string) error {
		for i, d := range list {
			n, err := NormalizeDigest(d)
			if err != nil {
				return fmt.Errorf("attest: reference values: %s[%d]: %w", what, i, err)
			}
			list[i] = n
		}
		return nil
	}
	if err := norm(r.Binaries, "binaries"); err != nil {
		return err
	}
	if err := norm(r.Configs, "configs"); err != nil {
		return err
	}
	if err := norm(r.EKs, "eks"); err != nil {
		return err
	}
	for i, v := range r.PCRs {
		if i < 0 || i > 23 {
			return fmt.Errorf("attest: reference values: pcr index %d", i)
		}
		if err := norm(v, fmt.Sprintf("pcrs[%d]", i)); err != nil {
			return err
		}
	}
	_, err := r.signerKeys()
	return err
}

func (r *ReferenceValues) signerKeys() ([]crypto.PublicKey, error) {
	keys := make([]crypto.PublicKey, 0, len(r.BuildSigners))
	for i, p := range r.BuildSigners {
		k, err := ParsePublicKeyPEM(p)
		if err != nil {
			return nil, fmt.Errorf("attest: reference values: build_signers[%d]: %w", i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// LoadReferenceValues reads reference values from a YAML or JSON file (JSON is YAML).
// Unknown fields are errors.
func LoadReferenceValues(path string) (ReferenceValues, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ReferenceValues{}, fmt.Errorf("attest: %w", err)
	}
	return ParseReferenceValues(b)
}

// ParseReferenceValues decodes YAML or JSON reference values and validates them.
func ParseReferenceValues(b []byte) (ReferenceValues, error) {
	var r ReferenceValues
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("attest: reference values: %w", err)
	}
	return r, r.Validate()
}

// attrsKey is the key of the reference values inside an entry's Attrs JSON object.
const attrsKey = "attestation"

// ErrNoReferenceValues: the entry's Attrs hold no attestation reference values.
var ErrNoReferenceValues = errors.New("attest: entry has no reference values")

// RefsFromAttrs extracts the reference values from an entry's Attrs JSON object
// ({"attestation": {...}, ...other attributes}). ErrNoReferenceValues if absent.
func RefsFromAttrs(attrs []byte) (ReferenceValues, error) {
	var r ReferenceValues
	if len(bytes.TrimSpace(attrs)) == 0 {
		return r, ErrNoReferenceValues
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(attrs, &m); err != nil {
		return r, fmt.Errorf("attest: entry attrs: %w", err)
	}
	raw, ok := m[attrsKey]
	if !ok || string(raw) == "null" {
		return r, ErrNoReferenceValues
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("attest: entry attrs: %w", err)
	}
	return r, r.Validate()
}

// AttrsWithRefs returns attrs with its "attestation" key set to r, keeping other keys.
func AttrsWithRefs(attrs []byte, r ReferenceValues) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	m := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(attrs)) > 0 {
		if err := json.Unmarshal(attrs, &m); err != nil {
			return nil, fmt.Errorf("attest: entry attrs: %w", err)
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	m[attrsKey] = b
	return json.Marshal(m)
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }
