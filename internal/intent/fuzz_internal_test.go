package intent

import (
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"github.com/warden-a2a/warden/internal/jcs"
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
		// And it is what the independent RFC 8785 canonicalizer produces.
		if canon, err := jcs.Transform([]byte(payload)); err != nil || string(canon) != payload {
			t.Fatalf("accepted payload that jcs calls non-canonical (%v):\n in  %q\n jcs %q", err, payload, canon)
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

func TestAppendCanonicalIsRFC8785(t *testing.T) {
	c := Claims{
		Issuer: "spiffe://example.org/agent/a", Audience: "spiffe://example.org/agent/b",
		ID: "AAAAAAAAAAAAAAAAAAAAAA", IssuedAt: 1, Expiry: 2, Action: "x\"y\\z",
		Purpose: "caf\u00e9 \U0001F600 \u2028 </script> \t\n\x01\x7f", Scope: []string{"a", "\u00e9", "\U0001F600"},
		BodyDigest: "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU", CertThumbprint: "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU",
		Delegation: &Actor{Subject: "spiffe://example.org/agent/c", Scope: []string{"a", "b"}, Actor: &Actor{Subject: "spiffe://example.org/agent/d", Scope: []string{"a", "b", "c"}}},
		Approval:   "apr-1", Resource: "r", Workflow: "w",
	}
	out := c.AppendCanonical(nil)
	canon, err := jcs.Transform(out)
	if err != nil || string(canon) != string(out) {
		t.Fatalf("AppendCanonical is not RFC 8785 (%v):\n ours %s\n jcs  %s", err, out, canon)
	}
	var back Claims
	if err := decodeClaims(string(out), &back); err != nil {
		t.Fatal(err)
	}
}

func TestReasonOf(t *testing.T) {
	if ReasonOf(nil) != "" {
		t.Fatal("nil error has a reason")
	}
	if ReasonOf(errors.New("x")) != ReasonMalformed {
		t.Fatal("an error without a reason must fail closed as malformed")
	}
	if !errors.Is(fmt.Errorf("wrap: %w", refuse(ReasonReplay, "d")), &Error{Reason: ReasonReplay}) {
		t.Fatal("errors.Is by reason")
	}
}
