package intent

import (
	"encoding/base64"
	"testing"
)

var seedPayload = `{"act":"purchase_order.create","aud":"spiffe://example.org/agent/vendor-portal","bdy":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU","cnf":{"x5t#S256":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"},"dlg":{"act":{"scope":["a","b"],"sub":"spiffe://example.org/user/alice"},"scope":["a"],"sub":"spiffe://example.org/agent/planner"},"exp":1767225630,"iat":1767225600,"iss":"spiffe://example.org/agent/procurement","jti":"AAAAAAAAAAAAAAAAAAAAAA","purpose":"restock \u001f \"x\"","res":"po/1","scope":["a"],"wf":"wf-1"}`

// FuzzDecodeClaims: the canonical claims parser never panics, and whatever it accepts
// re-encodes to exactly the same bytes (one encoding per intent).
func FuzzDecodeClaims(f *testing.F) {
	for _, s := range []string{
		seedPayload,
		`{"act":"a","act":"b"}`,
		`{"act":"a", "aud":"b"}`,
		`{"exp":1.5}`,
		`{"dlg":{"act":{"act":{}}}}`,
		`{"purpose":"\u00e9"}`,
		`{}`, `[]`, ``, `{"scope":["b","a"]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		var c Claims
		if err := decodeClaims(payload, &c); err != nil {
			if ReasonOf(err) != ReasonMalformed && ReasonOf(err) != ReasonDelegationInvalid {
				t.Fatalf("unexpected reason %q", ReasonOf(err))
			}
			return
		}
		if got := string(c.AppendCanonical(nil)); got != payload {
			t.Fatalf("accepted non-canonical payload:\n in  %q\n out %q", payload, got)
		}
	})
}

// FuzzParseHeader: the header parser never panics and accepts only {alg, typ} with an
// allowed alg.
func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		`{"alg":"EdDSA","typ":"intent+jwt"}`, `{"alg":"ES256","typ":"intent+jwt"}`,
		`{"alg":"none","typ":"intent+jwt"}`, `{"alg":"EdDSA","alg":"none","typ":"intent+jwt"}`,
		`{"alg":"EdDSA","crit":["x"],"typ":"intent+jwt"}`, `{"typ":"intent+jwt","alg":"EdDSA"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		alg, err := parseHeader(base64.RawURLEncoding.EncodeToString([]byte(h)))
		if err == nil && alg != AlgEdDSA && alg != AlgES256 {
			t.Fatalf("accepted alg %q", alg)
		}
	})
}
