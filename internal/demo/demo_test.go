package demo_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/demo"
)

// TestDemo runs the whole story: every step must behave as expected, report.json must
// say so, and each agent's credentials must be where the README says.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	rep, err := demo.Run(context.Background(), demo.Config{DataDir: dir, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		for _, s := range rep.Steps {
			if s.Observed != s.Expected {
				t.Errorf("step %q: expected %s, observed %s: %s", s.Name, s.Expected, s.Observed, s.Reason)
			}
		}
		t.Fatalf("demo not ok:\n%s", out.String())
	}
	var onDisk demo.Report
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &onDisk); err != nil || !onDisk.OK || len(onDisk.Steps) != len(rep.Steps) {
		t.Fatalf("report.json = %s (err %v)", b, err)
	}
	attacks := 0
	for _, s := range onDisk.Steps {
		if s.Kind == "attack" {
			attacks++
			if s.Observed != "deny" || s.Reason == "" {
				t.Errorf("attack %q: observed %s, reason %q", s.Name, s.Observed, s.Reason)
			}
		}
	}
	if attacks < 4 {
		t.Errorf("only %d attack rows", attacks)
	}
	for _, a := range demo.Agents {
		for _, f := range []string{"svid.pem", "svid_key.pem", "bundle.pem"} {
			if _, err := os.Stat(filepath.Join(dir, "agents", a.Name, f)); err != nil {
				t.Errorf("%s: %v", a.Name, err)
			}
		}
	}
	t.Log("\n" + out.String())
}
