package approval

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/jcs"
)

// Claims left out of IntentHash: they change on every retry of the same intent (jti,
// iat, exp), name the approval itself (apr), or bind the call to the sender's current
// certificate, which rotates every few minutes while a human decides (cnf; iss, which
// the gate checks equals the certificate's SPIFFE ID, stays in the hash).
var hashExcluded = []string{"jti", "iat", "exp", "apr", "cnf"}

// IntentHash returns the approval binding of an intent:
//
//	base64url(SHA-256(JCS(claims without jti, iat, exp, apr, cnf)))
//
// without padding (43 characters), where JCS is RFC 8785 and the claims are the intent
// payload exactly as docs/intent-spec.md defines it (optional claims absent when empty).
// Two intents hash equal iff they agree on iss, aud, act, res, bdy, wf, purpose, scope
// and dlg. The gate computes it when it files a request and again on the retry.
func IntentHash(c *intent.Claims) string {
	sum := sha256.Sum256(appendHashed(make([]byte, 0, 512), c))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// appendHashed appends the RFC 8785 form of c's claims without jti, iat, exp, apr and
// cnf, members in the order of intent.Claims.AppendCanonical (act aud bdy dlg iss purpose
// res scope wf). TestIntentHashPayloadMatchesClaims checks it against the generic
// IntentHashPayload, which is the definition.
func appendHashed(dst []byte, c *intent.Claims) []byte {
	dst = append(dst, `{"act":`...)
	dst = jcs.AppendString(dst, c.Action)
	dst = append(dst, `,"aud":`...)
	dst = jcs.AppendString(dst, c.Audience)
	dst = append(dst, `,"bdy":`...)
	dst = jcs.AppendString(dst, c.BodyDigest)
	if c.Delegation != nil {
		// The canonical dlg member as the intent package writes it: between `,"dlg":` and
		// `,"exp":`, which cannot occur inside it (quotes in strings are escaped and actor
		// members are only act, scope and sub).
		full := (&intent.Claims{Delegation: c.Delegation}).AppendCanonical(nil)
		i := bytes.Index(full, []byte(`,"dlg":`))
		j := bytes.Index(full, []byte(`,"exp":`))
		dst = append(dst, full[i:j]...)
	}
	dst = append(dst, `,"iss":`...)
	dst = jcs.AppendString(dst, c.Issuer)
	if c.Purpose != "" {
		dst = append(dst, `,"purpose":`...)
		dst = jcs.AppendString(dst, c.Purpose)
	}
	if c.Resource != "" {
		dst = append(dst, `,"res":`...)
		dst = jcs.AppendString(dst, c.Resource)
	}
	if len(c.Scope) > 0 {
		dst = append(dst, `,"scope":[`...)
		for i, s := range c.Scope {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jcs.AppendString(dst, s)
		}
		dst = append(dst, ']')
	}
	if c.Workflow != "" {
		dst = append(dst, `,"wf":`...)
		dst = jcs.AppendString(dst, c.Workflow)
	}
	return append(dst, '}')
}

// IntentHashPayload is IntentHash of an intent payload given as JSON bytes (the decoded
// JWS payload). It fails on anything that is not a JSON object.
func IntentHashPayload(payload []byte) (string, error) { return intentHashOf(payload) }

func intentHashOf(payload []byte) (string, error) {
	// Strict first (duplicate member names, invalid UTF-8 and the like are refused), so
	// that the map below sees exactly the members the verifier saw.
	strict, err := jcs.Transform(payload)
	if err != nil {
		return "", fmt.Errorf("approval: intent payload: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(strict, &m); err != nil {
		return "", fmt.Errorf("approval: intent payload: %w", err)
	}
	if m == nil {
		return "", fmt.Errorf("approval: intent payload is not an object")
	}
	for _, k := range hashExcluded {
		delete(m, k)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("approval: intent payload: %w", err)
	}
	canon, err := jcs.Transform(b)
	if err != nil {
		return "", fmt.Errorf("approval: intent payload: %w", err)
	}
	sum := sha256.Sum256(canon)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// validHash reports whether s is the form IntentHash returns.
func validHash(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == sha256.Size
}
