package witness_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/warden-a2a/warden/internal/audit"
)

// TestVerifyWithWitnessNamesTampering: with the witness's newest checkpoint as anchor,
// every way of cutting the log behind the server's back is a named fault, where the
// database alone would verify.
func TestVerifyWithWitnessNamesTampering(t *testing.T) {
	type env struct {
		l  *testLog
		tw *testWitness
	}
	exec := func(t *testing.T, e env, q string) {
		t.Helper()
		if _, err := e.l.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, e env)
		code   string
		text   string
	}{
		{"intact", func(*testing.T, env) {}, "", ""},
		{"last-records-and-their-checkpoints-deleted", func(t *testing.T, e env) {
			exec(t, e, "DELETE FROM audit_records WHERE idx >= 25")
			exec(t, e, "DELETE FROM audit_checkpoints WHERE size > 25")
		}, audit.FaultTruncated, "log truncated"},
		{"truncated-to-an-older-checkpoint", func(t *testing.T, e env) {
			exec(t, e, "DELETE FROM audit_records WHERE idx >= 20")
			exec(t, e, "DELETE FROM audit_checkpoints WHERE size > 20")
			exec(t, e, "DELETE FROM audit_cosignatures WHERE size > 20")
		}, audit.FaultTruncated, "records 20..29 were deleted"},
		{"every-checkpoint-deleted", func(t *testing.T, e env) {
			exec(t, e, "DELETE FROM audit_checkpoints")
			exec(t, e, "DELETE FROM audit_cosignatures")
		}, audit.FaultCheckpointDeleted, "checkpoint deleted"},
		{"rolled-back-and-regrown", func(t *testing.T, e env) {
			exec(t, e, "DELETE FROM audit_records WHERE idx >= 20")
			exec(t, e, "DELETE FROM audit_checkpoints WHERE size > 20")
			ctx := context.Background()
			// The attacker appends other events with the log's own code (and key).
			l2 := newTestLogOn(t, e.l)
			l2.append(t, 500, 515)
			if _, err := l2.log.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}, audit.FaultRolledBack, "rolled back"},
		{"filter-column-edited", func(t *testing.T, e env) {
			exec(t, e, "UPDATE audit_records SET caller = 'spiffe://example.org/agent/x' WHERE idx = 7")
		}, audit.FaultColumnMismatch, "caller column"},
		{"stored-cosignature-edited", func(t *testing.T, e env) {
			exec(t, e, "UPDATE audit_cosignatures SET sig = (SELECT sig FROM audit_cosignatures WHERE size = 20) WHERE size = 30")
		}, audit.FaultCheckpointInvalid, "stored cosignatures"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			lg := newTestLog(t, nil, nil)
			tw := newTestWitness(t, "witness.example/w1", lg.verifier)
			l := newTestLog(t, lg.signer, lg.verifier, tw.client(t))
			for _, n := range []int{10, 20, 30} {
				l.append(t, int(must(l.st.Size(ctx))), n)
				if _, err := l.log.Checkpoint(ctx); err != nil {
					t.Fatal(err)
				}
			}
			opts := func() audit.VerifyOptions {
				return audit.VerifyOptions{Verifiers: []note.Verifier{l.verifier}, Witnesses: []note.Verifier{tw.key},
					Anchors: []audit.Anchor{{Source: tw.url, Note: mustLatest(t, tw)}}}
			}
			tc.tamper(t, env{l, tw})
			// Without the witness the truncations verify: the database is self-consistent.
			_, dbErr := audit.Verify(ctx, l.st, l.verifier)
			_, err := audit.VerifyWith(ctx, l.st, opts())
			if tc.code == "" {
				if err != nil || dbErr != nil {
					t.Fatalf("intact log: %v / %v", err, dbErr)
				}
				return
			}
			fe, ok := audit.IsFault(err)
			if !ok || fe.Code != tc.code || !strings.Contains(fe.Reason, tc.text) {
				t.Fatalf("verify: %v, want %s containing %q", err, tc.code, tc.text)
			}
		})
	}
}

// newTestLogOn opens a second Log on the same storage and key (what an attacker with
// the server's key and database would run).
func newTestLogOn(t *testing.T, l *testLog) *testLog {
	t.Helper()
	st, err := audit.NewSQLite(context.Background(), l.db)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := audit.Open(context.Background(), audit.Config{Storage: st, Signer: l.signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	return &testLog{db: l.db, st: st, log: lg, signer: l.signer, verifier: l.verifier}
}

// TestVerifyQuorumAndStaleness: verify needs the quorum of witnesses, and fails when
// records stay unwitnessed past the allowed delay (the server stopped reaching its
// witnesses) while a recent cosignature makes the same tail fine.
func TestVerifyQuorumAndStaleness(t *testing.T) {
	ctx := context.Background()
	lg := newTestLog(t, nil, nil)
	w1 := newTestWitness(t, "witness.example/w1", lg.verifier)
	w2 := newTestWitness(t, "witness.example/w2", lg.verifier)
	l := newTestLog(t, lg.signer, lg.verifier, w1.client(t))
	l.append(t, 0, 10)
	if _, err := l.log.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	base := audit.VerifyOptions{Verifiers: []note.Verifier{l.verifier}, Witnesses: []note.Verifier{w1.key, w2.key},
		Anchors: []audit.Anchor{{Source: w1.url, Note: mustLatest(t, w1)}}}
	_, err := audit.VerifyWith(ctx, l.st, base)
	if fe, ok := audit.IsFault(err); !ok || fe.Code != audit.FaultQuorum || !strings.Contains(fe.Reason, "only 1 of the 2") {
		t.Fatalf("one of two witnesses: %v, want quorum", err)
	}
	base.Quorum = 1
	if _, err := audit.VerifyWith(ctx, l.st, base); err != nil {
		t.Fatalf("quorum 1: %v", err)
	}
	// Records after the last witnessed checkpoint: fine now, a fault an hour later.
	l.append(t, 10, 12)
	if rep, err := audit.VerifyWith(ctx, l.st, base); err != nil || rep.Uncovered != 2 {
		t.Fatalf("fresh tail: %+v %v", rep, err)
	}
	base.Now = func() time.Time { return time.Now().Add(time.Hour) }
	_, err = audit.VerifyWith(ctx, l.st, base)
	if fe, ok := audit.IsFault(err); !ok || fe.Code != audit.FaultUnwitnessed || fe.Index != 10 {
		t.Fatalf("hour-old unwitnessed tail: %v", err)
	}
	// An anchor the log key did not sign, or with a broken cosignature, is refused.
	bad := append([]byte{}, mustLatest(t, w1)...)
	bad[len(bad)-5] ^= 1
	base.Anchors = []audit.Anchor{{Source: "file", Note: bad}}
	base.Now = nil
	if _, err := audit.VerifyWith(ctx, l.st, base); err == nil {
		t.Fatal("a broken witnessed checkpoint was accepted")
	}
}
