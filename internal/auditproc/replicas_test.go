package auditproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// copyDir copies src into dst (as an operator provisioning a replica would).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v %s", src, dst, err, out)
	}
}

// TestReplicasShareOneAuditKey: a second replica given only DATA_DIR/ca refuses to start
// (it would sign the shared log with a key of its own that verify does not know) and
// says to copy DATA_DIR/audit; given both, the two replicas checkpoint one log with one
// key, the witness cosigns both, and verify says OK.
func TestReplicasShareOneAuditKey(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		d := deploy(t, b, "200ms")
		waitFor(t, "the first replica's start checkpoint", func() bool { return d.witnessSize() >= 0 }, d.server, d.witness)

		onlyCA := t.TempDir()
		copyDir(t, filepath.Join(d.dataDir, "ca"), onlyCA)
		p := start(t, "replica-only-ca", d.serverArgs(onlyCA)...)
		code, exited := exited(p, 60*time.Second)
		if !exited || code == 0 || !strings.Contains(p.Tail(40), "copy DATA_DIR/audit/") {
			t.Fatalf("replica without the audit key: exited %v code %d:\n%s", exited, code, p.Tail(40))
		}
		if _, err := os.Stat(filepath.Join(onlyCA, "audit", "signer.key")); err == nil {
			t.Fatal("the refused replica created an audit key of its own")
		}

		second := t.TempDir()
		copyDir(t, filepath.Join(d.dataDir, "ca"), second)
		copyDir(t, filepath.Join(d.dataDir, "audit"), second)
		r2 := d.startServer(second)
		for i := 0; i < 3; i++ {
			appendEvents(t, d.db, b, "r"+itoa(int64(i)), 10)
			time.Sleep(150 * time.Millisecond) // both replicas checkpoint in between
		}
		n := d.waitWitnessed()
		if code, out, errOut := d.verify(true); code != 0 || !strings.HasPrefix(out, "OK: "+itoa(n)+" events") {
			t.Fatalf("two replicas: exit %d %q %s\n%s\n%s", code, out, errOut, d.server.Tail(40), r2.Tail(40))
		}
		stop(t, r2)
		stop(t, d.server)
		if code, out, errOut := d.verify(true); code != 0 {
			t.Fatalf("both stopped: exit %d %q %s", code, out, errOut)
		}
	})
}
