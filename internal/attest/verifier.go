package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/legacy/tpm2/credactivation"
)

// Config configures a Verifier.
type Config struct {
	// MaxEvidenceAge is how long after its challenge was issued evidence is still fresh.
	// Default 60 s.
	MaxEvidenceAge time.Duration
	// ProvenanceCacheSize bounds the cache of provenance envelopes that verified (agents of
	// one build present the same envelope at every renewal, so its signature is checked
	// once). 0 means 4096; negative disables the cache. Only envelopes that verified under
	// a pinned key are cached, keyed by the envelope bytes and the pinned key set.
	ProvenanceCacheSize int
	// EKRoots are the TPM manufacturers' root certificates (and EKIntermediates their
	// intermediate CAs) that EK certificates must chain to. With EKRoots set, evidence
	// that carries an EK certificate has it verified: it must chain to a root and certify
	// the very EK the AK was bound to; then the hardware claim is genuine_hw. A
	// certificate that fails is refused (unknown_ek); evidence without one gets no
	// hardware claim, as with no roots.
	EKRoots, EKIntermediates *x509.CertPool
}

// Verifier appraises evidence against reference values (RFC 9334 §3.2). It holds no
// per-agent state; nonces and enrolled AKs are kept by the caller. Safe for concurrent use.
type Verifier struct {
	maxAge time.Duration

	ekRoots, ekInter *x509.CertPool

	cacheSize int
	mu        sync.Mutex
	provOK    map[[32]byte]map[string]bool // envelope+keys digest -> subject sha256 hex set
}

// NewVerifier returns a Verifier.
func NewVerifier(cfg Config) *Verifier {
	if cfg.MaxEvidenceAge <= 0 {
		cfg.MaxEvidenceAge = 60 * time.Second
	}
	if cfg.ProvenanceCacheSize == 0 {
		cfg.ProvenanceCacheSize = 4096
	}
	return &Verifier{maxAge: cfg.MaxEvidenceAge, cacheSize: cfg.ProvenanceCacheSize,
		ekRoots: cfg.EKRoots, ekInter: cfg.EKIntermediates, provOK: map[[32]byte]map[string]bool{}}
}

// CredentialChallenge is what the verifier sends the attester for credential activation:
// TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET contents (TPM 2.0 Part 1 §24).
type CredentialChallenge struct {
	CredBlob  []byte `json:"cred_blob"`
	EncSecret []byte `json:"enc_secret"`
}

// PendingActivation is the verifier's side of one credential challenge. It holds the
// secret: keep it server-side only (never in a response or a log line; LogValue redacts).
type PendingActivation struct {
	Secret []byte `json:"secret"`
	// SecretSHA256 is what an ActivationStore keeps and gives back instead of Secret.
	SecretSHA256 []byte `json:"secret_sha256,omitempty"`
	EKName       string `json:"ek_name"`
	AKName       string `json:"ak_name"`
}

