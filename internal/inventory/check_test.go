package inventory_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/inventory"
)

// base is a clean catalog (no findings) that the cases append to. Line numbers in the
// cases are counted in the full text (base + case).
const base = `version: 1
trust_domain: example.test
agents:
  - {name: a, owner: o, environment: cloud, zone: z1, class: transactional}
  - {name: b, owner: o, environment: cloud, zone: z1, class: transactional}
`

// baseLines is the number of lines of base.
const baseLines = 5

func mustParse(t *testing.T, text string) *inventory.Catalog {
	t.Helper()
	c, err := inventory.Parse("cat.yaml", []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func codes(fs []inventory.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}

func TestCleanCatalogHasNoFindings(t *testing.T) {
	c := mustParse(t, base+`interactions:
  - {from: a, to: b, action: order.create, criticality: high, classification: transactional, requires: [attestation]}
  - {from: b, to: a, action: stock.read, criticality: low, classification: read-only}
dependencies:
  - {name: q, kind: queue, used_by: [{agent: a, access: write}, {agent: b, access: read}]}
`)
	if fs := inventory.Check(c, nil); len(fs) != 0 {
		t.Fatalf("want no findings, got %v", fs)
	}
}

// Each case triggers one check; the finding must carry the right code, severity and
// line (counted from the top of the file).
func TestCheckFlags(t *testing.T) {
	cases := []struct {
		name     string
		extra    string
		code     string
		severity string
		line     int // line relative to the end of base; 0 = do not check
		contains string
	}{
		{
			name: "agents-sharing-an-identity",
			extra: `  - {name: c, owner: o, environment: cloud, zone: z1, class: advisory, identity: "spiffe://example.test/agent/a"}
`,
			code: inventory.CodeSharedIdentity, severity: inventory.SevError, line: 1, contains: "spiffe://example.test/agent/a",
		},
		{
			name: "agents-sharing-a-secret",
			extra: `dependencies:
  - name: api-key
    kind: secret
    used_by: [a, b]
`,
			code: inventory.CodeSharedSecret, severity: inventory.SevError, line: 2, contains: "a, b",
		},
		{
			name: "legacy-integration-account-reused-by-several-tools",
			extra: `dependencies:
  - {name: erp, kind: integration_account, used_by: [a, b]}
`,
			code: inventory.CodeSharedSecret, severity: inventory.SevError, line: 2, contains: "integration account",
		},
		{
			name: "one-identity-several-responsibilities",
			extra: `  - name: c
    owner: o
    environment: cloud
    zone: z1
    class: transactional
    responsibilities: [purchasing, vendor_management]
interactions:
  - {from: c, to: a, action: purchase_order.create, responsibility: purchasing, criticality: high, classification: transactional, requires: [attestation]}
  - {from: c, to: b, action: vendor_record.update, responsibility: vendor_management, criticality: high, classification: regulated, requires: [attestation, approval]}
`,
			code: inventory.CodePrivilegeAggregation, severity: inventory.SevWarning, line: 6,
			contains: "purchasing, vendor_management",
		},
		{
			name: "undeclared-responsibilities-spanning-orders-and-payments",
			extra: `interactions:
  - {from: a, to: b, action: purchase_order.create, criticality: high, classification: transactional, requires: [attestation]}
  - {from: a, to: b, action: payment.release, criticality: high, classification: regulated, requires: [attestation, approval]}
`,
			code: inventory.CodePrivilegeAggregation, severity: inventory.SevWarning, line: -1,
			contains: "spiffe://example.test/agent/a-payment: [payment.release]; spiffe://example.test/agent/a-purchase-order: [purchase_order.create]",
		},
		{
			name: "dependency-nobody-uses",
			extra: `dependencies:
  - {name: orphan, kind: database}
`,
			code: inventory.CodeUnusedDependency, severity: inventory.SevWarning, line: 2, contains: "orphan",
		},
		{
			name: "agent-without-name",
			extra: `  - {owner: o, environment: cloud, zone: z1, class: advisory}
`,
			code: inventory.CodeMissingField, severity: inventory.SevError, line: 1, contains: "without a name",
		},
		{
			name: "interaction-declared-twice",
			extra: `interactions:
  - {from: a, to: b, action: x.read, criticality: low, classification: read-only}
  - {from: a, to: b, action: x.read, criticality: low, classification: read-only}
`,
			code: inventory.CodeDuplicate, severity: inventory.SevWarning, line: 3, contains: "first at line 7",
		},
		{
			name: "interaction-without-classification",
			extra: `interactions:
  - {from: a, to: b, action: order.read, criticality: low}
`,
			code: inventory.CodeMissingClassification, severity: inventory.SevError, line: 2,
		},
		{
			name: "transactional-without-approval-or-attestation",
			extra: `interactions:
  - {from: a, to: b, action: order.create, criticality: high, classification: transactional}
`,
			code: inventory.CodeNoRequirement, severity: inventory.SevError, line: 2, contains: "a -> b: order.create is allowed with neither",
		},
		{
			name: "regulated-with-approval-only-is-fine-but-unknown-requirement-is-not",
			extra: `interactions:
  - {from: a, to: b, action: payment.release, criticality: high, classification: regulated, requires: [approval, prayer]}
`,
			code: inventory.CodeBadValue, severity: inventory.SevError, line: 2, contains: "prayer",
		},
		{
			name: "legacy-endpoint-without-gate",
			extra: `  - {name: erp, owner: o, environment: legacy, zone: dc, class: transactional}
`,
			code: inventory.CodeLegacyWithoutGate, severity: inventory.SevError, line: 1, contains: "erp",
		},
		{
			name: "interaction-to-unknown-agent",
			extra: `interactions:
  - from: a
    to: ghost
    action: order.create
    criticality: high
    classification: advisory
`,
			code: inventory.CodeUnknownAgent, severity: inventory.SevError, line: 3, contains: "ghost",
		},
		{
			name: "via-unknown-dependency",
			extra: `interactions:
  - {from: a, to: b, action: x.read, criticality: low, classification: read-only, via: [nowhere]}
`,
			code: inventory.CodeUnknownDependency, severity: inventory.SevError, line: 2,
		},
		{
			name: "duplicate-agent",
			extra: `  - {name: a, owner: o, environment: cloud, zone: z1, class: advisory}
`,
			code: inventory.CodeDuplicate, severity: inventory.SevError, line: 1,
		},
		{
			name: "bad-classification-value",
			extra: `interactions:
  - {from: a, to: b, action: x.read, criticality: low, classification: secret-ish}
`,
			code: inventory.CodeBadValue, severity: inventory.SevError, line: 2, contains: "secret-ish",
		},
		{
			name: "identity-not-a-spiffe-id",
			extra: `  - {name: c, owner: o, environment: cloud, zone: z1, class: advisory, identity: "https://example.test/c"}
`,
			code: inventory.CodeBadValue, severity: inventory.SevError, line: 1, contains: "not a SPIFFE ID",
		},
		{
			name: "identity-outside-trust-domain",
			extra: `  - {name: c, owner: o, environment: partner, zone: p, class: advisory, trust_domain: partner.test, identity: "spiffe://example.test/agent/c"}
`,
			code: inventory.CodeBadValue, severity: inventory.SevError, line: 1, contains: "outside its trust domain",
		},
		{
			name: "bad-environment",
			extra: `  - {name: c, owner: o, environment: mainframe, zone: z1, class: advisory}
`,
			code: inventory.CodeBadValue, severity: inventory.SevError, line: 1, contains: "mainframe",
		},
		{
			name: "dependency-user-unknown",
			extra: `dependencies:
  - name: q
    kind: queue
    used_by:
      - {agent: nobody, access: read}
`,
			code: inventory.CodeUnknownAgent, severity: inventory.SevError, line: 5, contains: "nobody",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, base+tc.extra)
			fs := inventory.Check(c, nil)
			var got *inventory.Finding
			for i := range fs {
				if fs[i].Code == tc.code {
					got = &fs[i]
					break
				}
			}
			if got == nil {
				t.Fatalf("no %s finding; got %v", tc.code, fs)
			}
			if got.Severity != tc.severity {
				t.Errorf("severity %s, want %s", got.Severity, tc.severity)
			}
			if tc.line == -1 { // an agent of base
				tc.line = 4 - baseLines
			}
			if tc.line != 0 && got.Line != baseLines+tc.line {
				t.Errorf("line %d, want %d: %s", got.Line, baseLines+tc.line, got)
			}
			if got.File != "cat.yaml" {
				t.Errorf("file %q", got.File)
			}
			if !strings.Contains(got.String(), tc.contains) {
				t.Errorf("%q does not mention %q", got.String(), tc.contains)
			}
			if tc.severity == inventory.SevError && !inventory.HasErrors(fs) {
				t.Error("HasErrors is false")
			}
		})
	}
}

