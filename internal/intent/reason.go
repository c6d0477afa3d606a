package intent

import (
	"errors"
)

// Reason codes: stable strings that reach the caller, the audit event and metric labels.
// docs/intent-spec.md section "Verification" says which step yields which.
const (
	ReasonMalformed         = "malformed"          // not a strict compact JWS with canonical, well-typed claims
	ReasonTooLarge          = "too_large"          // token longer than MaxTokenSize
	ReasonAlgNotAllowed     = "alg_not_allowed"    // alg other than EdDSA/ES256, or not matching the certificate key
	ReasonBadSignature      = "bad_signature"      // signature does not verify with the peer certificate's key
	ReasonWrongIssuer       = "wrong_issuer"       // iss is not the SPIFFE ID of the peer certificate
	ReasonWrongAudience     = "wrong_audience"     // aud is not the verifier's own SPIFFE ID
	ReasonExpired           = "expired"            // now >= exp + skew
	ReasonNotYetValid       = "not_yet_valid"      // now < iat - skew
	ReasonLifetimeTooLong   = "lifetime_too_long"  // exp - iat > MaxLifetime
	ReasonBodyMismatch      = "body_mismatch"      // bdy is not the SHA-256 of the received body
	ReasonChannelMismatch   = "channel_mismatch"   // cnf.x5t#S256 is not the peer certificate's thumbprint
	ReasonReplay            = "replay"             // (iss, jti) already seen and not yet expired
	ReasonReplayCacheFull   = "replay_cache_full"  // the replay cache cannot record the intent (full, or backend down)
	ReasonDelegationInvalid = "delegation_invalid" // dlg too deep, malformed, cyclic, or widening the scope
)

// Reasons lists every reason code, in the order of docs/intent-spec.md.
var Reasons = []string{
	ReasonMalformed, ReasonTooLarge, ReasonAlgNotAllowed, ReasonBadSignature,
	ReasonWrongIssuer, ReasonWrongAudience, ReasonExpired, ReasonNotYetValid,
	ReasonLifetimeTooLong, ReasonBodyMismatch, ReasonChannelMismatch, ReasonReplay,
	ReasonReplayCacheFull, ReasonDelegationInvalid,
}

// Error is the refusal Verify returns: one Reason code and, for logs, a detail that
// never contains the token, a key or the body.
type Error struct {
	Reason string
	Detail string
	Err    error // underlying cause, if any (e.g. a Redis error)
}

func (e *Error) Error() string {
	s := "intent: " + e.Reason
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Reason: r}) match on the reason alone.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason && t.Detail == "" && t.Err == nil
}

// ReasonOf returns the reason code carried by err, "" for nil, and ReasonMalformed for
// an error that carries none (fail closed).
func ReasonOf(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonMalformed
}

func refuse(reason, detail string) *Error {
	return &Error{Reason: reason, Detail: detail}
}
