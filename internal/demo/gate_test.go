package demo_test

import (
	"context"
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/demo"
)

// TestGateRows: the gate rows are in the report, each row names its reason code and a
// decision id (a refused handshake's from the gate's audit event, a direct call to the
// ERP's from its verifier), and decision ids are unique.
func TestGateRows(t *testing.T) {
	rep, err := demo.Run(context.Background(), demo.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
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
