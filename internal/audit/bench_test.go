package audit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/witness"
)

// BenchmarkAppendSQLite measures durable appends per second on SQLite (WAL,
// synchronous=FULL) from many concurrent callers. "group-commit" is the Log as shipped;
// "group-commit-witnessed" the same with a checkpoint every 100 ms that a witness
// (internal/witness on loopback HTTP, its own SQLite store) cosigns with a consistency
// proof; "baseline-one-tx-per-append" is the Log with MaxBatch 1, one transaction and
// one fsync per event.
func BenchmarkAppendSQLite(b *testing.B) { benchAppend(b, newSQLiteBackend) }

// BenchmarkAppendPostgres is the same on WARDEN_TEST_POSTGRES (skipped when unset).
func BenchmarkAppendPostgres(b *testing.B) { benchAppend(b, newPostgresBackend) }

func benchAppend(b *testing.B, open func(testing.TB) backend) {
	for _, bc := range []struct {
		name      string
		maxBatch  int
		witnessed bool
	}{{"group-commit", 0, false}, {"group-commit-witnessed", 0, true}, {"baseline-one-tx-per-append", 1, false}} {
		b.Run(bc.name, func(b *testing.B) {
			be := open(b)
			cfg := audit.Config{Storage: be.st, MaxBatch: bc.maxBatch}
			var cosigned func() int64
			if bc.witnessed {
				signer, verifier := testKeys(b)
				w, count := benchWitness(b, verifier)
				cfg.Signer, cfg.CheckpointInterval, cfg.Witnesses, cosigned = signer, 100*time.Millisecond, []audit.Cosigner{w}, count
			}
			l, err := audit.Open(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			var seq atomic.Int64
			b.SetParallelism(128) // 128 × GOMAXPROCS concurrent appenders, like a busy server
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(seq.Add(1))
					if _, err := l.Append(context.Background(), decisionEvent(i)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
			if cosigned != nil {
				b.ReportMetric(float64(cosigned()), "cosignatures")
			}
		})
	}
}

// benchWitness serves a witness following verifier on loopback and returns a client of
// it, and a function counting the cosignatures it returned.
func benchWitness(b *testing.B, verifier note.Verifier) (audit.Cosigner, func() int64) {
	skey, vkey, err := audit.GenerateCosignerKey("witness.bench/w1")
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := audit.NewCosignatureSigner(skey)
	key, _ := audit.NewCosignatureVerifier(vkey)
	store, err := witness.OpenStore(context.Background(), filepath.Join(b.TempDir(), "witness.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	w, err := witness.New(witness.Config{Signer: signer, Logs: witness.LogsOf(verifier), Store: store})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	h := w.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		sw := &statusRecorder{ResponseWriter: rw}
		h.ServeHTTP(sw, r)
		if r.URL.Path == witness.PathAddCheckpoint && sw.status == 0 {
			n.Add(1)
		}
	}))
	b.Cleanup(srv.Close)
	c, err := witness.NewClient(srv.URL, key, nil)
	if err != nil {
		b.Fatal(err)
	}
	return c, n.Load
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

// BenchmarkVerify verifies a log of WARDEN_BENCH_VERIFY_N events (default 1,000,000) with
// checkpoints every 100,000. The log is generated once into WARDEN_BENCH_DIR (default the
// system temp dir) and reused by later runs.
func BenchmarkVerify(b *testing.B) {
	n := int64(1_000_000)
	if s := os.Getenv("WARDEN_BENCH_VERIFY_N"); s != "" {
		n, _ = strconv.ParseInt(s, 10, 64)
	}
	dir := os.Getenv("WARDEN_BENCH_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, fmt.Sprintf("warden-audit-verify-v2-%d", n))
	ctx := context.Background()
	db := openSQLiteDB(b, filepath.Join(dir, "warden.db"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	st, err := audit.NewSQLite(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	signer, verifier, err := audit.LoadOrCreateKeys(filepath.Join(dir, "audit"), audit.NoteName("example.org"))
	if err != nil {
		b.Fatal(err)
	}
	have, err := st.Size(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if have < n {
		l, err := audit.Open(ctx, audit.Config{Storage: st, Signer: signer})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("generating %d events in %s", n-have, dir)
		for i := have; i < n; {
			batch := make([]audit.Entry, 0, 1000)
			for ; i < n && len(batch) < cap(batch); i++ {
				e, err := audit.EntryOf(decisionEvent(int(i)))
				if err != nil {
					b.Fatal(err)
				}
				batch = append(batch, e)
			}
			if _, err := st.AppendBatch(ctx, batch); err != nil {
				b.Fatal(err)
			}
			if i%100_000 == 0 || i == n {
				if _, err := l.Checkpoint(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		l.Close()
	}
	b.ResetTimer()
	for b.Loop() {
		rep, err := audit.Verify(ctx, st, verifier)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Size != n {
			b.Fatalf("verified %d records, want %d", rep.Size, n)
		}
	}
	b.ReportMetric(float64(n), "events")
}

// BenchmarkSpoolAppend measures a gate's spool: Sync (fsync before returning, group
// commit among concurrent callers) against Batched (fsync within 10 ms), 64 callers per
// core.
func BenchmarkSpoolAppend(b *testing.B) {
	for _, bc := range []struct {
		name string
		d    audit.Durability
	}{{"sync", audit.Sync}, {"batched-10ms", audit.Batched}} {
		b.Run(bc.name, func(b *testing.B) {
			sp, err := audit.OpenSpool(audit.SpoolConfig{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer sp.Close()
			var seq atomic.Int64
			b.SetParallelism(64)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := sp.Append(context.Background(), decisionEvent(int(seq.Add(1))), bc.d); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
		})
	}
}
