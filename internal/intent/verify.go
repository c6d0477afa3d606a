package intent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Defaults for Config.
const (
	DefaultMaxLifetime        = 60 * time.Second
	DefaultSkew               = 5 * time.Second
	DefaultMaxDelegationDepth = 3
)

// Config configures a Verifier. Zero values take the defaults.
type Config struct {
	// Audience is the SPIFFE ID of the agent this verifier protects; aud must equal it.
	Audience string
	// MaxLifetime bounds exp - iat (whole seconds). Default 60s.
	MaxLifetime time.Duration
	// Skew is the clock skew tolerated on iat and exp, and added to the time an entry
	// stays in the replay cache. Default 5s.
	Skew time.Duration
	// MaxDelegationDepth is the number of dlg hops allowed; 0 means the default (3), a
	// negative value refuses every intent that carries dlg.
	MaxDelegationDepth int
	// Replay records (iss, jti) until exp + Skew. Required: a verifier without replay
	// protection is not offered.
	Replay ReplayCache
}

// Verifier checks intents for one audience. It is safe for concurrent use.
type Verifier struct {
	aud         string
	maxLifetime int64 // seconds
	skew        time.Duration
	maxDepth    int
	replay      ReplayCache
}

// NewVerifier validates cfg and returns a Verifier.
func NewVerifier(cfg Config) (*Verifier, error) {
	if _, err := spiffeid.FromString(cfg.Audience); err != nil {
		return nil, errors.New("intent: Config.Audience must be a SPIFFE ID: " + err.Error())
	}
	if cfg.Replay == nil {
		return nil, errors.New("intent: Config.Replay is required")
	}
	v := &Verifier{aud: cfg.Audience, skew: cfg.Skew, maxDepth: cfg.MaxDelegationDepth, replay: cfg.Replay}
	life := cfg.MaxLifetime
	if life == 0 {
		life = DefaultMaxLifetime
	}
	if life < time.Second || cfg.Skew < 0 {
		return nil, errors.New("intent: MaxLifetime must be >= 1s and Skew >= 0")
	}
	v.maxLifetime = int64(life / time.Second)
	if cfg.Skew == 0 {
		v.skew = DefaultSkew
	}
	if v.maxDepth == 0 {
		v.maxDepth = DefaultMaxDelegationDepth
	}
	return v, nil
}

// Verify checks token, received over an mTLS connection whose client certificate is
// peer (the leaf X509-SVID), with HTTP body body, at time now, and records it in the
// replay cache. It returns the claims, or an *Error whose Reason is one of:
//
//	too_large          token longer than MaxTokenSize
//	malformed          not three strict base64url segments; header not exactly {alg, typ}
//	                   with typ intent+jwt (crit, jku, jwk, x5u, x5c, kid ... refused);
//	                   duplicate members; payload not canonical claims
//	alg_not_allowed    alg not EdDSA/ES256, or not the algorithm of the peer key
//	channel_mismatch   cnf.x5t#S256 is not the thumbprint of peer (or no peer)
//	wrong_issuer       iss is not the SPIFFE ID of peer
//	bad_signature      signature does not verify with the key of peer
//	wrong_audience     aud is not Config.Audience
//	expired            now >= exp + skew
//	not_yet_valid      now < iat - skew
//	lifetime_too_long  exp - iat > MaxLifetime
//	body_mismatch      bdy is not BodyDigest(body)
//	delegation_invalid dlg deeper than allowed, a hop not a SPIFFE ID, repeated, or
//	                   a scope not a subset of the hop before it
//	replay             (iss, jti) seen before, not yet expired
//	replay_cache_full  the replay cache cannot record it (full; backend unreachable)
//
// The checks run in that order (docs/intent-spec.md, "Verification").
func (v *Verifier) Verify(ctx context.Context, token string, peer *x509.Certificate, body []byte, now time.Time) (*Claims, error) {
	c := new(Claims)
	if err := v.verify(ctx, token, peer, body, now, c); err != nil {
		return nil, err
	}
	return c, nil
}

func (v *Verifier) verify(ctx context.Context, token string, peer *x509.Certificate, body []byte, now time.Time, c *Claims) error {
	if err := verifySigned(token, peer, c); err != nil {
		return err
	}
	if c.Audience != v.aud {
		return refuse(ReasonWrongAudience, "")
	}
	if err := v.checkTimes(c, now); err != nil {
		return err
	}
	if !digestEqual(body, c.BodyDigest) {
		return refuse(ReasonBodyMismatch, "")
	}
	if c.Delegation != nil {
		if rerr := v.checkDelegation(c); rerr != nil {
			return rerr
		}
	}
	exp := time.Unix(c.Expiry, 0)
	if err := v.replay.CheckAndInsert(ctx, c.Issuer, c.ID, now, exp.Add(v.skew)); err != nil {
		if ReasonOf(err) == ReasonReplay {
			return err
		}
		var e *Error
		if errors.As(err, &e) && e.Reason == ReasonReplayCacheFull {
			return err
		}
		return &Error{Reason: ReasonReplayCacheFull, Detail: "replay cache unavailable", Err: err}
	}
	return nil
}

