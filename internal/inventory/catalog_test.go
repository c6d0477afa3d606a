package inventory_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/inventory"
)

func TestParseKeepsLines(t *testing.T) {
	c := mustParse(t, `version: 1
trust_domain: example.test
agents:
  - name: a
    owner: o
    environment: cloud
    zone: z
    class: advisory
interactions:
  - from: a
    to: a
    action: x.read
    classification: read-only
dependencies:
  - name: q
    kind: queue
    used_by:
      - a
      - {agent: a, access: read}
`)
	if c.Agents[0].Line != 4 || c.Agents[0].Lines["class"] != 8 {
		t.Errorf("agent line %d, class line %d", c.Agents[0].Line, c.Agents[0].Lines["class"])
	}
	if c.Agents[0].Identity != "spiffe://example.test/agent/a" {
		t.Errorf("derived identity %q", c.Agents[0].Identity)
	}
	if in := c.Interactions[0]; in.Line != 10 || in.Lines["classification"] != 13 {
		t.Errorf("interaction line %d, classification line %d", in.Line, in.Lines["classification"])
	}
	d := c.Dependencies[0]
	if d.Line != 15 || d.UsedBy[0].Line != 18 || d.UsedBy[1].Line != 19 {
		t.Errorf("dependency lines %d %d %d", d.Line, d.UsedBy[0].Line, d.UsedBy[1].Line)
	}
	if d.UsedBy[0].Access != inventory.AccessReadWrite || d.UsedBy[1].Access != inventory.AccessRead {
		t.Errorf("access %q %q", d.UsedBy[0].Access, d.UsedBy[1].Access)
	}
}

// Parse errors carry the file and the line of the offending key or value.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, text string
		line       int
		contains   string
	}{
		{"misspelt-key", "agents:\n  - name: a\n    enviroment: cloud\n", 3, `unknown key "enviroment"`},
		{"unknown-top-level-key", "version: 1\nagent: []\n", 2, `unknown key "agent"`},
		{"agents-not-a-list", "agents: {a: 1}\n", 1, "agents must be a list"},
		{"name-is-a-mapping", "agents:\n  - name: {x: 1}\n", 2, "expected a string"},
		{"duplicate-key", "agents:\n  - name: a\n    name: b\n", 3, `duplicate key "name"`},
		{"syntax-error", "agents:\n  - name: a\n   bad: [\n", 0, "did not find expected"},
		{"version-not-a-number", "version: one\n", 1, ""},
		{"not-a-mapping", "- a\n- b\n", 1, "must be a mapping"},
		{"alias-instead-of-agent", "x: &a {name: a}\nagents: [*a]\n", 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inventory.Parse("cat.yaml", []byte(tc.text))
			var pe *inventory.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("want *ParseError, got %v", err)
			}
			if pe.File != "cat.yaml" || (tc.line != 0 && pe.Line != tc.line) {
				t.Errorf("%s: want line %d", pe, tc.line)
			}
			if !strings.Contains(pe.Error(), tc.contains) {
				t.Errorf("%q does not contain %q", pe.Error(), tc.contains)
			}
			if !strings.HasPrefix(pe.Error(), "cat.yaml:") {
				t.Errorf("%q does not start with the file name", pe.Error())
			}
		})
	}
}

func TestParseRejectsEmptyAndHuge(t *testing.T) {
	if _, err := inventory.Parse("e.yaml", nil); err == nil {
		t.Error("empty catalog accepted")
	}
	big := make([]byte, inventory.MaxCatalogBytes+1)
	if _, err := inventory.Parse("big.yaml", big); !errors.Is(err, inventory.ErrTooLarge) || !strings.Contains(err.Error(), "64 MiB") {
		t.Errorf("oversized catalog: %v", err)
	}
}

func TestLoadShippedCatalog(t *testing.T) {
	c, err := inventory.Load(shipped)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Agents) != 9 {
		t.Fatalf("%d agents", len(c.Agents))
	}
	p, ok := c.Agent("partner-carrier")
	if !ok || p.Identity != "spiffe://partner.example/agent/partner-carrier" {
		t.Fatalf("partner identity %+v", p)
	}
	if _, err := inventory.Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestResourceTypeOf(t *testing.T) {
	for in, want := range map[string]string{
		"purchase_order.create": "PurchaseOrder",
		"payment.release":       "Payment",
		"customs_form.read":     "CustomsForm",
		"weird__name.x":         "WeirdName",
		"":                      "",
	} {
		if got := inventory.ResourceTypeOf(in); got != want {
			t.Errorf("ResourceTypeOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParse: the parser never panics, and whatever it accepts can be checked and
// analysed without panicking either.
func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile(shipped)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(base))
	f.Add([]byte("agents:\n  - name: a\n    enviroment: cloud\n"))
	f.Add([]byte("x: &a [*a, *a]\nagents: *a\n"))
	f.Add([]byte("interactions:\n  - {from: a, to: a, action: x.y, via: [q]}\ndependencies:\n  - {name: q, kind: secret, used_by: [a, {agent: a}]}\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := inventory.Parse("fuzz.yaml", data)
		if err != nil {
			var pe *inventory.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		inventory.Check(c, nil)
		r := inventory.Analyze(c, inventory.Options{})
		var sb strings.Builder
		for _, format := range inventory.Formats {
			if err := r.Write(&sb, format); err != nil {
				t.Fatal(err)
			}
		}
		x := inventory.NewIndex(c)
		for _, in := range c.Interactions {
			if in.From != "" && in.To != "" {
				if _, ok := c.Agent(in.From); ok {
					if _, ok := c.Agent(in.To); ok && !x.IsDeclared(in.From, in.To, in.Action) {
						t.Fatalf("declared interaction %s->%s %s not found", in.From, in.To, in.Action)
					}
				}
			}
		}
	})
}
