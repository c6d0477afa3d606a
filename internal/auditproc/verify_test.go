package auditproc

import (
	"strings"
	"testing"
	"time"
)

// TestVerifyNamesTamperingBehindTheServer: the log is cut or edited directly in the
// database while the server is stopped. With the witness's key (and its newest
// checkpoint, read from the witness) `warden audit verify` fails and names what
// happened; from the database alone the truncations would pass.
func TestVerifyNamesTamperingBehindTheServer(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(d *deployment, first, second int64)
		dbOnly bool // verify without the witness still says OK
		want   string
	}{
		{"intact", func(*deployment, int64, int64) {}, true, ""},
		{"last-records-deleted-with-the-checkpoints-beyond-them", func(d *deployment, first, second int64) {
			d.exec("DELETE FROM audit_records WHERE idx >= " + itoa(second-3))
			d.exec("DELETE FROM audit_checkpoints WHERE size > " + itoa(second-3))
			d.exec("DELETE FROM audit_cosignatures WHERE size > " + itoa(second-3))
		}, true, "FAIL: first bad index " + "SECOND-3" + ": truncated: log truncated"},
		{"truncated-to-an-older-checkpoint", func(d *deployment, first, second int64) {
			d.exec("DELETE FROM audit_records WHERE idx >= " + itoa(first))
			d.exec("DELETE FROM audit_checkpoints WHERE size > " + itoa(first))
			d.exec("DELETE FROM audit_cosignatures WHERE size > " + itoa(first))
		}, true, "truncated: log truncated"},
		{"every-checkpoint-deleted", func(d *deployment, first, second int64) {
			d.exec("DELETE FROM audit_checkpoints")
			d.exec("DELETE FROM audit_cosignatures")
		}, true, "FAIL: checkpoint_deleted: checkpoint deleted"}, // the database alone fails only once its events are older than --max-unwitnessed
		{"filter-column-edited", func(d *deployment, first, second int64) {
			d.exec("UPDATE audit_records SET workflow = 'wf-hidden' WHERE idx = " + itoa(first+1))
		}, false, "column_mismatch: the workflow column differs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, b backend) {
				d := deploy(t, b, "200ms")
				d.revoke("demand-planner")
				appendEvents(t, d.db, b, "a", 20)
				first := d.waitWitnessed()
				appendEvents(t, d.db, b, "b", 20)
				second := d.waitWitnessed()
				stop(t, d.server)
				if code, out, errOut := d.verify(true); code != 0 || !strings.HasPrefix(out, "OK: "+itoa(second)+" events") {
					t.Fatalf("before tampering: exit %d %q %s", code, out, errOut)
				}
				tc.tamper(d, first, second)
				code, out, errOut := d.verify(true)
				want := strings.ReplaceAll(tc.want, "SECOND-3", itoa(second-3))
				if want == "" {
					if code != 0 {
						t.Fatalf("intact log: exit %d %q %s", code, out, errOut)
					}
				} else if code != 1 || !strings.Contains(out, want) {
					t.Fatalf("verify with the witness: exit %d %q %s; want exit 1 and %q", code, out, errOut, want)
				}
				dbCode, dbOut, _ := d.verify(false)
				if tc.dbOnly != (dbCode == 0) {
					t.Fatalf("verify without the witness: exit %d %q", dbCode, dbOut)
				}
			})
		})
	}
}

// TestIdleServerAndSizeZeroCheckpoint: a server that idles before its first event signs
// (and has cosigned) a checkpoint at size 0; verify says OK while it idles, and after
// events arrive. The witness's cosignature is refreshed while the log does not grow.
func TestIdleServerAndSizeZeroCheckpoint(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		d := deploy(t, b, "200ms")
		waitFor(t, "a size-0 checkpoint cosigned", func() bool { return d.witnessSize() == 0 }, d.server, d.witness)
		time.Sleep(time.Second) // idle for several checkpoint intervals
		for _, withWitness := range []bool{true, false} {
			if code, out, errOut := d.verify(withWitness); code != 0 || !strings.HasPrefix(out, "OK: 0 events") {
				t.Fatalf("idle server (witness %v): exit %d %q %s", withWitness, code, out, errOut)
			}
		}
		d.revoke("edge-sensor")
		appendEvents(t, d.db, b, "x", 30)
		n := d.waitWitnessed()
		time.Sleep(time.Second) // idle again
		// A tight delay shows the cosignature is fresh although the log did not grow.
		if code, out, errOut := d.verify(true, "--max-unwitnessed", "5s"); code != 0 || !strings.HasPrefix(out, "OK: "+itoa(n)+" events") {
			t.Fatalf("after events: exit %d %q %s", code, out, errOut)
		}
	})
}

// TestRestartBetweenCheckpoints: events appended after the last checkpoint, then the
// server stopped — gracefully, or with kill -9 — and started again; verify never fails a
// healthy log, and the restarted server's first checkpoint covers what was left.
func TestRestartBetweenCheckpoints(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		d := deploy(t, b, "1h") // checkpoints only at start and at stop
		waitFor(t, "the start checkpoint", func() bool { return d.witnessSize() == 0 }, d.server, d.witness)
		appendEvents(t, d.db, b, "before-stop", 10)
		stop(t, d.server) // the last checkpoint at stop covers them
		if got := d.witnessSize(); got != 10 {
			t.Fatalf("after a graceful stop the witness holds %d, want 10", got)
		}
		if code, out, errOut := d.verify(true); code != 0 {
			t.Fatalf("after a graceful stop: exit %d %q %s", code, out, errOut)
		}
		d.server = d.startServer(d.dataDir)
		appendEvents(t, d.db, b, "before-kill", 7)
		kill9(t, d.server) // no checkpoint covers these 7
		if code, out, errOut := d.verify(true); code != 0 || !strings.Contains(out, "7 newer events not witnessed yet") {
			t.Fatalf("right after kill -9: exit %d %q %s", code, out, errOut)
		}
		d.server = d.startServer(d.dataDir)
		if n := d.waitWitnessed(); n != 17 {
			t.Fatalf("witnessed %d after the restart, want 17", n)
		}
		if code, out, errOut := d.verify(true); code != 0 || !strings.Contains(out, "0 newer events") {
			t.Fatalf("after the restart: exit %d %q %s", code, out, errOut)
		}
	})
}

// TestUnwitnessedTailAndQuorum: records no witness has cosigned fail once they are older
// than --max-unwitnessed; a witness that cannot be asked does not count to the quorum.
func TestUnwitnessedTailAndQuorum(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		d := deploy(t, b, "200ms")
		appendEvents(t, d.db, b, "a", 5)
		d.waitWitnessed()
		kill9(t, d.server)
		appendEvents(t, d.db, b, "late", 3) // another writer; nobody checkpoints them
		time.Sleep(2500 * time.Millisecond)
		code, out, _ := d.verify(true, "--max-unwitnessed", "2s")
		if code != 1 || !strings.Contains(out, "unwitnessed: records 5..7 are not covered by any witnessed checkpoint") {
			t.Fatalf("stale tail: exit %d %q", code, out)
		}
		stop(t, d.witness)
		code, out, _ = d.verify(true)
		if code != 1 || !strings.Contains(out, "FAIL: quorum: only 0 of the 1 trusted witnesses") {
			t.Fatalf("witness down: exit %d %q", code, out)
		}
	})
}
