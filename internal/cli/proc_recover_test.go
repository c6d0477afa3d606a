package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/proc"
	"github.com/warden-a2a/warden/sdk"
)

// TestProcessRecoveryAfterOutage: `warden server` (SVIDs of 6 s) is stopped for longer
// than an SVID lifetime and started again on the same address and data directory.
//
//   - a TPM-attested agent's `enroll --watch --tpm` recovers its expired SVID with a
//     fresh quote, without a new join token, and goes on renewing;
//   - an agent without a TPM: its `enroll --watch` exits non-zero naming `warden token
//     create`;
//   - an agent revoked before the outage: its `enroll --watch` exits non-zero with
//     identity_revoked at its next renewal;
//   - `enroll --watch` restarted on its directory resumes from the files, no token.
func TestProcessRecoveryAfterOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("process test (about 40 s)")
	}
	t.Parallel()
	dir := t.TempDir()
	pg := procs(t)
	p := func(n string) string { return filepath.Join(dir, n) }
	data, addr := p("data"), freePort(t)
	server, url := startServerProc(t, pg, data, addr, "--svid-ttl", "6s")

	if err := os.WriteFile(p("payments-agent"), []byte("#!payments build 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWarden(t, pg, "attest", "refs", "--binary", p("payments-agent"), "-o", p("refs.yaml"))
	mustWarden(t, pg, "entry", "create", "--data-dir", data, "--name", "payments", "--role", "payment-release", "--class", "transactional",
		"--zone", "cloud", "--refs", p("refs.yaml"))
	for _, n := range []string{"forecaster", "doomed"} {
		mustWarden(t, pg, "entry", "create", "--data-dir", data, "--name", n, "--role", "forecasting", "--class", "advisory", "--zone", "cloud")
	}
	watch := func(name string, extra ...string) *proc.Process {
		args := append([]string{"enroll", "--watch", "--server", url, "--out", p(name)}, extra...)
		return startWarden(t, pg, "enroll "+name, []string{"WARDEN_JOIN_TOKEN=" + tokenFor(t, pg, data, name)}, args...)
	}
	tpmArgs := []string{"--tpm", "sim", "--tpm-seed", "5", "--binary", p("payments-agent")}
	payments := watch("payments", tpmArgs...)
	forecaster := watch("forecaster")
	doomed := watch("doomed")
	for _, w := range []*proc.Process{payments, forecaster, doomed} {
		waitLog(t, w, "enrolled spiffe://", 60*time.Second)
	}

	// Revoked: the next renewal is refused and --watch stops with the reason.
	mustWarden(t, pg, "revoke", "--data-dir", data, "--id", "spiffe://supplychain.example/agent/doomed", "--reason", "test: decommissioned")
	if code := waitExit(t, doomed, 30*time.Second); code == 0 {
		t.Fatal("enroll --watch of a revoked agent exited 0")
	}
	waitLog(t, doomed, "identity_revoked", time.Second)

	// The outage: longer than an SVID lifetime.
	_ = server.Stop()
	before, _, err := sdk.LoadFiles(p("payments"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(before.Certificates[0].NotAfter) + 2*time.Second)
	startServerProc(t, pg, data, addr, "--svid-ttl", "6s")

	waitLog(t, payments, "svid recovered with fresh TPM evidence", 60*time.Second)
	if code := waitExit(t, forecaster, 60*time.Second); code == 0 {
		t.Fatal("enroll --watch without a TPM exited 0 after its SVID expired")
	}
	waitLog(t, forecaster, "warden token create", time.Second)
	after, _, err := sdk.LoadFiles(p("payments"))
	if err != nil {
		t.Fatal(err)
	}
	if !time.Now().Before(after.Certificates[0].NotAfter) || after.ID != before.ID {
		t.Fatalf("recovered files hold %s valid until %s", after.ID, after.Certificates[0].NotAfter)
	}
	if done, err := payments.Exited(); done {
		t.Fatalf("enroll --watch --tpm exited after recovering: %v", err)
	}

	// Restarted on its directory, without a token: it resumes and renews.
	_ = payments.Stop()
	resumed := startWarden(t, pg, "enroll payments (resumed)", nil,
		append([]string{"enroll", "--watch", "--server", url, "--out", p("payments")}, tpmArgs...)...)
	waitLog(t, resumed, "resuming from the SVID in --out", 30*time.Second)
	waitLog(t, resumed, "svid rotated", 30*time.Second)
}
