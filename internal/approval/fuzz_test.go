package approval_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/intent"
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
	f.Add([]byte(`{"requester":"spiffe://supplychain.example/agent/payments","action":"payment.release","resource":"Invoice/INV-7","amount":25000,"currency":"EUR","intent_hash":"ks2kTWnYz_Es0lRqmf3mPlEotjl03kBXdq0ODlZivtg","required":2,"policy_id":"payment-release-needs-two-approvals"}`))
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

// FuzzIntentHashPayload: hashing arbitrary payload bytes never panics; accepted input is
// strict JSON.
func FuzzIntentHashPayload(f *testing.F) {
	f.Add(baseClaims().AppendCanonical(nil))
	f.Add([]byte(`{"act":"a","act":"b"}`))
	f.Add([]byte(`{"jti":1,"iat":2,"exp":3,"apr":"x","cnf":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := approval.IntentHashPayload(b)
		if err == nil && len(h) != 43 {
			t.Fatalf("hash %q", h)
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

// FuzzIntentHashClaims: the direct writer behind IntentHash agrees with the generic
// definition (IntentHashPayload of the canonical payload) for any claim strings.
func FuzzIntentHashClaims(f *testing.F) {
	f.Add("payment.release", "Invoice/INV-7", "pay", "apr_1", "spiffe://td/agent/a", "wf")
	f.Add(`a"b`, `,"exp":1`, "\u2028", "", `x\y`, "")
	f.Fuzz(func(t *testing.T, act, res, purpose, apr, sub, wf string) {
		if act == "" || sub == "" {
			return
		}
		for _, s := range []string{act, res, purpose, apr, sub, wf} {
			if !utf8.ValidString(s) { // each on its own: two invalid halves can concatenate to valid UTF-8
				return
			}
		}
		c := baseClaims()
		c.Action, c.Resource, c.Purpose, c.Approval, c.Workflow = act, res, purpose, apr, wf
		c.Delegation = &intent.Actor{Subject: sub, Scope: []string{"payments"}}
		want, err := approval.IntentHashPayload(c.AppendCanonical(nil))
		if err != nil {
			t.Fatalf("canonical payload refused: %v", err)
		}
		if got := approval.IntentHash(c); got != want {
			t.Fatalf("IntentHash %s, definition %s", got, want)
		}
	})
}