// checkTimes: now inside [iat - skew, exp + skew), and exp - iat within MaxLifetime.
func (v *Verifier) checkTimes(c *Claims, now time.Time) *Error {
	if !now.Before(time.Unix(c.Expiry, 0).Add(v.skew)) {
		return refuse(ReasonExpired, "")
	}
	if now.Before(time.Unix(c.IssuedAt, 0).Add(-v.skew)) {
		return refuse(ReasonNotYetValid, "")
	}
	if c.Expiry-c.IssuedAt > v.maxLifetime {
		return refuse(ReasonLifetimeTooLong, "")
	}
	return nil
}

// verifySigned runs the checks that need only the token and the certificate: size, form,
// header, canonical claims, channel binding, issuer, signature. It fills c.
func verifySigned(token string, peer *x509.Certificate, c *Claims) error {
	if len(token) > MaxTokenSize {
		return refuse(ReasonTooLarge, "")
	}
	h, p, s, ok := splitCompact(token)
	if !ok {
		return refuse(ReasonMalformed, "not a compact JWS")
	}
	alg, rerr := parseHeader(h)
	if rerr != nil {
		return rerr
	}
	var pbuf [MaxTokenSize * 3 / 4]byte
	n, err := strictB64.Decode(pbuf[:], []byte(p))
	if err != nil {
		return refuse(ReasonMalformed, "payload is not base64url")
	}
	var sbuf [64]byte
	if strictB64.DecodedLen(len(s)) > len(sbuf) {
		return refuse(ReasonBadSignature, "signature too long")
	}
	sn, err := strictB64.Decode(sbuf[:], []byte(s))
	if err != nil {
		return refuse(ReasonMalformed, "signature is not base64url")
	}
	if rerr := decodeClaims(string(pbuf[:n]), c); rerr != nil {
		return rerr
	}
	if peer == nil {
		return refuse(ReasonChannelMismatch, "no peer certificate")
	}
	// Channel binding first: a token lifted from another connection is reported as
	// channel_mismatch whatever certificate it is replayed with.
	if !thumbprintEqual(peer, c.CertThumbprint) {
		return refuse(ReasonChannelMismatch, "")
	}
	id, err := x509svid.IDFromCert(peer)
	if err != nil || id.String() != c.Issuer {
		return refuse(ReasonWrongIssuer, "")
	}
	if rerr := verifySig(alg, peer.PublicKey, []byte(token[:len(h)+1+len(p)]), sbuf[:sn]); rerr != nil {
		return rerr
	}
	return nil
}

// VerifyRecorded re-verifies an intent kept in an audit decision event (docs/audit-events.md,
// `warden audit show ID --verify-intent`): everything Verify checks that the record
// holds, at the recorded decision time at — form, header, canonical claims, channel
// binding to peer (the recorded leaf certificate), issuer, signature, the time window
// (with DefaultSkew and DefaultMaxLifetime) and the delegation chain (at most
// DefaultMaxDelegationDepth hops). Not checked: the audience (the caller compares
// Claims.Audience with the recorded callee), the body digest (the body is not recorded)
// and the replay cache. Errors are *Error with the reasons of Verify.
func VerifyRecorded(token string, peer *x509.Certificate, at time.Time) (*Claims, error) {
	c := new(Claims)
	if err := verifySigned(token, peer, c); err != nil {
		return nil, err
	}
	v := &Verifier{skew: DefaultSkew, maxLifetime: int64(DefaultMaxLifetime / time.Second), maxDepth: DefaultMaxDelegationDepth}
	if err := v.checkTimes(c, at); err != nil {
		return nil, err
	}
	if c.Delegation != nil {
		if err := v.checkDelegation(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func thumbprintEqual(cert *x509.Certificate, want string) bool {
	h := sha256.Sum256(cert.Raw)
	var enc [43]byte
	base64.RawURLEncoding.Encode(enc[:], h[:])
	return subtle.ConstantTimeCompare(enc[:], []byte(want)) == 1
}

func digestEqual(body []byte, want string) bool {
	h := sha256.Sum256(body)
	var enc [43]byte
	base64.RawURLEncoding.Encode(enc[:], h[:])
	return string(enc[:]) == want
}

// checkDelegation: depth within the limit; every hop a SPIFFE ID, none repeated and none
// the issuer; the intent's scope a subset of the nearest hop's, each hop's a subset of
// the one before it (RFC 8693 section 4.1: the innermost act is the earliest actor).
func (v *Verifier) checkDelegation(c *Claims) *Error {
	if v.maxDepth < 0 || c.Delegation.Depth() > v.maxDepth {
		return refuse(ReasonDelegationInvalid, "delegation too deep")
	}
	if len(c.Scope) == 0 {
		return refuse(ReasonDelegationInvalid, "a delegated intent needs a scope")
	}
	seen := []string{c.Issuer}
	scope := c.Scope
	for a := c.Delegation; a != nil; a = a.Actor {
		if _, err := spiffeid.FromString(a.Subject); err != nil {
			return refuse(ReasonDelegationInvalid, "dlg sub is not a SPIFFE ID")
		}
		for _, s := range seen {
			if s == a.Subject {
				return refuse(ReasonDelegationInvalid, "dlg repeats an actor")
			}
		}
		seen = append(seen, a.Subject)
		if !subset(scope, a.Scope) {
			return refuse(ReasonDelegationInvalid, "scope wider than the delegating hop's")
		}
		scope = a.Scope
	}
	return nil
}

// subset reports whether sorted set a is contained in sorted set b.
func subset(a, b []string) bool {
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j == len(b) || b[j] != x {
			return false
		}
		j++
	}
	return true
}
