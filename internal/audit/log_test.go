package audit_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/warden-a2a/warden/internal/audit"
)

func TestAppendConcurrentThenVerify(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		signer, verifier := testKeys(t)
		l, err := audit.Open(ctx, audit.Config{Storage: b.st, Signer: signer})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		const n = 1000
		var wg sync.WaitGroup
		idx := make([]int64, n)
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += 16 {
					r, err := l.Append(ctx, decisionEvent(i))
					if err != nil {
						t.Error(err)
						return
					}
					idx[i] = r.Index
				}
				if _, err := l.Checkpoint(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		seen := map[int64]bool{}
		for _, x := range idx {
			if seen[x] || x < 0 || x >= n {
				t.Fatalf("index %d handed out twice or out of range", x)
			}
			seen[x] = true
		}
		cp, err := l.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != n {
			t.Fatalf("checkpoint size %d, want %d", cp.Size, n)
		}
		rep, err := audit.Verify(ctx, b.st, verifier)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Size != n || rep.Root != cp.Root {
			t.Fatalf("verify: size %d root %v; checkpoint root %v", rep.Size, rep.Root, cp.Root)
		}
		// Conformance: the root equals sumdb/tlog's over the same record bytes.
		var hashes []tlog.Hash
		recs, err := b.st.Records(ctx, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			hs, err := tlog.StoredHashes(int64(i), r.Data, tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
				out := make([]tlog.Hash, len(ix))
				for j, x := range ix {
					out[j] = hashes[x]
				}
				return out, nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, hs...)
		}
		stored, err := b.st.ReadHashes(ctx, []int64{0, 1, 2, int64(len(hashes) - 1)})
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range []int{0, 1, 2, len(hashes) - 1} {
			if stored[i] != hashes[x] {
				t.Fatalf("stored hash %d differs from tlog.StoredHashes", x)
			}
		}
		root, err := tlog.TreeHash(n, tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(ix))
			for j, x := range ix {
				out[j] = hashes[x]
			}
			return out, nil
		}))
		if err != nil || root != cp.Root {
			t.Fatalf("tlog.TreeHash %v (err %v), checkpoint %v", root, err, cp.Root)
		}
	})
}

func TestAppendSameIDIsIdempotentDifferentBytesConflict(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l, err := audit.Open(ctx, audit.Config{Storage: b.st})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		mustAppend(t, l, decisionEvent(0), decisionEvent(1))
		r, err := l.Append(ctx, decisionEvent(1))
		if err != nil || r.Index != 1 {
			t.Fatalf("re-append of the same event: index %d err %v, want 1 nil", r.Index, err)
		}
		changed := decisionEvent(1)
		changed.Reason = "forged"
		if _, err := l.Append(ctx, changed); !errors.Is(err, audit.ErrConflict) {
			t.Fatalf("same id, other bytes: err %v, want ErrConflict", err)
		}
		if n, _ := b.st.Size(ctx); n != 2 {
			t.Fatalf("size %d after duplicate appends, want 2", n)
		}
	})
}

func TestAppendRejectsInvalidEvent(t *testing.T) {
	l, err := audit.Open(context.Background(), audit.Config{Storage: newSQLiteBackend(t).st})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ev := decisionEvent(0)
	ev.Decision = "maybe"
	if _, err := l.Append(context.Background(), ev); !errors.Is(err, audit.ErrInvalidEvent) {
		t.Fatalf("err %v, want ErrInvalidEvent", err)
	}
}

func TestAppendAfterCloseFails(t *testing.T) {
	l, err := audit.Open(context.Background(), audit.Config{Storage: newSQLiteBackend(t).st})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Append(context.Background(), decisionEvent(0)); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("err %v, want ErrClosed", err)
	}
}

func TestProofVerifiesAndDetectsForgery(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		signer, verifier := testKeys(t)
		l, err := audit.Open(ctx, audit.Config{Storage: b.st, Signer: signer})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for i := 0; i < 37; i++ {
			mustAppend(t, l, decisionEvent(i))
		}
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, l, decisionEvent(37)) // not covered yet: Proof signs a new checkpoint
		for _, id := range []string{"dec-00000000", "dec-00000020", "dec-00000037"} {
			p, err := l.Proof(ctx, id)
			if err != nil {
				t.Fatalf("proof %s: %v", id, err)
			}
			if err := audit.VerifyInclusion(p, verifier); err != nil {
				t.Fatalf("proof %s does not verify: %v", id, err)
			}
			forged := p
			forged.Event = append([]byte(nil), p.Event...)
			forged.Event[10] ^= 1
			if audit.VerifyInclusion(forged, verifier) == nil {
				t.Fatalf("proof %s verifies with a changed event", id)
			}
		}
		_, otherV := testKeys(t)
		p, _ := l.Proof(ctx, "dec-00000001")
		if audit.VerifyInclusion(p, otherV) == nil {
			t.Fatal("proof verifies with another log's key")
		}
		if _, err := l.Proof(ctx, "nope"); !errors.Is(err, audit.ErrNotFound) {
			t.Fatalf("unknown id: %v, want ErrNotFound", err)
		}
	})
}

func TestQueryFilters(t *testing.T) {
	ctx := context.Background()
	b := newSQLiteBackend(t)
	l, _ := audit.Open(ctx, audit.Config{Storage: b.st})
	defer l.Close()
	for i := 0; i < 100; i++ {
		mustAppend(t, l, decisionEvent(i))
	}
	recs, err := b.st.Query(ctx, audit.Filter{Workflow: "wf-3", Decision: audit.DecisionDeny})
	if err != nil {
		t.Fatal(err)
	}
	// i%50 == 3 and i%7 == 3: i = 3 only (53 % 7 = 4).
	if len(recs) != 1 || recs[0].ID != "dec-00000003" {
		t.Fatalf("got %d records %v", len(recs), recs)
	}
	recs, _ = b.st.Query(ctx, audit.Filter{Agent: "spiffe://example.org/agent/vendor-portal", Limit: 5})
	if len(recs) != 5 || recs[4].Index != 99 || recs[0].Index != 95 {
		t.Fatalf("tail by agent: %d records", len(recs))
	}
}

func TestTwoWritersShareOneDatabase(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		signer, verifier := testKeys(t)
		var logs []*audit.Log
		for _, st := range []audit.Storage{b.st, b.second(t)} {
			l, err := audit.Open(ctx, audit.Config{Storage: st, Signer: signer})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			logs = append(logs, l)
		}
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := logs[w%2]
				for i := w; i < 800; i += 8 {
					if _, err := l.Append(ctx, decisionEvent(i)); err != nil {
						t.Error(err)
						return
					}
					if i%97 == 0 {
						if _, err := l.Checkpoint(ctx); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		logs[0].Checkpoint(ctx)
		rep, err := audit.Verify(ctx, b.st, verifier)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Size != 800 {
			t.Fatalf("size %d, want 800", rep.Size)
		}
	})
}
