// Package api holds the JSON wire types of the control plane's HTTPS API (docs/api.md),
// shared by the server, the CLI and the SDK, and the stable reason codes of its refusals.
package api

import (
	"encoding/json"
	"time"
)

// Paths of the control plane API.
const (
	PathBundle    = "/v1/bundle"     // SPIFFE bundle (JWKS), public
	PathBundlePEM = "/v1/bundle.pem" // X.509 authorities as PEM, public
	PathJWKS      = "/v1/jwks"       // JWT-SVID keys as a JWK Set, public
	// PathOIDCDiscovery is the OpenID Connect discovery document, public.
	PathOIDCDiscovery   = "/.well-known/openid-configuration"
	PathEnroll          = "/v1/enroll"   // join token + CSR (+ evidence), server-authenticated TLS
	PathRenew           = "/v1/renew"    // CSR (+ evidence), mTLS with the current SVID
	PathJWTSVID         = "/v1/jwt-svid" // mTLS
	PathTrustState      = "/v1/trust-state"
	PathTrustStateWatch = "/v1/trust-state/watch" // text/event-stream
	PathAuditEvents     = "/v1/audit/events"      // gates ship decision events, mTLS
	PathAdmin           = "/v1/admin/"            // mTLS with the admin credential
	PathAdminEntries    = "/v1/admin/entries"
	PathAdminTokens     = "/v1/admin/tokens"
	PathAdminTrust      = "/v1/admin/trust/" // + revoke | quarantine | suspend | restore
	// PathAttestChallenge issues a nonce (and, given EK and AK, a credential-activation
	// challenge) before an enroll (join token) or renew (mTLS).
	PathAttestChallenge = "/v1/attest/challenge"
	// PathAdminAttestChallenge pushes an event-driven re-attestation challenge to an agent.
	PathAdminAttestChallenge = "/v1/admin/attest/challenge"
	// PathAdminCARotate replaces the intermediate CA now (POST, body {"reason": ...}).
	PathAdminCARotate = "/v1/admin/ca/rotate"
	// PathRecoverChallenge and PathRecover re-bootstrap a TPM-attested agent whose SVID
	// expired (docs/identity.md, "Recovery"): server-authenticated TLS, no client
	// certificate; the expired SVID, a proof by its key and a fresh quote by the enrolled
	// AK stand in for the join token.
	PathRecoverChallenge = "/v1/recover/challenge"
	PathRecover          = "/v1/recover"
	// PathAdminFederation lists (GET) and adds (POST) federation relationships;
	// DELETE PathAdminFederation/{trust_domain} removes one.
	PathAdminFederation = "/v1/admin/federation"
)

// MaxBodyBytes bounds every request body the control plane reads.
const MaxBodyBytes = 64 << 10

// Reason codes of refusals. They reach the caller in Error.Code and the logs; they never
// change meaning.
const (
	ReasonBadRequest       = "bad_request"
	ReasonUnsupportedMedia = "unsupported_media_type"
	ReasonBodyTooLarge     = "body_too_large"
	ReasonUnauthenticated  = "unauthenticated" // no client certificate where one is required
	ReasonForbidden        = "forbidden"       // authenticated, but not allowed here (e.g. not the admin)
	ReasonNotFound         = "not_found"
	ReasonConflict         = "conflict"
	ReasonTokenInvalid     = "token_invalid" // malformed or unknown join token
	ReasonTokenUsed        = "token_used"
	ReasonTokenExpired     = "token_expired"
	ReasonEntryNotFound    = "entry_not_found" // the token's entry was deleted
	ReasonCSRInvalid       = "csr_invalid"
	ReasonCSRIDMismatch    = "csr_id_mismatch" // the CSR asks for another SPIFFE ID
	ReasonWeakKey          = "weak_key"
	ReasonIdentityRevoked  = "identity_revoked"
	// ReasonSVIDExpired: the client certificate on a kept-alive connection has expired
	// since the handshake (renew before expiry, or recover: POST /v1/recover).
	ReasonSVIDExpired     = "svid_expired"
	ReasonIdentitySuspend = "identity_suspended"
	ReasonUnknownIdentity = "unknown_identity"
	ReasonAttestation     = "attestation_failed" // Error.Attestation carries the attest reason
	ReasonIdentityReview  = "identity_under_review"
	ReasonBusy            = "busy" // too many outstanding attestation challenges
	ReasonInternal        = "internal"
	// ReasonAuditUnavailable: the control plane keeps no audit log (POST /v1/audit/events).
	ReasonAuditUnavailable = "audit_unavailable"
	// ReasonRecoveryImpossible: an expired SVID cannot be recovered (no TPM bound to the
	// entry, expired too long ago, not the newest SVID, attestation off); the agent needs
	// a new join token (warden token create).
	ReasonRecoveryImpossible = "recovery_not_possible"
	// ReasonRecoveryProof: the proof by the expired SVID's key is missing, malformed,
	// stale or does not verify.
	ReasonRecoveryProof = "recovery_proof_invalid"
	// ReasonFederationFetch: a federation relationship was not added because its bundle
	// endpoint could not be fetched or authenticated, or served a bundle refused.
	ReasonFederationFetch = "federation_fetch_failed"
	// ReasonAuditInconsistent: an audit search found a record whose filter columns do not
	// match its canonical bytes (the database was edited; warden audit verify names it).
	ReasonAuditInconsistent = "audit_inconsistent"
)

