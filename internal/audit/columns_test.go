package audit_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/warden-a2a/warden/internal/audit"
)

// TestVerifyCoversFilterColumns: every column a query filters on is checked against the
// event's canonical bytes, so an edited column cannot hide an event from tail or search
// while verify says OK.
func TestVerifyCoversFilterColumns(t *testing.T) {
	cases := []struct{ column, value string }{
		{"workflow", "'wf-other'"},
		{"caller", "'spiffe://example.org/agent/someone-else'"},
		{"callee", "''"},
		{"decision", "'allow'"},
		{"kind", "'anomaly'"},
		{"action", "'catalog.read'"},
		{"reason", "''"},
		{"time_ns", "0"},
		{"id", "'renamed'"},
	}
	for _, tc := range cases {
		t.Run(tc.column, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, b backend) {
				ctx := context.Background()
				l, verifier := signedLog(t, b)
				for i := 0; i < 30; i++ {
					mustAppend(t, l, decisionEvent(i))
				}
				if _, err := l.Checkpoint(ctx); err != nil {
					t.Fatal(err)
				}
				// decisionEvent(24) is a denial (24%7 == 3) with reason replay.
				sqlExec(t, b, "UPDATE audit_records SET "+tc.column+" = "+tc.value+" WHERE idx = 24")
				_, err := audit.Verify(ctx, b.st, verifier)
				fe, ok := audit.IsFault(err)
				if !ok || fe.Index != 24 || fe.Code != audit.FaultColumnMismatch {
					t.Fatalf("verify after editing %s: %v, want a column_mismatch at 24", tc.column, err)
				}
			})
		})
	}
}

// TestSizeZeroCheckpointIsNoFalseFail: a server that idles before its first event signs
// a checkpoint at size 0; later checkpoints must still be compared and verify says OK.
func TestSizeZeroCheckpointIsNoFalseFail(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l, verifier := signedLog(t, b)
		if cp, err := l.Checkpoint(ctx); err != nil || cp.Size != 0 {
			t.Fatalf("first checkpoint: %+v %v", cp, err)
		}
		for i := 0; i < 20; i++ {
			mustAppend(t, l, decisionEvent(i))
			if i%7 == 6 {
				if _, err := l.Checkpoint(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		rep, err := audit.Verify(ctx, b.st, verifier)
		if err != nil {
			t.Fatalf("log with a size-0 checkpoint: %v", err)
		}
		if rep.Checkpoints != 3 || rep.Size != 20 || rep.Uncovered != 6 {
			t.Fatalf("report %+v", rep)
		}
		// The size-0 checkpoint is still checked: a forged root there is a fault.
		sqlExec(t, b, "UPDATE audit_checkpoints SET root = "+b.ph(1)+" WHERE size = 7", make([]byte, 32))
		if _, err := audit.Verify(ctx, b.st, verifier); err == nil {
			t.Fatal("forged checkpoint root verified")
		}
	})
}

// TestNoCheckpointAtAllFails: without witnesses, a log whose events are older than the
// allowed delay and that has no checkpoint at all (every checkpoint deleted) fails; a
// young log without one yet does not.
func TestNoCheckpointAtAllFails(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l, verifier := signedLog(t, b)
		for i := 0; i < 5; i++ {
			mustAppend(t, l, decisionEvent(i)) // times in 2026-11-27
		}
		opts := audit.VerifyOptions{Verifiers: []note.Verifier{verifier}, Now: func() time.Time { return t0.Add(10 * time.Second) }}
		if _, err := audit.VerifyWith(ctx, b.st, opts); err != nil {
			t.Fatalf("young log without a checkpoint: %v", err)
		}
		opts.Now = func() time.Time { return t0.Add(time.Hour) }
		_, err := audit.VerifyWith(ctx, b.st, opts)
		if fe, ok := audit.IsFault(err); !ok || fe.Code != audit.FaultNoCheckpoint {
			t.Fatalf("hour-old events and no checkpoint: %v, want no_checkpoint", err)
		}
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := audit.VerifyWith(ctx, b.st, opts); err != nil {
			t.Fatalf("with a checkpoint: %v", err)
		}
	})
}

// TestMigrateFromVersion1: a log written before the action and reason columns existed is
// migrated in place (columns filled from the canonical bytes) and verifies.
func TestMigrateFromVersion1(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l, verifier := signedLog(t, b)
		for i := 0; i < 40; i++ {
			mustAppend(t, l, decisionEvent(i))
		}
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		l.Close() // closing twice (cleanup) is harmless
		// Back to version 1: no action/reason columns, no cosignatures table.
		sqlExec(t, b, "ALTER TABLE audit_records DROP COLUMN action")
		sqlExec(t, b, "ALTER TABLE audit_records DROP COLUMN reason")
		sqlExec(t, b, "DROP TABLE audit_cosignatures")
		sqlExec(t, b, "UPDATE audit_schema SET version = 1")
		st := b.second(t)
		if _, err := audit.Verify(ctx, st, verifier); err != nil {
			t.Fatalf("migrated log: %v", err)
		}
		recs, err := st.Query(ctx, audit.Filter{Reason: "replay", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		// i%7 == 3 for i < 40: 3, 10, 17, 24, 31, 38.
		if len(recs) != 6 || recs[0].Action != "purchase_order.create" {
			t.Fatalf("query by reason after migration: %d records %+v", len(recs), recs)
		}
	})
}

// TestVerifyAcceptsEveryTrustedLogKey: a log whose checkpoints were signed by two keys
// of the same name (replicas that each made their own, before the server refused that)
// verifies when both keys are given, and fails with one.
func TestVerifyAcceptsEveryTrustedLogKey(t *testing.T) {
	ctx := context.Background()
	b := newSQLiteBackend(t)
	s1, v1 := testKeys(t)
	s2, v2 := testKeys(t)
	l1, _ := audit.Open(ctx, audit.Config{Storage: b.st, Signer: s1})
	defer l1.Close()
	l2, _ := audit.Open(ctx, audit.Config{Storage: b.st, Signer: s2})
	defer l2.Close()
	for i := 0; i < 10; i++ {
		mustAppend(t, l1, decisionEvent(i))
		l := l1
		if i%2 == 1 {
			l = l2
		}
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := audit.VerifyWith(ctx, b.st, audit.VerifyOptions{Verifiers: []note.Verifier{v1, v2}}); err != nil {
		t.Fatalf("both keys: %v", err)
	}
	if _, err := audit.Verify(ctx, b.st, v1); err == nil {
		t.Fatal("checkpoints of another key verified")
	}
}

// signedLog opens a Log with a checkpoint signer on b, closed when the test ends.
func signedLog(t *testing.T, b backend) (*audit.Log, note.Verifier) {
	t.Helper()
	signer, verifier := testKeys(t)
	l, err := audit.Open(context.Background(), audit.Config{Storage: b.st, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, verifier
}
