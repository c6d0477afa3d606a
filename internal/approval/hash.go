package approval

import (
	"crypto/sha256"
	"encoding/base64"
	"unicode/utf8"

	"github.com/warden-a2a/warden/internal/jcs"
)

// Binding is what an approval is for: who asks (the intent's iss), whom (aud), to do
// what (act) on what (res) in which workflow (wf), for how much (amount and currency from
// the call's metadata). It is deliberately NOT bound to one intent token or body: a
// retry carries a new jti, iat, exp, apr and body (the JSON-RPC id, message id and text
// change), and the certificate behind cnf rotates while a human decides. Two calls with
// the same Binding are the same request to the approvers; the approval is single-use
// (Service.Consume), so one approval releases one call.
type Binding struct {
	Requester string // intent iss: SPIFFE ID of the caller
	Audience  string // intent aud: SPIFFE ID of the protected agent (the gate's Self)
	Action    string // intent act
	Resource  string // intent res, may be empty
	Workflow  string // intent wf, may be empty
	Amount    int64  // metadata warden.amount (0 when absent)
	Currency  string // metadata warden.currency, ISO 4217 or empty
}

// IntentHash returns the approval binding hash, the ONE definition used by the gate
// (when it files a request and when it checks and consumes the approval on the retry)
// and by the control plane (which recomputes it from the filed fields):
//
//	base64url(SHA-256(JCS({"act","amount","aud","cur","iss","res","wf"})))
//
// without padding (43 characters), JCS being RFC 8785; every member is present, empty
// strings and amount 0 included. Integers are written as I-JSON numbers (RFC 7493
// §2.2): amounts beyond 2^53 lose precision in JCS's number form, which both sides
// compute the same way.
func IntentHash(b Binding) string {
	var buf [512]byte
	sum := sha256.Sum256(appendBinding(buf[:0], &b))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// appendBinding appends the RFC 8785 form of b directly: the member names are ASCII, so
// their order is fixed (act amount aud cur iss res wf); strings are written by
// jcs.AppendString after replacing each invalid UTF-8 byte with U+FFFD (what
// encoding/json does), the amount as an ECMAScript number (RFC 8785 §3.2.2.3). It equals
// jcs.Transform(json.Marshal(the members)), which FuzzIntentHashDefinition checks.
func appendBinding(dst []byte, b *Binding) []byte {
	dst = append(dst, `{"act":`...)
	dst = jcs.AppendString(dst, validUTF8(b.Action))
	dst = append(dst, `,"amount":`...)
	dst = jcs.AppendNumber(dst, float64(b.Amount))
	dst = append(dst, `,"aud":`...)
	dst = jcs.AppendString(dst, validUTF8(b.Audience))
	dst = append(dst, `,"cur":`...)
	dst = jcs.AppendString(dst, validUTF8(b.Currency))
	dst = append(dst, `,"iss":`...)
	dst = jcs.AppendString(dst, validUTF8(b.Requester))
	dst = append(dst, `,"res":`...)
	dst = jcs.AppendString(dst, validUTF8(b.Resource))
	dst = append(dst, `,"wf":`...)
	dst = jcs.AppendString(dst, validUTF8(b.Workflow))
	return append(dst, '}')
}

// validUTF8 replaces every byte of an invalid UTF-8 sequence with U+FFFD, as
// encoding/json does when it marshals a string.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, s[i:i+n]...)
		}
		i += n
	}
	return string(out)
}

// validHash reports whether s is the form IntentHash returns.
func validHash(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == sha256.Size
}
