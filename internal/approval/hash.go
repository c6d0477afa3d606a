package approval

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"

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
	raw, _ := json.Marshal(map[string]any{"act": b.Action, "amount": b.Amount, "aud": b.Audience, "cur": b.Currency,
		"iss": b.Requester, "res": b.Resource, "wf": b.Workflow})
	canon, err := jcs.Transform(raw)
	if err != nil { // invalid UTF-8 in a field: hash the encoder's output (U+FFFD replaced)
		canon = raw
	}
	sum := sha256.Sum256(canon)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// validHash reports whether s is the form IntentHash returns.
func validHash(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == sha256.Size
}