// checkEKCert verifies a TPM manufacturer's EK certificate (TCG EK Credential Profile):
// it chains to one of the configured roots at now, and its public key is the EK's.
// EK certificates carry the TCG EK key purpose, not a web one, so the chain is checked
// for any key usage; their SAN (the TPM vendor, model, version) is a critical extension
// Go does not parse, so that one is accepted.
func (v *Verifier) checkEKCert(der []byte, ek tpm2.Public, now time.Time) error {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	cert.UnhandledCriticalExtensions = slices.DeleteFunc(cert.UnhandledCriticalExtensions,
		func(id asn1.ObjectIdentifier) bool { return id.Equal(oidSubjectAltName) })
	if _, err := cert.Verify(x509.VerifyOptions{Roots: v.ekRoots, Intermediates: v.ekInter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("does not chain to a configured TPM manufacturer root: %w", err)
	}
	key, err := ek.Key()
	if err != nil {
		return fmt.Errorf("EK key: %w", err)
	}
	eq, ok := key.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(cert.PublicKey) {
		return errors.New("certifies another key than the evidence EK")
	}
	return nil
}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// matches reports whether response is the activation's secret (compared in constant
// time, as the secret or as its SHA-256 when only that is held).
func (p PendingActivation) matches(response []byte) bool {
	if len(p.SecretSHA256) == sha256.Size {
		sum := sha256.Sum256(response)
		return len(response) > 0 && subtle.ConstantTimeCompare(p.SecretSHA256, sum[:]) == 1
	}
	return len(p.Secret) > 0 && subtle.ConstantTimeCompare(p.Secret, response) == 1
}

// LogValue keeps the secret out of logs.
func (p PendingActivation) LogValue() slog.Value {
	return slog.GroupValue(slog.String("ek_name", p.EKName), slog.String("ak_name", p.AKName),
		slog.String("secret", "REDACTED"))
}

// Activation is the attester's answer to a credential challenge, checked in Appraise.
type Activation struct {
	Pending  PendingActivation
	Response []byte // the secret as the attester's TPM released it
}

// MakeCredential makes a credential challenge for the AK with public area akPub, to be
// activated only by the TPM holding the EK with public area ekPub (the verifier-side
// TPM2_MakeCredential, done in software). It refuses an AK that is not a fixedTPM
// restricted signing key.
func (v *Verifier) MakeCredential(ekPub, akPub []byte) (CredentialChallenge, PendingActivation, error) {
	ekName, ek, _, err := tpmName(ekPub)
	if err != nil {
		return CredentialChallenge{}, PendingActivation{}, fmt.Errorf("attest: EK public: %w", err)
	}
	akName, ak, akDigest, err := tpmName(akPub)
	if err != nil {
		return CredentialChallenge{}, PendingActivation{}, fmt.Errorf("attest: AK public: %w", err)
	}
	if err := checkAK(ak); err != nil {
		return CredentialChallenge{}, PendingActivation{}, err
	}
	ekKey, err := ek.Key()
	if err != nil {
		return CredentialChallenge{}, PendingActivation{}, fmt.Errorf("attest: EK key: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return CredentialChallenge{}, PendingActivation{}, fmt.Errorf("attest: %w", err)
	}
	blob, enc, err := credactivation.Generate(akDigest, ekKey, 16, secret)
	if err != nil {
		return CredentialChallenge{}, PendingActivation{}, fmt.Errorf("attest: make credential: %w", err)
	}
	// Generate returns TPM2B encodings; the ActivateCredential command adds the size
	// prefix itself, so carry the bare contents.
	return CredentialChallenge{CredBlob: blob[2:], EncSecret: enc[2:]},
		PendingActivation{Secret: secret, EKName: ekName, AKName: akName}, nil
}

func checkAK(ak tpm2.Public) error {
	if ak.Attributes&requiredAKAttrs != requiredAKAttrs || ak.Attributes&tpm2.FlagDecrypt != 0 {
		return fmt.Errorf("attest: AK attributes %#x lack fixedTPM|fixedParent|sensitiveDataOrigin|restricted|sign", uint32(ak.Attributes))
	}
	return nil
}

// Request is one appraisal.
type Request struct {
	// Evidence is the evidence JSON exactly as received (untrusted).
	Evidence []byte
	// Refs are the entry's reference values.
	Refs ReferenceValues
	// Nonce and IssuedAt are the challenge the verifier issued for this evidence (from
	// its NonceStore, after Consume).
	Nonce    []byte
	IssuedAt time.Time
	// Exactly one of Activation (enrollment: the credential challenge just answered) and
	// EnrolledAK (renewal / event-driven: the AK TPMT_PUBLIC accepted at enrollment) binds
	// the AK. With neither, the AK is not trusted and the result is ak_not_in_ek_tpm.
	Activation *Activation
	EnrolledAK []byte
	// EnrolledEK is the EK TPMT_PUBLIC accepted at enrollment. With EnrolledAK it makes
	// the evidence's EK trustworthy (the AK is fixedTPM, so it is still in that TPM); a
	// different EK in the evidence is unknown_ek. Entries that pin EKs need it at renewal:
	// without it an EK pin fails closed, since nothing else binds the reported EK.
	EnrolledEK []byte
	// Now is the appraisal time.
	Now time.Time
}

// Appraise appraises the evidence and returns the Attestation Result. It never returns an
// error: every failure is a non-affirming Result with its Reason. The steps, in order:
// parse; nonce (quote_replay); freshness (stale_evidence); AK attributes (unsafe_ak); AK
// binding by credential activation (ak_not_in_ek_tpm) or to the enrolled AK (wrong_ak);
// pinned EK (unknown_ek); quote signature by that AK (wrong_ak), quote structure
// (malformed), quote extraData = nonce (quote_replay); PCR digest and event-log replay
// (pcr_mismatch); approved PCR values (pcr_mismatch); binary digests (tampered_binary);
// config digests (unapproved_config); provenance (unknown_build_signer, bad_provenance).
func (v *Verifier) Appraise(req Request) Result {
	r := Result{EvidenceDigest: DigestOf(req.Evidence), Time: req.Now}
	refuse := func(reason Reason, tv TrustVector, format string, args ...any) Result {
		r.Reason, r.TrustVector, r.Tier = reason, tv, tv.Tier()
		r.Detail = fmt.Sprintf(format, args...)
		return r
	}
	all := func(c Claim) TrustVector { return TrustVector{c, c, c, c, c, c, c, c} }

	if len(req.Refs.Binaries) == 0 {
		return refuse(ReasonNoReferenceValues, TrustVector{}, "entry has no approved binary digests")
	}
	ev, err := ParseEvidence(req.Evidence)
	if err != nil {
		return refuse(ReasonMalformed, all(ClaimUnexpectedEvidence), "%v", err)
	}
	// Freshness (RFC 9334 §10): the nonce must be the one issued, and recent.
	if len(req.Nonce) == 0 || subtle.ConstantTimeCompare(ev.Nonce, req.Nonce) != 1 {
		return refuse(ReasonQuoteReplay, TrustVector{InstanceIdentity: ClaimCryptoValidationFailed},
			"evidence nonce is not the nonce issued for this challenge")
	}
	if req.IssuedAt.IsZero() || req.Now.Sub(req.IssuedAt) > v.maxAge || req.Now.Before(req.IssuedAt.Add(-time.Minute)) {
		return refuse(ReasonStaleEvidence, TrustVector{},
			"challenge issued %s ago, limit %s", req.Now.Sub(req.IssuedAt).Round(time.Millisecond), v.maxAge)
	}

	akName, ak, _, err := tpmName(ev.AKPublic)
	if err != nil {
		return refuse(ReasonMalformed, all(ClaimUnexpectedEvidence), "AK public: %v", err)
	}
	r.AKName = akName
	if err := checkAK(ak); err != nil {
		return refuse(ReasonUnsafeAK, TrustVector{InstanceIdentity: ClaimUntrustworthyInstance}, "%v", err)
	}
	ekName, ekPub, _, err := tpmName(ev.EKPublic)
	if err != nil {
		return refuse(ReasonMalformed, all(ClaimUnexpectedEvidence), "EK public: %v", err)
	}

	// Bind the AK to the TPM.
	ekBound := false
	switch {
	case req.Activation != nil:
		p := req.Activation.Pending
		if !p.matches(req.Activation.Response) {
			return refuse(ReasonAKNotInEKTPM, TrustVector{InstanceIdentity: ClaimUntrustworthyInstance},
				"credential activation failed: the AK is not proven to be in the TPM of the EK")
		}
		if p.AKName != akName || p.EKName != ekName {
			return refuse(ReasonAKNotInEKTPM, TrustVector{InstanceIdentity: ClaimUntrustworthyInstance},
				"credential was activated for another EK/AK pair than the evidence names")
		}
		ekBound = true
	case len(req.EnrolledAK) > 0:
		if !bytes.Equal(req.EnrolledAK, ev.AKPublic) {
			return refuse(ReasonWrongAK, TrustVector{InstanceIdentity: ClaimUnrecognizedInstance},
				"evidence AK %s is not the enrolled AK", akName)
		}
		if len(req.EnrolledEK) > 0 {
			if !bytes.Equal(req.EnrolledEK, ev.EKPublic) {
				return refuse(ReasonUnknownEK, TrustVector{Hardware: ClaimUnrecognizedHardware},
					"evidence EK %s is not the enrolled EK", ekName)
			}
			ekBound = true
		}
	default:
		return refuse(ReasonAKNotInEKTPM, TrustVector{InstanceIdentity: ClaimUntrustworthyInstance},
			"AK neither activated nor enrolled")
	}
	r.EKName = ekName
	hw := ClaimNone
	if len(req.Refs.EKs) > 0 {
		if !ekBound {
			return refuse(ReasonUnknownEK, TrustVector{Hardware: ClaimUnrecognizedHardware},
				"entry pins EKs but the evidence EK is not bound (no activation, no enrolled EK)")
		}
		if !contains(req.Refs.EKs, ekName) {
			return refuse(ReasonUnknownEK, TrustVector{Hardware: ClaimUnrecognizedHardware},
				"EK %s is not pinned for this entry", ekName)
		}
		hw = ClaimGenuineHardware
	}
	if v.ekRoots != nil && len(ev.EKCert) > 0 {
		if !ekBound {
			return refuse(ReasonUnknownEK, TrustVector{Hardware: ClaimUnrecognizedHardware},
				"an EK certificate came with an EK the AK is not bound to")
		}
		if err := v.checkEKCert(ev.EKCert, ekPub, req.Now); err != nil {
			return refuse(ReasonUnknownEK, TrustVector{Hardware: ClaimUnrecognizedHardware}, "EK certificate: %v", err)
		}
		hw = ClaimGenuineHardware
	}

	// Quote: signature by the AK, then its content.
	akKey, err := ak.Key()
	if err != nil {
		return refuse(ReasonMalformed, all(ClaimUnexpectedEvidence), "AK key: %v", err)
	}
	if err := verifyQuoteSignature(akKey, ev.Quote, ev.QuoteSignature); err != nil {
		return refuse(ReasonWrongAK, TrustVector{InstanceIdentity: ClaimCryptoValidationFailed},
			"quote not signed by AK %s: %v", akName, err)
	}
	att, err := tpm2.DecodeAttestationData(ev.Quote)
	if err != nil || att.Magic != 0xff544347 || att.Type != tpm2.TagAttestQuote || att.AttestedQuoteInfo == nil {
		return refuse(ReasonMalformed, all(ClaimUnexpectedEvidence), "quote is not a TPMS_ATTEST quote")
	}
	if subtle.ConstantTimeCompare(att.ExtraData, req.Nonce) != 1 {
		return refuse(ReasonQuoteReplay, TrustVector{InstanceIdentity: ClaimCryptoValidationFailed},
			"quote extraData is not the issued nonce")
	}
	instance := TrustVector{InstanceIdentity: ClaimTrustworthyInstance, Hardware: hw}

	// PCRs: the quoted selection, its digest, the event log.
	qi := att.AttestedQuoteInfo
	sel := slices.Clone(qi.PCRSelection.PCRs)
	slices.Sort(sel)
	if qi.PCRSelection.Hash != tpm2.AlgSHA256 || !slices.Contains(sel, MeasurementPCR) || len(sel) != len(ev.PCRs) {
		return refuse(ReasonPCRMismatch, withExec(instance, ClaimCryptoValidationFailed),
			"quote selects %v in bank %v; evidence reports %d PCRs", sel, qi.PCRSelection.Hash, len(ev.PCRs))
	}
	h := sha256.New()
	for _, i := range sel { // PCR digest = H(PCR[i1] || PCR[i2] || ...) in index order (Part 3 §18.4)
		val, ok := ev.PCRs[i]
		if !ok {
			return refuse(ReasonPCRMismatch, withExec(instance, ClaimCryptoValidationFailed), "PCR %d quoted but not reported", i)
		}
		h.Write(val)
	}
	if !bytes.Equal(h.Sum(nil), qi.PCRDigest) {
		return refuse(ReasonPCRMismatch, withExec(instance, ClaimCryptoValidationFailed),
			"reported PCR values do not match the quoted PCR digest")
	}
	replayed, err := ReplayEventLog(ev.EventLog)
	if err != nil || !bytes.Equal(replayed, ev.PCRs[MeasurementPCR]) {
		return refuse(ReasonPCRMismatch, withExec(instance, ClaimCryptoValidationFailed),
			"event log does not replay to PCR %d", MeasurementPCR)
	}
	for i, approved := range req.Refs.PCRs {
		val, ok := ev.PCRs[i]
		if !ok || !contains(approved, DigestOf0(val)) {
			return refuse(ReasonPCRMismatch, withExec(instance, ClaimUnrecognizedRuntime),
				"PCR %d is not an approved value", i)
		}
	}

	// Measurements against reference values.
	var binaries []string
	configs := 0
	for _, e := range ev.EventLog {
		switch e.Kind {
		case KindBinary:
			binaries = append(binaries, e.Digest)
			r.Binary = e.Digest
			if !contains(req.Refs.Binaries, e.Digest) {
				return refuse(ReasonTamperedBinary, withExec(instance, ClaimContraindicatedRuntime),
					"binary %s is not an approved digest", e.Digest)
			}
		case KindConfig, KindManifest:
			configs++
			if len(req.Refs.Configs) > 0 && !contains(req.Refs.Configs, e.Digest) {
				v := instance
				v.Configuration = ClaimUnsupportableConfig
				return refuse(ReasonUnapprovedConfig, v, "%s %s is not an approved digest", e.Kind, e.Digest)
			}
		}
	}
	if len(binaries) == 0 {
		return refuse(ReasonMissingMeasurement, withExec(instance, ClaimUnrecognizedRuntime), "no binary measurement")
	}
	tv := instance
	tv.Executables = ClaimApprovedRuntime
	if len(req.Refs.Configs) > 0 {
		if configs == 0 {
			tv.Configuration = ClaimUnsupportableConfig
			return refuse(ReasonMissingMeasurement, tv, "no config measurement")
		}
		tv.Configuration = ClaimApprovedConfig
	}

	// Provenance: signed by a pinned build key, subject = every measured binary.
	if len(req.Refs.BuildSigners) > 0 {
		if reason, detail := v.checkProvenanceCached(ev.Provenance, req.Refs, binaries); reason != ReasonNone {
			c := ClaimCryptoValidationFailed
			if reason == ReasonUnknownBuildSigner {
				c = ClaimUnrecognizedRuntime
			}
			return refuse(reason, withExec(tv, c), "%s", detail)
		}
	}
	r.TrustVector, r.Tier = tv, tv.Tier()
	return r
}

func withExec(v TrustVector, c Claim) TrustVector { v.Executables = c; return v }

// DigestOf0 formats a raw SHA-256 value as "sha256:<hex>".
func DigestOf0(raw []byte) string { return fmt.Sprintf("sha256:%x", raw) }

// checkProvenanceCached is CheckProvenance with a cache of envelopes that verified.
func (v *Verifier) checkProvenanceCached(env *Envelope, refs ReferenceValues, binaries []string) (Reason, string) {
	if v.cacheSize < 0 || env == nil {
		return CheckProvenance(env, refs, binaries)
	}
	// key = SHA256(len-prefixed payloadType, payload, each sig, each pinned key PEM)
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(env.PayloadType))
	field(env.Payload)
	for _, s := range env.Signatures {
		field([]byte(s.KeyID))
		field(s.Sig)
	}
	for _, k := range refs.BuildSigners {
		field([]byte(k))
	}
	var key [32]byte
	h.Sum(key[:0])
	v.mu.Lock()
	subjects, ok := v.provOK[key]
	v.mu.Unlock()
	if ok {
		for _, b := range binaries {
			if !subjects[strings.TrimPrefix(b, "sha256:")] {
				return ReasonBadProvenance, "provenance subject does not name binary " + b
			}
		}
		return ReasonNone, ""
	}
	reason, detail := CheckProvenance(env, refs, binaries)
	if reason != ReasonNone {
		return reason, detail
	}
	st, err := ParseStatement(env.Payload)
	if err != nil {
		return ReasonBadProvenance, err.Error()
	}
	set := map[string]bool{}
	for _, s := range st.Subject {
		if d, ok := s.Digest["sha256"]; ok {
			set[d] = true
		}
	}
	v.mu.Lock()
	if len(v.provOK) >= v.cacheSize {
		clear(v.provOK) // simple bound; refilled by the next appraisals
	}
	v.provOK[key] = set
	v.mu.Unlock()
	return ReasonNone, ""
}

// CheckProvenance checks a provenance envelope offline: signed by one of refs' build
// signers (unknown_build_signer, bad_provenance), an in-toto Statement v1 whose subject
// names every digest in binaries (bad_provenance). ReasonNone when it holds.
func CheckProvenance(env *Envelope, refs ReferenceValues, binaries []string) (Reason, string) {
	if env == nil {
		return ReasonBadProvenance, "evidence carries no provenance"
	}
	keys, err := refs.signerKeys()
	if err != nil {
		return ReasonVerifierError, err.Error()
	}
	if _, err := VerifyEnvelope(env, keys); err != nil {
		if errors.Is(err, ErrUnknownSigner) {
			return ReasonUnknownBuildSigner, "provenance is not signed by a pinned build key"
		}
		return ReasonBadProvenance, "provenance signature does not verify"
	}
	if env.PayloadType != PayloadTypeInToto {
		return ReasonBadProvenance, "provenance payloadType is not in-toto"
	}
	st, err := ParseStatement(env.Payload)
	if err != nil {
		return ReasonBadProvenance, err.Error()
	}
	for _, b := range binaries {
		if !st.HasSubjectDigest(b) {
			return ReasonBadProvenance, "provenance subject does not name binary " + b
		}
	}
	return ReasonNone, ""
}

// verifyQuoteSignature checks a TPMT_SIGNATURE over SHA-256(TPMS_ATTEST).
func verifyQuoteSignature(key crypto.PublicKey, quote, sigBlob []byte) error {
	sig, err := tpm2.DecodeSignature(bytes.NewBuffer(sigBlob))
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	d := sha256.Sum256(quote)
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if sig.Alg != tpm2.AlgECDSA || sig.ECC == nil || sig.ECC.HashAlg != tpm2.AlgSHA256 {
			return errors.New("want an ECDSA/SHA-256 signature")
		}
		if !ecdsa.Verify(k, d[:], sig.ECC.R, sig.ECC.S) {
			return errors.New("ECDSA verification failed")
		}
	case *rsa.PublicKey:
		if sig.RSA == nil || sig.RSA.HashAlg != tpm2.AlgSHA256 {
			return errors.New("want an RSA/SHA-256 signature")
		}
		switch sig.Alg {
		case tpm2.AlgRSASSA:
			err = rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], sig.RSA.Signature)
		case tpm2.AlgRSAPSS:
			err = rsa.VerifyPSS(k, crypto.SHA256, d[:], sig.RSA.Signature, nil)
		default:
			err = errors.New("unsupported RSA scheme")
		}
		return err
	default:
		return fmt.Errorf("unsupported AK key %T", key)
	}
	return nil
}
