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

func baseBinding() approval.Binding {
	return approval.Binding{Requester: "spiffe://supplychain.example/agent/payments", Audience: "spiffe://supplychain.example/agent/bank",
		Action: "payment.release", Resource: "Invoice/INV-7", Workflow: "wf-1", Amount: 25000, Currency: "EUR"}
}

// TestIntentHashVector pins the definition: SHA-256 over the RFC 8785 form of
// {"act","amount","aud","cur","iss","res","wf"}. The expected value was computed
// independently with: printf '%s' '<canonical JSON below>' | sha256sum | xxd -r -p |
// basenc --base64url | tr -d =
//
//	{"act":"payment.release","amount":25000,"aud":"spiffe://supplychain.example/agent/bank","cur":"EUR","iss":"spiffe://supplychain.example/agent/payments","res":"Invoice/INV-7","wf":"wf-1"}
func TestIntentHashVector(t *testing.T) {
	const want = "FXzhEFIzMCyQCst6sb6EnW3GvUkJr6SwZYsmJBBrzXk"
	if got := approval.IntentHash(baseBinding()); got != want {
		t.Errorf("IntentHash = %s, want %s", got, want)
	}
}

// TestIntentHashBinding: every field of what is approved changes the hash; the intent's
// per-call parts (jti, iat, exp, apr, cnf, bdy) are not in it, so a retry hashes equal.
func TestIntentHashBinding(t *testing.T) {
	base := approval.IntentHash(baseBinding())
	differ := map[string]func(b *approval.Binding){
		"other amount":    func(b *approval.Binding) { b.Amount = 25001 },
		"other currency":  func(b *approval.Binding) { b.Currency = "USD" },
		"no currency":     func(b *approval.Binding) { b.Currency = "" },
		"other resource":  func(b *approval.Binding) { b.Resource = "Invoice/INV-8" },
		"no resource":     func(b *approval.Binding) { b.Resource = "" },
		"other action":    func(b *approval.Binding) { b.Action = "payment.refund" },
		"other requester": func(b *approval.Binding) { b.Requester = "spiffe://supplychain.example/agent/procurement" },
		"other audience":  func(b *approval.Binding) { b.Audience = "spiffe://supplychain.example/agent/erp" },
		"other workflow":  func(b *approval.Binding) { b.Workflow = "wf-2" },
		// Field boundaries are JSON members, so moving text between fields changes it.
		"shifted text": func(b *approval.Binding) { b.Action, b.Resource = "payment.releaseInvoice/", "INV-7" },
	}
	for name, mut := range differ {
		b := baseBinding()
		mut(&b)
		if got := approval.IntentHash(b); got == base {
			t.Errorf("%s kept the hash", name)
		}
	}
	// A retry: a new intent for the same call (new jti, iat, exp, body digest, apr set).
	first, retry := baseClaims(), baseClaims()
	retry.ID, retry.IssuedAt, retry.Expiry, retry.Approval = "BBBBBBBBBBBBBBBBBBBBBB", first.IssuedAt+600, first.Expiry+600, "apr_x"
	retry.BodyDigest = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	of := func(c *intent.Claims) string {
		return approval.IntentHash(approval.Binding{Requester: c.Issuer, Audience: c.Audience, Action: c.Action,
			Resource: c.Resource, Workflow: c.Workflow, Amount: 25000, Currency: "EUR"})
	}
	if of(first) != of(retry) {
		t.Error("a retry of the same call hashes differently")
	}
}

// TestRequestBindingRoundTrip: a filed request's Binding hashes to its intent hash.
func TestRequestBindingRoundTrip(t *testing.T) {
	r := sampleRequest("apr_1")
	if got := approval.IntentHash(r.Binding()); got != r.IntentHash {
		t.Errorf("IntentHash(r.Binding()) = %s, want %s", got, r.IntentHash)
	}
}
