package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"

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
	p := func(n string) string { return filepath.Join(dir, n) }
	data, addr := p("data"), freePort(t)
	server, url := startServerProc(t, data, addr, "--svid-ttl", "6s")

	if err := os.WriteFile(p("payments-agent"), []byte("#!payments build 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWarden(t, "attest", "refs", "--binary", p("payments-agent"), "-o", p("refs.yaml"))
	mustWarden(t, "entry", "create", "--data-dir", data, "--name", "payments", "--role", "payment-release", "--class", "transactional",
		"--zone", "cloud", "--refs", p("refs.yaml"))
	for _, n := range []string{"forecaster", "doomed"} {
		mustWarden(t, "entry", "create", "--data-dir", data, "--name", n, "--role", "forecasting", "--class", "advisory", "--zone", "cloud")
	}
	watch := func(name string, extra ...string) *proc {
		args := append([]string{"enroll", "--watch", "--server", url, "--out", p(name)}, extra...)
		return startWarden(t, "enroll "+name, []string{"WARDEN_JOIN_TOKEN=" + tokenFor(t, data, name)}, args...)
	}
	tpmArgs := []string{"--tpm", "sim", "--tpm-seed", "5", "--binary", p("payments-agent")}
	payments := watch("payments", tpmArgs...)
	forecaster := watch("forecaster")
	doomed := watch("doomed")
	for _, w := range []*proc{payments, forecaster, doomed} {
		w.waitOutput("enrolled spiffe://", 60*time.Second)
	}

	// Revoked: the next renewal is refused and --watch stops with the reason.
	mustWarden(t, "revoke", "--data-dir", data, "--id", "spiffe://supplychain.example/agent/doomed", "--reason", "test: decommissioned")
	if code := doomed.waitExit(30 * time.Second); code == 0 {
		t.Fatal("enroll --watch of a revoked agent exited 0")
	}
	doomed.waitOutput("identity_revoked", time.Second)

	// The outage: longer than an SVID lifetime.
	server.stop()
	before, _, err := sdk.LoadFiles(p("payments"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(before.Certificates[0].NotAfter) + 2*time.Second)
	startServerProc(t, data, addr, "--svid-ttl", "6s")

	payments.waitOutput("svid recovered with fresh TPM evidence", 60*time.Second)
	if code := forecaster.waitExit(60 * time.Second); code == 0 {
		t.Fatal("enroll --watch without a TPM exited 0 after its SVID expired")
	}
	forecaster.waitOutput("warden token create", time.Second)
	after, _, err := sdk.LoadFiles(p("payments"))
	if err != nil {
		t.Fatal(err)
	}
	if !time.Now().Before(after.Certificates[0].NotAfter) || after.ID != before.ID {
		t.Fatalf("recovered files hold %s valid until %s", after.ID, after.Certificates[0].NotAfter)
	}
	if done, code := payments.exited(); done {
		t.Fatalf("enroll --watch --tpm exited with %d after recovering", code)
	}

	// Restarted on its directory, without a token: it resumes and renews.
	payments.stop()
	resumed := startWarden(t, "enroll payments (resumed)", nil,
		append([]string{"enroll", "--watch", "--server", url, "--out", p("payments")}, tpmArgs...)...)
	resumed.waitOutput("resuming from the SVID in --out", 30*time.Second)
	resumed.waitOutput("svid rotated", 30*time.Second)
}
