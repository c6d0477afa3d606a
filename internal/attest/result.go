package attest

import (
	"encoding/json"
	"fmt"
	"time"
)

// Tier is an AR4SI trustworthiness tier (draft-ietf-rats-ar4si §2.3.2).
type Tier int

// Tiers, weakest first. Only TierAffirming lets an agent get or keep an identity.
const (
	// TierNone: the Verifier makes no assertion (no evidence, evidence it cannot use,
	// evidence that is not fresh).
	TierNone Tier = iota
	// TierAffirming: the Verifier affirms the Attester's trustworthiness.
	TierAffirming
	// TierWarning: the Verifier found something the Relying Party should be wary of.
	TierWarning
	// TierContraindicated: the Verifier found the Attester untrustworthy.
	TierContraindicated
)

var tierNames = [...]string{"none", "affirming", "warning", "contraindicated"}

func (t Tier) String() string {
	if t < 0 || int(t) >= len(tierNames) {
		return fmt.Sprintf("tier(%d)", int(t))
	}
	return tierNames[t]
}

// MarshalText writes the tier's name.
func (t Tier) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a tier's name.
func (t *Tier) UnmarshalText(b []byte) error {
	for i, n := range tierNames {
		if string(b) == n {
			*t = Tier(i)
			return nil
		}
	}
	return fmt.Errorf("attest: unknown tier %q", b)
}

// Claim is an AR4SI trustworthiness claim value, a signed 8-bit code point
// (draft-ietf-rats-ar4si §2.3.3). Its tier follows from its range: -1..1 none, ±2..±31
// affirming, ±32..±95 warning, ±96..±128 contraindicated.
type Claim int8

// Claim code points used by Warden (the AR4SI names are in the comments).
const (
	ClaimVerifierMalfunction    Claim = -1 // verifier_malfunction
	ClaimNone                   Claim = 0  // no_claim
	ClaimUnexpectedEvidence     Claim = 1  // unexpected_evidence
	ClaimCryptoValidationFailed Claim = 99 // crypto_failed

	ClaimTrustworthyInstance   Claim = 2  // instance-identity: recognized_instance
	ClaimUntrustworthyInstance Claim = 96 // instance-identity: untrustworthy_instance
	ClaimUnrecognizedInstance  Claim = 97 // instance-identity: unrecognized_instance

	ClaimApprovedConfig      Claim = 2  // configuration: approved_config
	ClaimUnsupportableConfig Claim = 96 // configuration: unsupportable_config

	ClaimApprovedRuntime        Claim = 2  // executables: approved_rt
	ClaimUnrecognizedRuntime    Claim = 33 // executables: unrecognized_rt
	ClaimContraindicatedRuntime Claim = 96 // executables: contraindicated_rt

	ClaimGenuineHardware      Claim = 2  // hardware: genuine_hw
	ClaimUnrecognizedHardware Claim = 97 // hardware: unrecognized_hw
)

// Tier returns the tier of the claim's range.
func (c Claim) Tier() Tier {
	v := int(c)
	if v < 0 {
		v = -v
	}
	switch {
	case v <= 1:
		return TierNone
	case v <= 31:
		return TierAffirming
	case v <= 95:
		return TierWarning
	default:
		return TierContraindicated
	}
}

// TrustVector is the AR4SI trustworthiness vector. The JSON names are the AR4SI claim
// names; the CBOR keys of the same claims (EAR, draft-fv-rats-ear) are 0..7 in field order.
type TrustVector struct {
	InstanceIdentity Claim `json:"instance-identity"` // 0
	Configuration    Claim `json:"configuration"`     // 1
	Executables      Claim `json:"executables"`       // 2
	FileSystem       Claim `json:"file-system"`       // 3
	Hardware         Claim `json:"hardware"`          // 4
	RuntimeOpaque    Claim `json:"runtime-opaque"`    // 5
	StorageOpaque    Claim `json:"storage-opaque"`    // 6
	SourcedData      Claim `json:"sourced-data"`      // 7
}

func (v TrustVector) claims() [8]Claim {
	return [8]Claim{v.InstanceIdentity, v.Configuration, v.Executables, v.FileSystem,
		v.Hardware, v.RuntimeOpaque, v.StorageOpaque, v.SourcedData}
}

// Tier is the overall tier: the worst tier of any claim, affirming only if at least one
// claim affirms and none warns or contraindicates, none if every claim is in the none range.
func (v TrustVector) Tier() Tier {
	t := TierNone
	for _, c := range v.claims() {
		switch ct := c.Tier(); {
		case ct == TierContraindicated:
			return TierContraindicated
		case ct == TierWarning:
			t = TierWarning
		case ct == TierAffirming && t == TierNone:
			t = TierAffirming
		}
	}
	return t
}

// Reason is a stable refusal code. It reaches the caller, the audit event and metric labels.
type Reason string

