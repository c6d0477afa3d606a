package auditproc

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/proc"
	"github.com/warden-a2a/warden/internal/witness"
)

const td = "supplychain.example"

// deployment is a control plane (one or more `warden server` processes on one store) and
// one `warden witness`, as docs/operator-guide.md sets them up.
type deployment struct {
	t          *testing.T
	b          backend
	dataDir    string
	witnessDir string
	interval   string
	witness    *proc.Process
	witnessURL string
	server     *proc.Process
	db         *sql.DB
}

// deploy makes the audit key (warden audit keys), starts the witness following it and a
// server whose checkpoints it cosigns every interval.
func deploy(t *testing.T, b backend, interval string) *deployment {
	t.Helper()
	d := &deployment{t: t, b: b, dataDir: t.TempDir(), witnessDir: t.TempDir(), interval: interval}
	if code, out, errOut := warden(t, "audit", "keys", "--data-dir", d.dataDir, "--trust-domain", td); code != 0 || !strings.HasPrefix(out, audit.NoteName(td)+"+") {
		t.Fatalf("warden audit keys: exit %d %q %s", code, out, errOut)
	}
	d.startWitness()
	d.server = d.startServer(d.dataDir)
	d.db = b.open(t, d.dataDir)
	return d
}

func (d *deployment) startWitness() {
	d.t.Helper()
	urlFile := filepath.Join(d.witnessDir, "url")
	os.Remove(urlFile)
	d.witness = start(d.t, "witness", "witness", "--data-dir", d.witnessDir, "--listen", "127.0.0.1:0",
		"--name", "witness.test/w1", "--log-key", filepath.Join(d.dataDir, "audit", audit.VerifierKeyFile))
	waitFor(d.t, "the witness's url file", func() bool { return readTrimmed(urlFile) != "" }, d.witness)
	d.witnessURL = readTrimmed(urlFile)
}

func (d *deployment) witnessKey() string { return filepath.Join(d.witnessDir, "witness.vkey") }

// serverArgs are the flags of a server on d's store with data dir dir.
func (d *deployment) serverArgs(dir string) []string {
	args := []string{"server", "--data-dir", dir, "--listen", "127.0.0.1:0", "--trust-domain", td,
		"--checkpoint-interval", d.interval, "--witness", d.witnessURL + "=" + d.witnessKey()}
	if d.b.store != "" {
		return append(args, "--store", d.b.store)
	}
	if dir != d.dataDir { // a second replica on the first one's SQLite file
		args = append(args, "--store", filepath.Join(d.dataDir, "warden.db"))
	}
	return args
}

func (d *deployment) startServer(dir string) *proc.Process {
	d.t.Helper()
	urlFile := filepath.Join(dir, "admin", "server_url")
	os.Remove(urlFile)
	p := start(d.t, "server-"+filepath.Base(dir), d.serverArgs(dir)...)
	waitFor(d.t, "the server's url file", func() bool { return readTrimmed(urlFile) != "" }, p, d.witness)
	return p
}

// witnessSize is the size of the newest checkpoint the witness cosigned, -1 for none.
func (d *deployment) witnessSize() int64 {
	b, err := witness.FetchLatest(context.Background(), nil, d.witnessURL, audit.NoteName(td))
	if err != nil {
		return -1
	}
	v, err := audit.LoadVerifier(filepath.Join(d.dataDir, "audit", audit.VerifierKeyFile))
	if err != nil {
		d.t.Fatal(err)
	}
	size, _, err := audit.OpenCheckpoint(b, v)
	if err != nil {
		d.t.Fatalf("witness's checkpoint: %v", err)
	}
	return size
}

func (d *deployment) logSize() int64 {
	return count(d.t, d.db, "SELECT COALESCE(MAX(idx)+1, 0) FROM audit_records")
}

// waitWitnessed waits until the witness holds a checkpoint of the whole log.
func (d *deployment) waitWitnessed() int64 {
	d.t.Helper()
	var n int64
	waitFor(d.t, "the witness to cosign the whole log", func() bool {
		n = d.logSize()
		return d.witnessSize() == n
	}, d.server, d.witness)
	return n
}

// verify runs `warden audit verify` with the witness key and URL (withWitness) or with
// the database alone.
func (d *deployment) verify(withWitness bool, extra ...string) (int, string, string) {
	d.t.Helper()
	args := append([]string{"audit", "verify", "--data-dir", d.dataDir}, d.b.storeArgs()...)
	if withWitness {
		args = append(args, "--witness-key", d.witnessKey(), "--witness-url", d.witnessURL)
	}
	return warden(d.t, append(args, extra...)...)
}

func (d *deployment) exec(q string) {
	d.t.Helper()
	if _, err := d.db.Exec(q); err != nil {
		d.t.Fatalf("%s: %v", q, err)
	}
}

// revoke changes the trust state through the admin CLI: one revocation event.
func (d *deployment) revoke(name string) {
	d.t.Helper()
	if code, out, errOut := warden(d.t, "revoke", "--data-dir", d.dataDir, "--id", "spiffe://"+td+"/agent/"+name, "--reason", "test"); code != 0 {
		d.t.Fatalf("warden revoke: exit %d %s %s", code, out, errOut)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
