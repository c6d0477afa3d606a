package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	shippedCatalog = "../../examples/supplychain/catalog.yaml"
	defaultPolicy  = "../../policies"
)

func TestInventoryCheckExitCodes(t *testing.T) {
	out, code := runCLI(t, "inventory", "check", shippedCatalog)
	if code != 1 || !strings.Contains(out, shippedCatalog+":243: error shared_secret") || !strings.HasSuffix(out, "2 errors, 1 warning\n") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	clean := filepath.Join(t.TempDir(), "clean.yaml")
	if err := os.WriteFile(clean, []byte(`trust_domain: example.test
agents:
  - {name: a, owner: o, environment: cloud, zone: z, class: advisory}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runCLI(t, "inventory", "check", clean); code != 0 {
		t.Fatalf("clean catalog: exit %d:\n%s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("agents:\n  - name: a\n    zome: z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runCLI(t, "inventory", "check", bad); code != 1 || !strings.Contains(out, bad+":3: unknown key \"zome\"") {
		t.Fatalf("misspelt key: exit %d:\n%s", code, out)
	}
}

func TestInventoryReportFormats(t *testing.T) {
	for format, want := range map[string]string{
		"text": "Warden inventory report",
		"json": `"blast_radius"`,
		"dot":  "digraph inventory",
		"svg":  "<svg xmlns",
	} {
		out, code := runCLI(t, "inventory", "report", shippedCatalog, "--format", format)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("%s: exit %d, output starts %.80q", format, code, out)
		}
	}
	if _, code := runCLI(t, "inventory", "report", shippedCatalog, "--format", "pdf"); code != 2 {
		t.Errorf("unknown format: exit %d, want 2", code)
	}
	out, code := runCLI(t, "inventory", "report", shippedCatalog, "--policies", defaultPolicy)
	if code != 0 || !strings.Contains(out, "decisions from: warden policy bundle") || !strings.Contains(out, "procurement may forecast.publish") {
		t.Errorf("--policies: exit %d:\n%s", code, out)
	}
	if _, code := runCLI(t, "inventory", "report", shippedCatalog, "--policies", t.TempDir()); code != 1 {
		t.Errorf("empty policy directory: exit %d, want 1", code)
	}
	svg := filepath.Join(t.TempDir(), "inv.svg")
	if _, code := runCLI(t, "inventory", "report", shippedCatalog, "--format", "svg", "-o", svg); code != 0 {
		t.Fatalf("-o: exit %d", code)
	}
	if b, err := os.ReadFile(svg); err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Errorf("-o wrote %.40q, %v", b, err)
	}
}

// TestShippedBundleLeavesNoRequirementGap: checked against the default bundle, every
// transactional or regulated interaction of the shipped catalog needs a second trust
// signal (attestation, approval): no no_requirement finding.
func TestShippedBundleLeavesNoRequirementGap(t *testing.T) {
	out, code := runCLI(t, "inventory", "check", shippedCatalog, "--policies", defaultPolicy)
	if code != 1 || !strings.Contains(out, "error shared_secret") {
		t.Fatalf("exit %d (want 1, for the shared integration account the catalog keeps on purpose):\n%s", code, out)
	}
	if strings.Contains(out, "no_requirement") {
		t.Fatalf("the default bundle leaves a requirement gap:\n%s", out)
	}
}
