package auditproc

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/audit"
)

// TestAuditorSearchesOverTheAPI: the admin issues an auditor credential with `warden
// auditor create`; the auditor, with no access to the database, runs `warden audit
// search` against the running server and checks every inclusion proof, against a
// checkpoint the witness cosigned, with the log's and the witness's keys.
func TestAuditorSearchesOverTheAPI(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		d := deploy(t, b, "200ms")
		d.revoke("demand-planner")
		appendEvents(t, d.db, b, "po", 12) // denials, reason replay, workflow wf-po
		d.waitWitnessed()
		out := filepath.Join(t.TempDir(), "alice")
		code, stdout, errOut := warden(t, "auditor", "create", "alice", "--data-dir", d.dataDir, "--out", out, "--ttl", "1h")
		if code != 0 || !strings.Contains(stdout, "spiffe://"+td+"/warden/auditor/alice valid until") {
			t.Fatalf("auditor create: exit %d %q %s", code, stdout, errOut)
		}
		code, stdout, errOut = warden(t, "audit", "search", "--credential", out, "--workflow", "wf-po", "--decision", "deny",
			"--reason", "replay", "-n", "5", "--proof", "--verifier-key", filepath.Join(d.dataDir, "audit", audit.VerifierKeyFile),
			"--witness-key", d.witnessKey())
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if code != 0 || len(lines) != 7 || !strings.Contains(lines[4], "id=po-11") ||
			!strings.Contains(lines[6], "5 verified with warden-audit/"+td+", cosigned by witness.test/w1") {
			t.Fatalf("auditor search: exit %d\n%s\n%s", code, stdout, errOut)
		}
		if !strings.Contains(lines[5], "--before") {
			t.Fatalf("no paging hint: %q", lines[5])
		}
		// The revocation is a lifecycle event the auditor finds by agent and kind.
		code, stdout, _ = warden(t, "audit", "search", "--credential", out, "--agent", "spiffe://"+td+"/agent/demand-planner", "--kind", "revocation")
		if code != 0 || !strings.Contains(stdout, "revocation") || strings.Count(stdout, "\n") != 1 {
			t.Fatalf("search by agent: exit %d %q", code, stdout)
		}
		// A malformed query is refused with its reason code.
		code, _, errOut = warden(t, "audit", "search", "--credential", out, "--decision", "maybe")
		if code != 1 || !strings.Contains(errOut, "bad_request") {
			t.Fatalf("bad query: exit %d %s", code, errOut)
		}
	})
}
