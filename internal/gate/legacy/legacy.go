// Package legacy is the tiny verifier a legacy system (an ERP over plain HTTP) puts in
// front of its handlers so that only calls forwarded by a Warden legacy gate get in. The
// gate verifies the caller fully (mTLS, intent, policy) and then calls the system with a
// per-request ES256 JWT (RFC 7519): aud = the system, one action, exp - iat ≤ 60 s and a
// jti that is accepted once. Anything else is answered 401 with a reason code.
package legacy

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Claims of a downstream credential.
type Claims struct {
	jwt.Claims
	Action   string `json:"act"`
	Resource string `json:"res,omitempty"`
}

// MaxTTL bounds exp - iat of an accepted credential.
const MaxTTL = 60 * time.Second

// Reason codes of Verify's refusals.
const (
	ReasonMissing   = "credential_missing"   // no Bearer token
	ReasonMalformed = "credential_malformed" // not a compact JWS, or alg not ES256
	ReasonSignature = "credential_signature" // signature does not verify with the gate's key
	ReasonAudience  = "credential_audience"  // aud is not this system
	ReasonExpired   = "credential_expired"   // outside iat..exp (1 s leeway), or exp - iat > MaxTTL
	ReasonNoAction  = "credential_no_action" // no act claim
	ReasonReplay    = "credential_replay"    // jti seen before
)

// Verifier checks downstream credentials for one system.
type Verifier struct {
	Key      *ecdsa.PublicKey // the legacy gate's public key
	Audience string           // this system's name, the aud the gate mints for
	Now      func() time.Time
	// OnRefuse, if set, is told of every refusal Middleware answers, with the decision
	// id the caller gets: the system's own record of calls that tried to go around its
	// gate (its log, its SIEM). Middleware answers the same with or without it.
	OnRefuse func(r *http.Request, decisionID string, err *Error)

	mu   sync.Mutex
	seen map[string]time.Time // jti -> exp
}

// Error is a refusal with a reason code.
type Error struct{ Reason string }

func (e *Error) Error() string { return "legacy: " + e.Reason }

// Verify checks the Authorization header of r and returns the credential's claims.
func (v *Verifier) Verify(r *http.Request) (*Claims, error) {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return nil, &Error{ReasonMissing}
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, &Error{ReasonMalformed}
	}
	var c Claims
	if err := tok.Claims(v.Key, &c); err != nil {
		return nil, &Error{ReasonSignature}
	}
	if !c.Audience.Contains(v.Audience) || len(c.Audience) != 1 {
		return nil, &Error{ReasonAudience}
	}
	if c.IssuedAt == nil || c.Expiry == nil || c.ID == "" {
		return nil, &Error{ReasonExpired}
	}
	iat, exp := c.IssuedAt.Time(), c.Expiry.Time()
	if exp.Sub(iat) > MaxTTL || now.Before(iat.Add(-time.Second)) || !now.Before(exp.Add(time.Second)) {
		return nil, &Error{ReasonExpired}
	}
	if c.Action == "" {
		return nil, &Error{ReasonNoAction}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]time.Time{}
	}
	if _, dup := v.seen[c.ID]; dup {
		return nil, &Error{ReasonReplay}
	}
	if len(v.seen) > 10000 {
		for id, e := range v.seen {
			if now.After(e.Add(time.Second)) {
				delete(v.seen, id)
			}
		}
	}
	v.seen[c.ID] = exp
	return &c, nil
}

type ctxKey struct{}

// FromContext returns the claims Middleware verified for this request.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Claims)
	return c, ok
}

// Middleware refuses every request without a valid credential (401, JSON body
// {"error": reason, "decision_id": "dec_…"}, the id also in Warden-Decision-Id) and
// passes the others with the claims in the context.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := v.Verify(r)
		if err != nil {
			var b [16]byte
			_, _ = rand.Read(b[:]) // crypto/rand: never fails (Go 1.24+)
			id := "dec_" + hex.EncodeToString(b[:])
			if v.OnRefuse != nil {
				v.OnRefuse(r, id, err.(*Error))
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Warden-Decision-Id", id)
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.(*Error).Reason, "decision_id": id})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, c)))
	})
}
