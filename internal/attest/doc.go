// Package attest is Warden's runtime attestation library. It follows the roles of the RATS
// architecture (RFC 9334): the agent is the Attester (Attester, which drives a TPM 2.0), the
// control plane is the Verifier (Verifier.Appraise), and gates are Relying Parties that act on
// the Attestation Result carried in the trust state (Policy.Decide).
//
// Evidence is a TPM 2.0 quote by an attestation key (AK) over a verifier nonce and PCR 23,
// into which the agent's binary and configuration/dependency-manifest digests are extended,
// plus the measurement event log and an in-toto Statement v1 in a DSSE envelope that states
// the binary's build provenance. At enrollment the AK is bound to the TPM's endorsement key
// (EK) by credential activation (TPM 2.0 Part 1 §24, TPM2_MakeCredential /
// TPM2_ActivateCredential). Results use the tiers and the trustworthiness vector of the RATS
// AR4SI draft (draft-ietf-rats-ar4si) with its claim names and code points.
//
// The verifier side (Verifier, ParseEvidence, VerifyEnvelope, Policy, nonces, triggers) is
// pure Go and needs no TPM; the attester side talks to any io.ReadWriter that speaks the TPM
// 2.0 command protocol: /dev/tpmrm0 (DeviceOpener) or the simulator in package tpmsim.
//
// Every refusal carries a stable Reason (ReasonTamperedBinary, ReasonQuoteReplay, ...).
// See docs/attestation.md for the evidence format, the appraisal steps and the policy table.
package attest
