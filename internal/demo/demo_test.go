package demo_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/cli"
	"github.com/warden-a2a/warden/internal/demo"
	"github.com/warden-a2a/warden/internal/proc"
)

// TestMain lets this test binary act as the warden binary for the demo's children
// (`warden server`, `warden gate`, `warden enroll --watch`, the admin commands), so the
// test needs no prior `go build`.
func TestMain(m *testing.M) {
	if proc.IsChild() {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestDemo runs the whole story once against child processes: every step must behave as
// expected (a misbehaving step is named with its whole reason), report.json must say so
// with each step's commands, the files must be where the README and the operator guide
// say, and the gate rows must carry their reason codes and decision ids.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	rep, err := demo.Run(context.Background(), demo.Config{DataDir: dir, Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
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
		if s.Command == "" {
			t.Errorf("step %q has no command", s.Name)
		}
		if strings.Contains(s.Command, dir) {
			t.Errorf("step %q shows the directory instead of $DIR: %s", s.Name, s.Command)
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
	for _, f := range []string{"gates/vendor-portal/gate.yaml", "gates/procurement/gate.yaml", "gates/erp/gate.yaml", "gates/treasury/gate.yaml",
		"logs/server.log", "logs/gate-vendor-portal.log", "logs/enroll-procurement.log", "server/warden.db", "policies/schema.cedarschema"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	gateRows(t, rep)
	t.Log("\n" + out.String())
}

// gateRows: the gate rows are in the report, each row names its reason code and a
// decision id (a refused handshake's from the gate's audit event, a direct call to the
// ERP's from its verifier), and decision ids are unique.
func gateRows(t *testing.T, rep *demo.Report) {
	want := map[string]string{
		"replay a captured intent":           "replay",
		"tamper with the body":               "body_mismatch",
		"intent signed for logistics":        "wrong_audience",
		"revoked demand-planner calls":       "identity_revoked",
		"gate: impersonate procurement":      "untrusted_certificate",
		"legacy ERP called directly":         "credential_missing",
		"SendMessage through both gates":     "",
		"SendStreamingMessage":               "",
		"GetTask through both gates":         "",
		"legacy ERP through the legacy gate": "",
	}
	ids := map[string]bool{}
	for frag, reason := range want {
		found := false
		for _, s := range rep.Steps {
			if !strings.Contains(s.Name, frag) {
				continue
			}
			found = true
			if s.Observed != s.Expected {
				t.Errorf("%q: observed %s", s.Name, s.Observed)
			}
			if reason != "" && !strings.HasPrefix(s.Reason, reason) {
				t.Errorf("%q: reason %q, want %s", s.Name, s.Reason, reason)
			}
			if !strings.HasPrefix(s.DecisionID, "dec_") || ids[s.DecisionID] {
				t.Errorf("%q: decision id %q missing or reused", s.Name, s.DecisionID)
			}
			ids[s.DecisionID] = true
		}
		if !found {
			t.Errorf("no row for %q", frag)
		}
	}
}