// Reason codes. The appraisal stops at the first failed step (docs/attestation.md lists the
// order), so a Result carries exactly one reason.
const (
	ReasonNone               Reason = ""
	ReasonMalformed          Reason = "malformed"            // evidence does not parse or violates the format
	ReasonQuoteReplay        Reason = "quote_replay"         // nonce is not the one issued for this challenge
	ReasonStaleEvidence      Reason = "stale_evidence"       // challenge older than Config.MaxEvidenceAge
	ReasonAKNotInEKTPM       Reason = "ak_not_in_ek_tpm"     // credential activation failed or never happened
	ReasonWrongAK            Reason = "wrong_ak"             // quote not signed by the enrolled / activated AK
	ReasonUnsafeAK           Reason = "unsafe_ak"            // AK is not a fixedTPM restricted signing key
	ReasonUnknownEK          Reason = "unknown_ek"           // EK not among the entry's pinned EKs
	ReasonPCRMismatch        Reason = "pcr_mismatch"         // PCR digest, event-log replay or approved PCR values differ
	ReasonMissingMeasurement Reason = "missing_measurement"  // no binary (or required config) measurement in the log
	ReasonTamperedBinary     Reason = "tampered_binary"      // a measured binary digest is not approved
	ReasonUnapprovedConfig   Reason = "unapproved_config"    // a measured config/manifest digest is not approved
	ReasonUnknownBuildSigner Reason = "unknown_build_signer" // provenance not signed by a pinned build key
	ReasonBadProvenance      Reason = "bad_provenance"       // provenance missing, bad signature or wrong subject
	ReasonNoReferenceValues  Reason = "no_reference_values"  // entry has no approved binary digests: fail closed
	ReasonVerifierError      Reason = "verifier_malfunction" // internal error; never affirming
	ReasonEvidenceRequired   Reason = "evidence_required"    // the class (or an enrolled AK) requires evidence and none came
)

// Result is an Attestation Result (RFC 9334 §8.4) in the AR4SI model.
type Result struct {
	Tier           Tier        `json:"tier"`
	Reason         Reason      `json:"reason,omitempty"`
	Detail         string      `json:"detail,omitempty"` // human-readable; never contains secrets
	TrustVector    TrustVector `json:"trust_vector"`
	EvidenceDigest string      `json:"evidence_digest"` // "sha256:<hex>" of the evidence bytes as received
	Time           time.Time   `json:"time"`            // when the appraisal was made
	// AKName is the TPM name ("sha256:<hex>" of the AK's TPMT_PUBLIC) of the AK the quote
	// was verified with; the control plane stores it at enrollment for later renewals.
	AKName string `json:"ak_name,omitempty"`
	// EKName is the TPM name of the evidence's EK, trusted only when the AK is bound to it
	// (activation, or Request.EnrolledEK).
	EKName string `json:"ek_name,omitempty"`
	// Binary is the last measured binary digest, for audit events.
	Binary string `json:"binary,omitempty"`
}

// Affirming reports whether the result lets the agent get or keep an identity.
func (r Result) Affirming() bool { return r.Tier == TierAffirming && r.Reason == ReasonNone }

// String is a short log-safe form.
func (r Result) String() string {
	if r.Reason == ReasonNone {
		return r.Tier.String()
	}
	return r.Tier.String() + ":" + string(r.Reason)
}

// MarshalJSON keeps Time in UTC RFC 3339.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	p := plain(r)
	p.Time = p.Time.UTC()
	return json.Marshal(p)
}

// Refused builds the Result for a refusal decided outside Appraise — a nonce the
// NonceStore rejected (ReasonForNonceError), a credential activation that never came back,
// a renewal without evidence — with the same claims Appraise sets for that reason, so
// audit events and the trust state look the same whichever side refused.
func Refused(reason Reason, evidence []byte, now time.Time, detail string) Result {
	if reason == ReasonNone {
		reason = ReasonVerifierError
	}
	var tv TrustVector
	switch reason {
	case ReasonMalformed:
		tv = TrustVector{1, 1, 1, 1, 1, 1, 1, 1}
	case ReasonQuoteReplay:
		tv.InstanceIdentity = ClaimCryptoValidationFailed
	case ReasonAKNotInEKTPM, ReasonUnsafeAK:
		tv.InstanceIdentity = ClaimUntrustworthyInstance
	case ReasonWrongAK:
		tv.InstanceIdentity = ClaimUnrecognizedInstance
	case ReasonUnknownEK:
		tv.Hardware = ClaimUnrecognizedHardware
	case ReasonPCRMismatch, ReasonBadProvenance:
		tv.Executables = ClaimCryptoValidationFailed
	case ReasonTamperedBinary:
		tv.Executables = ClaimContraindicatedRuntime
	case ReasonUnapprovedConfig:
		tv.Configuration = ClaimUnsupportableConfig
	case ReasonUnknownBuildSigner, ReasonMissingMeasurement:
		tv.Executables = ClaimUnrecognizedRuntime
	case ReasonVerifierError:
		tv = TrustVector{-1, -1, -1, -1, -1, -1, -1, -1}
	}
	// stale_evidence, no_reference_values: no claim (tier none).
	r := Result{Tier: tv.Tier(), Reason: reason, Detail: detail, TrustVector: tv, Time: now}
	if len(evidence) > 0 {
		r.EvidenceDigest = DigestOf(evidence)
	}
	return r
}