func TestPrivilegeAggregationSuggestsSplit(t *testing.T) {
	c := mustParse(t, base+`  - {name: c, owner: o, environment: cloud, zone: z1, class: transactional, responsibilities: [purchasing, vendor_management]}
interactions:
  - {from: c, to: a, action: purchase_order.create, responsibility: purchasing, criticality: high, classification: transactional, requires: [attestation]}
  - {from: c, to: b, action: vendor_record.update, responsibility: vendor_management, criticality: high, classification: regulated, requires: [attestation]}
`)
	for _, f := range inventory.Check(c, nil) {
		if f.Code != inventory.CodePrivilegeAggregation {
			continue
		}
		for _, want := range []string{
			"spiffe://example.test/agent/c-purchasing: [purchase_order.create]",
			"spiffe://example.test/agent/c-vendor_management: [vendor_record.update]",
		} {
			if !strings.Contains(f.Suggestion, want) {
				t.Errorf("suggestion %q lacks %q", f.Suggestion, want)
			}
		}
		return
	}
	t.Fatal("no privilege_aggregation finding")
}

// The requirement check asks the policies, not the catalog, when an engine is given:
// an engine that demands attestation satisfies it even though the catalog says nothing;
// one that allows everything bare does not, even though the catalog says requires.
func TestNoRequirementAsksTheEngine(t *testing.T) {
	demandsAttestation := inventory.AuthorizerFunc(func(r inventory.Request) (inventory.Decision, error) {
		return inventory.Decision{Allow: r.Attested, Policies: []string{"p-attest"}}, nil
	})
	allowsAll := inventory.AuthorizerFunc(func(r inventory.Request) (inventory.Decision, error) {
		return inventory.Decision{Allow: true, Policies: []string{"p-open"}}, nil
	})
	obligation := inventory.AuthorizerFunc(func(r inventory.Request) (inventory.Decision, error) {
		return inventory.Decision{Allow: true, Policies: []string{"p-approve"}, Obligations: []string{"approval"}}, nil
	})
	failing := inventory.AuthorizerFunc(func(r inventory.Request) (inventory.Decision, error) {
		return inventory.Decision{Allow: true}, errors.New("engine down")
	})
	denies := inventory.AuthorizerFunc(func(r inventory.Request) (inventory.Decision, error) {
		return inventory.Decision{Policies: []string{"forbid-all"}}, nil
	})
	bare := mustParse(t, base+`interactions:
  - {from: a, to: b, action: order.create, criticality: high, classification: transactional}
`)
	declared := mustParse(t, base+`interactions:
  - {from: a, to: b, action: order.create, criticality: high, classification: transactional, requires: [approval]}
`)
	cases := []struct {
		name string
		c    *inventory.Catalog
		az   inventory.Authorizer
		want string // expected code, "" for none
	}{
		{"engine-demands-attestation-catalog-silent", bare, demandsAttestation, ""},
		{"engine-allows-bare-catalog-requires", declared, allowsAll, inventory.CodeNoRequirement},
		{"engine-allows-with-approval-obligation", bare, obligation, ""},
		{"engine-error-fails-closed", bare, failing, inventory.CodePolicyError},
		{"engine-denies-declared", bare, denies, inventory.CodeDeclaredDenied},
		{"catalog-only-bare", bare, nil, inventory.CodeNoRequirement},
		{"catalog-only-declared", declared, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := codes(inventory.Check(tc.c, tc.az))
			if tc.want == "" && len(got) != 0 {
				t.Fatalf("want no findings, got %v", got)
			}
			if tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
				t.Fatalf("want [%s], got %v", tc.want, got)
			}
		})
	}
}

// shipped is the supply-chain catalog `warden demo` uses.
const shipped = "../../examples/supplychain/catalog.yaml"
