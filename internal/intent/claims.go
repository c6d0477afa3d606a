package intent

import (
	"encoding/base64"
	"slices"
	"strconv"

	"github.com/warden-a2a/warden/internal/jcs"
)

// Claims is the payload of an intent (docs/intent-spec.md section "Claims"). Optional
// string claims are omitted from the payload when empty; an empty string in a payload
// is refused, so that every intent has exactly one canonical form.
type Claims struct {
	Issuer         string   // iss: SPIFFE ID of the sender, equal to its certificate's URI SAN
	Audience       string   // aud: SPIFFE ID of the receiving agent
	ID             string   // jti: 128-bit random, base64url without padding (22 chars)
	IssuedAt       int64    // iat: seconds since the Unix epoch
	Expiry         int64    // exp: seconds since the Unix epoch, iat < exp <= iat + MaxLifetime
	Workflow       string   // wf: workflow id (optional)
	Action         string   // act: action, e.g. purchase_order.create (required)
	Resource       string   // res: resource (optional)
	Purpose        string   // purpose: human-readable purpose (optional)
	Scope          []string // scope: sorted set of distinct non-empty strings (optional)
	BodyDigest     string   // bdy: base64url(SHA-256(HTTP body)), see BodyDigest
	CertThumbprint string   // cnf.x5t#S256: base64url(SHA-256(DER of the sender's certificate))
	Delegation     *Actor   // dlg: prior actors, RFC 8693 section 4.1 nested act shape (optional)
	Approval       string   // apr: approval id (optional)
}

// Actor is one prior hop of a delegation chain: the actor Subject acted with Scope, and
// was itself acting for Actor (the hop before it), as in RFC 8693 section 4.1.
type Actor struct {
	Subject string   // sub: SPIFFE ID
	Scope   []string // scope: sorted set, a superset of the scope of the hop after it
	Actor   *Actor   // act: the previous hop, or nil for the original actor
}

// Depth returns the number of hops in the chain starting at a.
func (a *Actor) Depth() int {
	n := 0
	for ; a != nil; a = a.Actor {
		n++
	}
	return n
}

// maxActorNesting bounds recursion when reading dlg, independent of the configured
// maximum depth, so that a hostile payload cannot exhaust the stack.
const maxActorNesting = 16

// AppendCanonical appends the RFC 8785 canonical JSON of c. Members appear in UTF-16
// order of their names (all ASCII, so byte order): act apr aud bdy cnf dlg exp iat iss
// jti purpose res scope wf.
func (c *Claims) AppendCanonical(dst []byte) []byte {
	dst = append(dst, `{"act":`...)
	dst = jcs.AppendString(dst, c.Action)
	if c.Approval != "" {
		dst = append(dst, `,"apr":`...)
		dst = jcs.AppendString(dst, c.Approval)
	}
	dst = append(dst, `,"aud":`...)
	dst = jcs.AppendString(dst, c.Audience)
	dst = append(dst, `,"bdy":`...)
	dst = jcs.AppendString(dst, c.BodyDigest)
	dst = append(dst, `,"cnf":{"x5t#S256":`...)
	dst = jcs.AppendString(dst, c.CertThumbprint)
	dst = append(dst, '}')
	if c.Delegation != nil {
		dst = append(dst, `,"dlg":`...)
		dst = c.Delegation.appendCanonical(dst)
	}
	dst = append(dst, `,"exp":`...)
	dst = strconv.AppendInt(dst, c.Expiry, 10)
	dst = append(dst, `,"iat":`...)
	dst = strconv.AppendInt(dst, c.IssuedAt, 10)
	dst = append(dst, `,"iss":`...)
	dst = jcs.AppendString(dst, c.Issuer)
	dst = append(dst, `,"jti":`...)
	dst = jcs.AppendString(dst, c.ID)
	if c.Purpose != "" {
		dst = append(dst, `,"purpose":`...)
		dst = jcs.AppendString(dst, c.Purpose)
	}
	if c.Resource != "" {
		dst = append(dst, `,"res":`...)
		dst = jcs.AppendString(dst, c.Resource)
	}
	if len(c.Scope) > 0 {
		dst = append(dst, `,"scope":`...)
		dst = appendStrings(dst, c.Scope)
	}
	if c.Workflow != "" {
		dst = append(dst, `,"wf":`...)
		dst = jcs.AppendString(dst, c.Workflow)
	}
	return append(dst, '}')
}

// appendCanonical: members act scope sub.
func (a *Actor) appendCanonical(dst []byte) []byte {
	dst = append(dst, '{')
	if a.Actor != nil {
		dst = append(dst, `"act":`...)
		dst = a.Actor.appendCanonical(dst)
		dst = append(dst, ',')
	}
	dst = append(dst, `"scope":`...)
	dst = appendStrings(dst, a.Scope)
	dst = append(dst, `,"sub":`...)
	dst = jcs.AppendString(dst, a.Subject)
	return append(dst, '}')
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jcs.AppendString(dst, s)
	}
	return append(dst, ']')
}

// NormalizeScope returns s sorted with duplicates removed, the form Scope must have.
func NormalizeScope(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// checkShape enforces what the payload decoder enforces, for Sign: required claims
// present, optional ones non-empty when present, scope a sorted set.
func (c *Claims) checkShape() error {
	switch {
	case c.Issuer == "", c.Audience == "", c.Action == "":
		return refuse(ReasonMalformed, "iss, aud and act are required")
	case !isB64Len(c.ID, 22):
		return refuse(ReasonMalformed, "jti must be 16 bytes base64url")
	case !isB64Len(c.BodyDigest, 43), !isB64Len(c.CertThumbprint, 43):
		return refuse(ReasonMalformed, "bdy and cnf.x5t#S256 must be SHA-256 base64url")
	case c.IssuedAt < 0 || c.IssuedAt > maxNumericDate || c.Expiry < 0 || c.Expiry > maxNumericDate:
		return refuse(ReasonMalformed, "iat/exp out of range")
	case c.Expiry <= c.IssuedAt:
		return refuse(ReasonMalformed, "exp must be after iat")
	}
	if !isSet(c.Scope) {
		return refuse(ReasonMalformed, "scope must be sorted, distinct, non-empty strings")
	}
	for a := c.Delegation; a != nil; a = a.Actor {
		if a.Subject == "" || len(a.Scope) == 0 || !isSet(a.Scope) {
			return refuse(ReasonDelegationInvalid, "each dlg hop needs sub and a sorted scope")
		}
	}
	return nil
}

// maxNumericDate bounds iat and exp (year 2286), keeping them exact in a double and
// free of overflow in arithmetic.
const maxNumericDate = 9999999999

func isSet(ss []string) bool {
	for i, s := range ss {
		if s == "" || (i > 0 && ss[i-1] >= s) {
			return false
		}
	}
	return true
}

// isB64Len reports whether s is unpadded base64url of exactly n characters that
// decodes strictly (no stray bits).
func isB64Len(s string, n int) bool {
	if len(s) != n {
		return false
	}
	var buf [33]byte
	m, err := base64.RawURLEncoding.Strict().Decode(buf[:], []byte(s))
	return err == nil && m == n*6/8
}
