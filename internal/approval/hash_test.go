package approval_test

import (
	"testing"

	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/intent"
)

func baseClaims() *intent.Claims {
	return &intent.Claims{
		Issuer: "spiffe://supplychain.example/agent/payments", Audience: "spiffe://supplychain.example/agent/bank",
		ID: "AAAAAAAAAAAAAAAAAAAAAA", IssuedAt: 1764200000, Expiry: 1764200060, Workflow: "wf-1",
		Action: "payment.release", Resource: "Invoice/INV-7", Purpose: "pay invoice",
		Scope:      []string{"payments"},
		BodyDigest: "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU", CertThumbprint: "x4pqW7Yc3b2Yw4JH3s2ZNR3lY0vX9u1Qk0d7mA8cDeE",
	}
}

// TestIntentHashVector pins the definition: SHA-256 over the RFC 8785 form of
// {"act","aud","bdy","iss","purpose","res","scope","wf"} of baseClaims. The expected value
// was computed independently with: printf '%s' '<canonical JSON below>' | sha256sum |
// xxd -r -p | basenc --base64url | tr -d =
//
//	{"act":"payment.release","aud":"spiffe://supplychain.example/agent/bank","bdy":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU","iss":"spiffe://supplychain.example/agent/payments","purpose":"pay invoice","res":"Invoice/INV-7","scope":["payments"],"wf":"wf-1"}
func TestIntentHashVector(t *testing.T) {
	const want = "ks2kTWnYz_Es0lRqmf3mPlEotjl03kBXdq0ODlZivtg"
	if got := approval.IntentHash(baseClaims()); got != want {
		t.Errorf("IntentHash = %s, want %s", got, want)
	}
}

// TestIntentHashBinding: retries (new jti/iat/exp, apr set, rotated certificate) keep the
// hash; any change of what is approved changes it.
func TestIntentHashBinding(t *testing.T) {
	base := approval.IntentHash(baseClaims())
	same := map[string]func(c *intent.Claims){
		"new jti":         func(c *intent.Claims) { c.ID = "BBBBBBBBBBBBBBBBBBBBBB" },
		"new iat and exp": func(c *intent.Claims) { c.IssuedAt += 600; c.Expiry += 600 },
		"apr set":         func(c *intent.Claims) { c.Approval = "apr_x" },
		"rotated cert":    func(c *intent.Claims) { c.CertThumbprint = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
	}
	for name, mut := range same {
		c := baseClaims()
		mut(c)
		if got := approval.IntentHash(c); got != base {
			t.Errorf("%s changed the hash", name)
		}
	}
	differ := map[string]func(c *intent.Claims){
		"other body (amount)": func(c *intent.Claims) { c.BodyDigest = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
		"other resource":      func(c *intent.Claims) { c.Resource = "Invoice/INV-8" },
		"no resource":         func(c *intent.Claims) { c.Resource = "" },
		"other action":        func(c *intent.Claims) { c.Action = "payment.refund" },
		"other issuer":        func(c *intent.Claims) { c.Issuer = "spiffe://supplychain.example/agent/procurement" },
		"other audience":      func(c *intent.Claims) { c.Audience = "spiffe://supplychain.example/agent/erp" },
		"other workflow":      func(c *intent.Claims) { c.Workflow = "wf-2" },
		"wider scope":         func(c *intent.Claims) { c.Scope = []string{"payments", "refunds"} },
		"delegated": func(c *intent.Claims) {
			c.Delegation = &intent.Actor{Subject: "spiffe://supplychain.example/agent/x", Scope: []string{"payments"}}
		},
	}
	for name, mut := range differ {
		c := baseClaims()
		mut(c)
		if got := approval.IntentHash(c); got == base {
			t.Errorf("%s kept the hash", name)
		}
	}
}

// TestIntentHashPayloadMatchesClaims: the gate may hash the decoded payload bytes or the
// Claims; both give the same value.
func TestIntentHashPayloadMatchesClaims(t *testing.T) {
	variants := map[string]func(c *intent.Claims){
		"base": func(*intent.Claims) {},
		"minimal": func(c *intent.Claims) {
			c.Workflow, c.Resource, c.Purpose, c.Scope = "", "", "", nil
		},
		"apr and escapes": func(c *intent.Claims) {
			c.Approval, c.Purpose, c.Resource = `apr_"x",\`, "caf\u00e9 \"q\" <>&\u2028", `,"exp":1`
		},
		"delegated twice": func(c *intent.Claims) {
			c.Delegation = &intent.Actor{Subject: `spiffe://td/agent/a,"exp":`, Scope: []string{"a", "b"},
				Actor: &intent.Actor{Subject: "spiffe://td/agent/b", Scope: []string{"a", "b", "c"}}}
		},
	}
	for name, mut := range variants {
		c := baseClaims()
		mut(c)
		h, err := approval.IntentHashPayload(c.AppendCanonical(nil))
		if err != nil || h != approval.IntentHash(c) {
			t.Errorf("%s: payload hash %q, %v; claims hash %q", name, h, err, approval.IntentHash(c))
		}
	}
	for _, bad := range []string{``, `[]`, `null`, `{"act":"a","act":"b"}`, `{"act":"\xff"}`, `{} x`} {
		if _, err := approval.IntentHashPayload([]byte(bad)); err == nil {
			t.Errorf("IntentHashPayload(%q) accepted", bad)
		}
	}
}
