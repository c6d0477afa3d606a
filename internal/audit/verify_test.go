package audit_test

import (
	"context"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/warden-a2a/warden/internal/audit"
)

// tamper changes the stored log behind the library's back, as an attacker with write
// access to the database would.
type tamper func(t *testing.T, b backend)

func sqlExec(t *testing.T, b backend, q string, args ...any) {
	t.Helper()
	if _, err := b.db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func flipByte(idx int64, pos int) tamper {
	return func(t *testing.T, b backend) {
		recs, err := b.st.Records(context.Background(), idx, idx+1)
		if err != nil || len(recs) != 1 {
			t.Fatalf("read %d: %v", idx, err)
		}
		data := recs[0].Data
		if pos < 0 {
			pos = len(data) + pos
		}
		data[pos] ^= 0x01
		sqlExec(t, b, "UPDATE audit_records SET data = "+b.ph(1)+" WHERE idx = "+b.ph(2), data, idx)
	}
}

func TestVerifyNamesFirstBadIndex(t *testing.T) {
	const n = 300 // checkpoints at 100, 200, 300
	cases := []struct {
		name   string
		tamper tamper
		index  int64 // -1: a checkpoint fault
	}{
		{"changed-byte-first-record", flipByte(0, 5), 0},
		{"changed-byte-middle-record", flipByte(157, 40), 157},
		{"changed-last-byte-last-record", flipByte(n-1, -1), n - 1},
		{"changed-byte-record-at-checkpoint-edge", flipByte(99, 20), 99},
		{"deleted-middle-record", func(t *testing.T, b backend) {
			sqlExec(t, b, "DELETE FROM audit_records WHERE idx = 120")
		}, 120},
		{"deleted-last-record", func(t *testing.T, b backend) {
			sqlExec(t, b, "DELETE FROM audit_records WHERE idx = "+fmt.Sprint(n-1))
		}, n - 1},
		{"deleted-record-and-later-renumbered", func(t *testing.T, b backend) {
			sqlExec(t, b, "DELETE FROM audit_records WHERE idx = 50")
			sqlExec(t, b, "UPDATE audit_records SET idx = idx - 1 WHERE idx > 50")
		}, 50},
		{"two-records-swapped", func(t *testing.T, b backend) {
			sqlExec(t, b, "UPDATE audit_records SET idx = -1 WHERE idx = 10")
			sqlExec(t, b, "UPDATE audit_records SET idx = 10 WHERE idx = 11")
			sqlExec(t, b, "UPDATE audit_records SET idx = 11 WHERE idx = -1")
		}, 10},
		{"record-rewritten-with-its-stored-hash", func(t *testing.T, b backend) {
			// Rewrite record 205 and its leaf hash: the level-1 hash above no longer matches.
			flipByte(205, 30)(t, b)
			recs, _ := b.st.Records(context.Background(), 205, 206)
			h := leafHash(recs[0].Data)
			hs := append(h[:], recs[0].Hashes[1][:]...) // 205 completes a level-1 node
			sqlExec(t, b, "UPDATE audit_records SET hashes = "+b.ph(1)+" WHERE idx = 205", hs)
		}, 205},
		{"checkpoint-root-changed", func(t *testing.T, b backend) {
			sqlExec(t, b, "UPDATE audit_checkpoints SET root = "+b.ph(1)+" WHERE size = 200", make([]byte, 32))
		}, -1},
		{"checkpoint-note-forged", func(t *testing.T, b backend) {
			sqlExec(t, b, "UPDATE audit_checkpoints SET note = "+b.ph(1)+" WHERE size = 100", []byte("warden-audit/example.org\n100\nAAAA\n\n— x y\n"))
		}, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, b backend) {
				ctx := context.Background()
				signer, verifier := testKeys(t)
				l, err := audit.Open(ctx, audit.Config{Storage: b.st, Signer: signer})
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				for i := 0; i < n; i++ {
					mustAppend(t, l, decisionEvent(i))
					if (i+1)%100 == 0 {
						if _, err := l.Checkpoint(ctx); err != nil {
							t.Fatal(err)
						}
					}
				}
				if _, err := audit.Verify(ctx, b.st, verifier); err != nil {
					t.Fatalf("intact log: %v", err)
				}
				tc.tamper(t, b)
				_, err = audit.Verify(ctx, b.st, verifier)
				fe, ok := audit.IsFault(err)
				if !ok {
					t.Fatalf("verify after tampering: err %v, want a fault", err)
				}
				if fe.Index != tc.index {
					t.Fatalf("fault at %d (%s), want index %d", fe.Index, fe.Reason, tc.index)
				}
			})
		})
	}
}

func TestVerifyRejectsOtherSignerKey(t *testing.T) {
	ctx := context.Background()
	b := newSQLiteBackend(t)
	signer, _ := testKeys(t)
	_, other := testKeys(t)
	l, _ := audit.Open(ctx, audit.Config{Storage: b.st, Signer: signer})
	defer l.Close()
	mustAppend(t, l, decisionEvent(1))
	l.Checkpoint(ctx)
	if _, err := audit.Verify(ctx, b.st, other); err == nil {
		t.Fatal("checkpoint signed by another key verified")
	}
}

func leafHash(b []byte) tlog.Hash { return tlog.RecordHash(b) }