// Error is the body of every 4xx/5xx answer.
type Error struct {
	Status    int    `json:"-"` // HTTP status, filled in by clients
	Code      string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
	// Attestation is the attestation reason (tampered_binary, quote_replay, ...) of an
	// attestation_failed refusal.
	Attestation string `json:"attestation_reason,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// EnrollRequest is the body of POST /v1/enroll.
type EnrollRequest struct {
	Token string `json:"token"`
	CSR   []byte `json:"csr"` // DER PKCS#10, base64 in JSON
	// Evidence is the attestation evidence slot (docs/attestation.md); opaque here.
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// AttestChallengeRequest is the body of POST /v1/attest/challenge. Token authenticates an
// enrolling agent (the token is checked, not consumed); a renewing agent calls over mTLS
// and leaves it empty. EKPublic and AKPublic (TPM2B contents, TPMT_PUBLIC) ask for a
// credential-activation challenge; without them only a nonce is issued.
type AttestChallengeRequest struct {
	Token    string `json:"token,omitempty"`
	EKPublic []byte `json:"ek_public,omitempty"`
	AKPublic []byte `json:"ak_public,omitempty"`
}

// AttestChallengeResponse answers POST /v1/attest/challenge.
type AttestChallengeResponse struct {
	Nonce     []byte    `json:"nonce"` // 32 bytes, single use
	ExpiresAt time.Time `json:"expires_at"`
	// CredBlob and EncSecret are the TPM2_ActivateCredential inputs (absent when no
	// EK/AK was sent).
	CredBlob  []byte `json:"cred_blob,omitempty"`
	EncSecret []byte `json:"enc_secret,omitempty"`
}

// AttestationEvidence is the content of the evidence slot of enroll and renew.
type AttestationEvidence struct {
	Evidence   json.RawMessage `json:"evidence"`             // attest.Evidence (docs/attestation.md)
	Activation []byte          `json:"activation,omitempty"` // the secret ActivateCredential released
}

// AdminChallengeRequest is the body of POST /v1/admin/attest/challenge.
type AdminChallengeRequest struct {
	ID     string `json:"id"`               // SPIFFE ID of the agent
	Reason string `json:"reason,omitempty"` // recorded as the challenge's rule; default "admin"
}

// AdminChallengeResponse reports the trust-state version carrying the challenge.
// CARotateRequest asks for an intermediate-CA rotation; Reason is recorded in the audit
// event (e.g. an incident ticket).
type CARotateRequest struct {
	Reason string `json:"reason"`
}

// CARotateResponse names the new intermediate and the one it replaced.
type CARotateResponse struct {
	Serial         string    `json:"serial"`
	NotAfter       time.Time `json:"not_after"`
	PreviousSerial string    `json:"previous_serial"`
}

type AdminChallengeResponse struct {
	Version  int64     `json:"version"`
	Deadline time.Time `json:"deadline"`
}

// RecoverPayloadType is the DSSE payload type of a RecoverStatement.
const RecoverPayloadType = "application/vnd.warden.recover+json"

// Purposes of a RecoverStatement.
const (
	RecoverPurposeChallenge = "recover-challenge"
	RecoverPurposeIssue     = "recover"
)

// RecoverStatement is what the expired SVID's key signs (a DSSE envelope, payload type
// RecoverPayloadType): for a challenge, the identity, purpose and the time (within two
// minutes of the server's clock); for the recovery itself, also the nonce of the
// challenge and the SHA-256 of the CSR, so the proof binds the new key to the old one
// and to the fresh quote.
type RecoverStatement struct {
	SPIFFEID  string    `json:"spiffe_id"`
	Purpose   string    `json:"purpose"`
	Time      time.Time `json:"time"`
	Nonce     []byte    `json:"nonce,omitempty"`
	CSRSHA256 []byte    `json:"csr_sha256,omitempty"`
}

// RecoverChallengeRequest is the body of POST /v1/recover/challenge: the expired SVID
// chain (leaf first, DER) and a DSSE envelope (JSON) over a RecoverStatement with
// purpose recover-challenge, signed by the SVID's key.
type RecoverChallengeRequest struct {
	SVID  [][]byte        `json:"svid"`
	Proof json.RawMessage `json:"proof"`
}

// RecoverRequest is the body of POST /v1/recover: the expired SVID chain, a CSR for the
// same SPIFFE ID with a new key, the evidence slot (a quote by the enrolled AK over the
// challenge's nonce) and the proof (purpose recover, with that nonce and the CSR's
// hash). The answer is an SVIDResponse.
type RecoverRequest struct {
	SVID     [][]byte        `json:"svid"`
	CSR      []byte          `json:"csr"`
	Evidence json.RawMessage `json:"evidence"`
	Proof    json.RawMessage `json:"proof"`
}

// RenewRequest is the body of POST /v1/renew.
type RenewRequest struct {
	CSR      []byte          `json:"csr"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// SVIDResponse answers enroll and renew.
type SVIDResponse struct {
	SPIFFEID  string    `json:"spiffe_id"`
	Serial    string    `json:"serial"`     // lower-case hex
	SVIDPEM   string    `json:"svid_pem"`   // leaf, then intermediates
	BundlePEM string    `json:"bundle_pem"` // X.509 authorities of the trust domain
	ExpiresAt time.Time `json:"expires_at"`
}

// JWTSVIDRequest is the body of POST /v1/jwt-svid.
type JWTSVIDRequest struct {
	Audience []string `json:"audience"`
	TTLSec   int      `json:"ttl_s,omitempty"`
}

// JWTSVIDResponse answers POST /v1/jwt-svid.
type JWTSVIDResponse struct {
	Token string `json:"token"`
}

// Entry is a registration entry on the admin API.
type Entry struct {
	Name     string `json:"name"`
	Kind     string `json:"kind,omitempty"` // "agent" (default): spiffe://TD/agent/NAME; "gate": spiffe://TD/gate/NAME
	SPIFFEID string `json:"spiffe_id,omitempty"`
	Role     string `json:"role"`
	Class    string `json:"class"`
	Zone     string `json:"zone"`
	// Guards (kind gate): the agent (entry name or SPIFFE ID) this gate stands in front
	// of; answered as its SPIFFE ID. Class, role and zone default to the agent's, and the
	// class must be the agent's.
	Guards    string          `json:"guards,omitempty"`
	Attrs     json.RawMessage `json:"attrs,omitempty"`
	CreatedAt time.Time       `json:"created_at,omitzero"`
	Status    string          `json:"status,omitempty"` // from the trust state: active | quarantined | suspended | revoked
}

// TokenRequest is the body of POST /v1/admin/tokens.
type TokenRequest struct {
	Entry  string `json:"entry"`
	TTLSec int    `json:"ttl_s"`
}

// TokenResponse carries a join token; it is shown once and stored only as a hash.
type TokenResponse struct {
	Token     string    `json:"token"`
	Entry     string    `json:"entry"`
	ExpiresAt time.Time `json:"expires_at"`
}

// TrustChange is the body of POST /v1/admin/trust/{revoke,quarantine,suspend,restore}.
type TrustChange struct {
	ID     string `json:"id,omitempty"`     // SPIFFE ID
	Serial string `json:"serial,omitempty"` // hex serial, for revoke
	Reason string `json:"reason"`
}

// TrustChangeResponse reports the trust-state version that carries the change.
type TrustChangeResponse struct {
	Version int64 `json:"version"`
}

// FederationRequest is the body of POST /v1/admin/federation: the parameters of a
// federation relationship (SPIFFE Federation §5.1) and the policy attributes of the
// foreign trust domain's agents.
type FederationRequest struct {
	TrustDomain      string `json:"trust_domain"`
	EndpointURL      string `json:"endpoint_url"`
	Profile          string `json:"profile"`                      // https_spiffe | https_web
	EndpointSPIFFEID string `json:"endpoint_spiffe_id,omitempty"` // https_spiffe
	// Bundle is the trust domain's SPIFFE bundle (a JWKS document) to start from: required
	// for a self-serving https_spiffe endpoint, whose first connection it authenticates.
	Bundle json.RawMessage `json:"bundle,omitempty"`
	Role   string          `json:"role,omitempty"`
	Class  string          `json:"class,omitempty"`
	Zone   string          `json:"zone,omitempty"`
	Reason string          `json:"reason,omitempty"` // recorded in the audit event
}

// Federation is one relationship as GET /v1/admin/federation lists it.
type Federation struct {
	TrustDomain      string    `json:"trust_domain"`
	EndpointURL      string    `json:"endpoint_url"`
	Profile          string    `json:"profile"`
	EndpointSPIFFEID string    `json:"endpoint_spiffe_id,omitempty"`
	Role             string    `json:"role,omitempty"`
	Class            string    `json:"class,omitempty"`
	Zone             string    `json:"zone,omitempty"`
	AddedAt          time.Time `json:"added_at"`
	RefreshedAt      time.Time `json:"refreshed_at"` // the bundle last changed
	X509Authorities  int       `json:"x509_authorities"`
	JWTAuthorities   int       `json:"jwt_authorities"`
	Sequence         *uint64   `json:"spiffe_sequence,omitempty"`
	RefreshHintSec   int64     `json:"spiffe_refresh_hint,omitempty"`
	// As this replica saw its last fetch.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	NextRefresh time.Time `json:"next_refresh,omitzero"`
	Version     int64     `json:"trust_state_version,omitempty"` // of the change (add)
}
