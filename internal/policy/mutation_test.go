package policy

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"
)

// TestEveryDefaultPolicyFlipsACase removes each policy of the default bundle in
// turn and requires that at least one shipped test case then fails: no policy is
// dead weight, and every policy has a test that flips its decision.
func TestEveryDefaultPolicyFlipsACase(t *testing.T) {
	e, err := Load("../../policies", Options{})
	if err != nil {
		t.Fatal(err)
	}
	fsys := os.DirFS("../../policies")
	for id := range e.meta {
		t.Run(string(id), func(t *testing.T) {
			m := *e // shallow copy; only byAction is replaced
			m.limits = newLimiter(e.limits.limits)
			m.byAction = map[string]policySlice{}
			for a, ps := range e.byAction {
				m.byAction[a] = ps.without(map[string]bool{string(id): true})
			}
			rep, err := RunTests(&m, fsys, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Failed == 0 {
				t.Errorf("removing policy %s changes no test decision", id)
			}
		})
	}
}

func TestSignedBundleRoundTripAndTamper(t *testing.T) {
	e, err := Load("../../policies", Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	b, err := WriteBundle(e, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadBundle(b, pub, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision() != e.Revision() {
		t.Fatalf("revision %s != %s", got.Revision(), e.Revision())
	}
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := ReadBundle(b, otherPub, Options{}); !errors.Is(err, ErrBundleSignature) {
		t.Errorf("wrong key: %v", err)
	}
	var sb signedBundle
	_ = json.Unmarshal(b, &sb)
	sb.Payload = sb.Payload[:len(sb.Payload)-8] + "AAAAAAA="
	tampered, _ := json.Marshal(sb)
	if _, err := ReadBundle(tampered, pub, Options{}); err == nil {
		t.Errorf("tampered payload accepted")
	}
	// A correctly signed bundle whose claimed revision lies is refused.
	var body BundleBody
	_ = json.Unmarshal([]byte(mustB64(t, sbOf(t, b).Payload)), &body)
	body.Revision = strings.Repeat("0", 64)
	payload, _ := json.Marshal(body)
	lie := signedBundle{Payload: b64(payload), Alg: "Ed25519", KeyID: KeyID(pub), Signature: b64(ed25519.Sign(key, payload))}
	lb, _ := json.Marshal(lie)
	if _, err := ReadBundle(lb, pub, Options{}); !errors.Is(err, ErrBundleRevision) {
		t.Errorf("lying revision: %v", err)
	}
}

func TestDiffReportsDrift(t *testing.T) {
	a, err := Load("../../policies", Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := *a
	b.meta = map[cedar.PolicyID]*policyMeta{}
	for id, m := range a.meta {
		switch id {
		case "edge-permits":
			continue // removed
		case "payments-permits":
			c := *m
			c.Text += " // changed"
			m = &c
		}
		b.meta[id] = m
	}
	b.meta[cedar.PolicyID("new-guard")] = &policyMeta{ID: "new-guard", Text: "forbid(principal, action, resource);"}
	b.exceptions = a.exceptions[:1]
	got := Diff(a, &b)
	var s []string
	for _, d := range got {
		s = append(s, d.String())
	}
	want := []string{"- exception EXC-2026-041 (removed)", "+ policy new-guard (added)", "- policy edge-permits (removed)", "~ policy payments-permits (changed)"}
	for _, w := range want {
		if !strings.Contains(strings.Join(s, "\n"), w) {
			t.Errorf("diff %q lacks %q", s, w)
		}
	}
	if d := Diff(a, a); len(d) != 0 {
		t.Errorf("self diff: %v", d)
	}
}

func TestParseExceptionRejectsDefects(t *testing.T) {
	good := `id: EXC-1
owner: a@example
reason: r
risk_acceptance: ra
scope: {principal: "spiffe://supplychain.example/agent/x", action: vendor_record.update, resource: VendorRecord}
expires: 2027-01-01T00:00:00Z
`
	if _, err := ParseException([]byte(good)); err != nil {
		t.Fatalf("good exception: %v", err)
	}
	tests := map[string]string{
		"missing-owner":         strings.Replace(good, "owner: a@example\n", "", 1),
		"missing-risk":          strings.Replace(good, "risk_acceptance: ra\n", "", 1),
		"missing-expiry":        strings.Replace(good, "expires: 2027-01-01T00:00:00Z\n", "", 1),
		"unknown-field":         good + "approved_by: bob\n",
		"principal-not-spiffe":  strings.Replace(good, `"spiffe://supplychain.example/agent/x"`, "procurement", 1),
		"principal-injection":   strings.Replace(good, `"spiffe://supplychain.example/agent/x"`, `'spiffe://x" || true || "'`, 1),
		"action-injection":      strings.Replace(good, "vendor_record.update", `"a\" || true"`, 1),
		"resource-injection":    strings.Replace(good, "resource: VendorRecord", `resource: 'VendorRecord::"x" || true'`, 1),
		"resource-lowercase":    strings.Replace(good, "resource: VendorRecord", "resource: vendor", 1),
		"bad-id":                strings.Replace(good, "id: EXC-1", "id: \"../etc\"", 1),
		"not-yaml":              "{{{{",
		"expires-not-a-time":    strings.Replace(good, "2027-01-01T00:00:00Z", "next tuesday", 1),
		"waives-not-an-id":      good + "waives: [\"a b\"]\n",
		"empty-document":        "",
		"scope-is-not-a-record": strings.Replace(good, "scope: {principal: \"spiffe://supplychain.example/agent/x\", action: vendor_record.update, resource: VendorRecord}", "scope: everything", 1),
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseException([]byte(doc)); !errors.Is(err, ErrInvalidException) {
				t.Errorf("ParseException accepted or wrong error: %v", err)
			}
		})
	}
}

func TestExceptionCannotWaiveUnknownPolicy(t *testing.T) {
	src := source{}
	for _, n := range []string{SchemaFile, "roles.cedar", "guards.cedar", "partners.cedar"} {
		b, err := os.ReadFile("../../policies/" + n)
		if err != nil {
			t.Fatal(err)
		}
		src[n] = b
	}
	src["exceptions/x.yaml"] = []byte(`id: EXC-9
owner: a@example
reason: r
risk_acceptance: ra
scope: {principal: "spiffe://supplychain.example/agent/x", action: vendor_record.update, resource: VendorRecord}
waives: [payments-permits, no-such-policy]
expires: 2027-01-01T00:00:00Z
`)
	src["exceptions/y.yaml"] = []byte(`id: EXC-10
owner: a@example
reason: r
risk_acceptance: ra
scope: {principal: "spiffe://supplychain.example/agent/x", action: vendor_record.obliterate, resource: VendorRecord}
expires: 2027-01-01T00:00:00Z
`)
	_, probs := compile(src)
	var all []string
	for _, p := range probs {
		all = append(all, p.String())
	}
	joined := strings.Join(all, "\n")
	for _, want := range []string{`waives "payments-permits"`, `waives "no-such-policy"`, "exceptions/y.yaml:5:"} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems %q lack %q", joined, want)
		}
	}
}

func FuzzParseException(f *testing.F) {
	for _, n := range []string{"EXC-2026-041.yaml", "EXC-2026-007.yaml"} {
		b, err := os.ReadFile("../../policies/exceptions/" + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("id: x\nscope: {resource: 'A::\"\\\"'}\n"))
	f.Add([]byte("- [}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ParseException(b)
		if err != nil {
			return
		}
		// Whatever parses must compile to exactly one Cedar permit with the exception's id.
		p, err := x.compile()
		if err != nil {
			t.Fatalf("accepted exception does not compile: %v", err)
		}
		if got := p.Annotations()["id"]; string(got) != "exception:"+x.ID {
			t.Fatalf("compiled id %q for %q", got, x.ID)
		}
	})
}

func FuzzParseTestFile(f *testing.F) {
	for _, n := range []string{"agents.yaml", "roles.yaml", "context.yaml"} {
		b, err := os.ReadFile("../../policies/tests/" + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseTestFile(b)
	})
}

func FuzzParseRateLimits(f *testing.F) {
	b, err := os.ReadFile("../../policies/ratelimits.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("limits: [{id: a, agent: '*', action: '*', rate: 1e308/s, burst: 1}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, err := ParseRateLimits(b)
		if err != nil {
			return
		}
		for _, l := range ls {
			if l.PerSecond <= 0 || l.Burst < 1 {
				t.Fatalf("accepted limit %+v", l)
			}
		}
	})
}

// FuzzReadBundle: a bundle file arrives from the network or disk; whatever its
// bytes, reading it must not panic, and only a correctly signed one may load.
func FuzzReadBundle(f *testing.F) {
	e, err := Load("../../policies", Options{})
	if err != nil {
		f.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	good, err := WriteBundle(e, key, time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"payload":"e30=","alg":"Ed25519","signature":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ReadBundle(b, pub, Options{})
		if err == nil && got.Revision() != e.Revision() {
			t.Fatalf("a bundle not signed by us loaded: revision %s", got.Revision())
		}
		_, _ = ReadBundleUnverified(b)
	})
}
