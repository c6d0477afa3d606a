package approval_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/jcs"
)

// decodeStrict decodes like the server's readJSON: unknown fields and trailing data refused.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return json.Unmarshal([]byte("x"), v)
	}
	return nil
}

// FuzzApprovalRequest: the filing parser never panics, and what it accepts is within the
// documented bounds.
func FuzzApprovalRequest(f *testing.F) {
	f.Add([]byte(`{"requester":"spiffe://supplychain.example/agent/payments","audience":"spiffe://supplychain.example/agent/bank","action":"payment.release","resource":"Invoice/INV-7","amount":25000,"currency":"EUR","intent_hash":"FXzhEFIzMCyQCst6sb6EnW3GvUkJr6SwZYsmJBBrzXk","required":2,"policy_id":"payment-release-needs-two-approvals","workflow":"wf-1"}`))
	f.Add([]byte(`{"requester":"x","action":"","amount":-1,"required":0}`))
	f.Add([]byte(`{"requester":"spiffe://a/b","action":"a\u0000b","intent_hash":"","required":9,"ttl_s":999999}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req api.ApprovalRequest
		if decodeStrict(b, &req) != nil {
			return
		}
		if err := approval.ValidateRequest(&req); err != nil {
			if approval.ReasonOf(err) == "" {
				t.Fatalf("refusal without a reason code: %v", err)
			}
			return
		}
		if req.Required < 1 || req.Required > approval.MaxRequired || req.Amount < 0 || len(req.IntentHash) != 43 || req.Action == "" {
			t.Fatalf("accepted out of bounds: %+v", req)
		}
	})
}

// FuzzApprovalDecision: the decision parser and verifier never panic, and a random
// signature never verifies.
func FuzzApprovalDecision(f *testing.F) {
	priv, pub, _ := approval.GenerateKey()
	key, _ := approval.ParsePrivateKeyPEM(priv)
	pk, _ := approval.ParsePublicKeyPEM(pub)
	st := statement()
	sig, _ := approval.Sign(key, &st)
	good, _ := json.Marshal(api.ApprovalDecision{Statement: st, Signature: sig})
	f.Add(good)
	f.Add([]byte(`{"statement":{"v":1,"approval_id":"apr_1","approver":"alice","decision":"approve"},"sig":"AAAA"}`))
	f.Add([]byte(`{"statement":{"v":2,"approver":"ALICE","decision":"maybe","reason":"\u0007"},"sig":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d api.ApprovalDecision
		if decodeStrict(b, &d) != nil {
			return
		}
		if err := approval.ValidateStatement(&d.Statement); err != nil {
			if approval.ReasonOf(err) == "" {
				t.Fatalf("refusal without a reason code: %v", err)
			}
			return
		}
		if approval.Verify(pk, &d.Statement, d.Signature) && !bytes.Equal(d.Signature, sig) {
			// Ed25519 signatures are deterministic: only the seed's own signature over the
			// same statement may verify.
			s2 := statement()
			if d.Statement != s2 {
				t.Fatalf("forged signature verifies: %+v", d.Statement)
			}
		}
	})
}

// FuzzIntentHash: any field values hash to 43 characters, and distinct bindings of
// valid UTF-8 fields hash differently (no two field splits share a canonical form).
func FuzzIntentHash(f *testing.F) {
	f.Add("payment.release", "Invoice/INV-7", "wf", "spiffe://td/agent/a", int64(25000), "EUR")
	f.Add(`a"b`, `,"amount":1`, "\u2028", "", int64(-1), "\xff")
	f.Fuzz(func(t *testing.T, act, res, wf, iss string, amount int64, cur string) {
		b := approval.Binding{Requester: iss, Audience: "spiffe://td/agent/b", Action: act, Resource: res, Workflow: wf, Amount: amount, Currency: cur}
		h := approval.IntentHash(b)
		if len(h) != 43 {
			t.Fatalf("hash %q", h)
		}
		for _, s := range []string{act, res, wf, iss, cur} {
			if !utf8.ValidString(s) {
				return
			}
		}
		b2 := b
		b2.Action, b2.Resource = act+res, ""
		if res != "" && approval.IntentHash(b2) == h {
			t.Fatalf("moving res into act kept the hash: %+v", b)
		}
	})
}

// FuzzIntentHashDefinition: the direct writer behind IntentHash equals the definition,
// SHA-256 of jcs.Transform(json.Marshal(members)), for any field values.
func FuzzIntentHashDefinition(f *testing.F) {
	f.Add("payment.release", "Invoice/INV-7", "wf", "spiffe://td/agent/a", int64(25000), "EUR")
	f.Add("a<b>&\u2028\"\\", "\xff\xfe", "\x00\x1f", "\xed\xa0\x80", int64(1)<<60, "")
	f.Add("", "", "", "", int64(-9007199254740993), "\U0001F600")
	f.Fuzz(func(t *testing.T, act, res, wf, iss string, amount int64, cur string) {
		b := approval.Binding{Requester: iss, Audience: "spiffe://td/agent/b", Action: act, Resource: res, Workflow: wf, Amount: amount, Currency: cur}
		raw, err := json.Marshal(map[string]any{"act": act, "amount": amount, "aud": b.Audience, "cur": cur, "iss": iss, "res": res, "wf": wf})
		if err != nil {
			t.Fatal(err)
		}
		canon, err := jcs.Transform(raw)
		if err != nil {
			t.Fatalf("definition refused %q: %v", raw, err)
		}
		sum := sha256.Sum256(canon)
		if want := base64.RawURLEncoding.EncodeToString(sum[:]); approval.IntentHash(b) != want {
			t.Fatalf("IntentHash differs from the definition for %s", canon)
		}
	})
}

// FuzzParsePublicKeyPEM: approver key registration never panics.
func FuzzParsePublicKeyPEM(f *testing.F) {
	_, pub, _ := approval.GenerateKey()
	f.Add(pub)
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = approval.ParsePublicKeyPEM(b) })
}
