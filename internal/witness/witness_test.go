package witness_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	_ "modernc.org/sqlite"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/witness"
)

// testLog is an audit log on a fresh SQLite file with its own checkpoint key.
type testLog struct {
	db       *sql.DB
	st       audit.Storage
	log      *audit.Log
	signer   note.Signer
	verifier note.Verifier
}

func newTestLog(t *testing.T, signer note.Signer, verifier note.Verifier, witnesses ...audit.Cosigner) *testLog {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "warden.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := audit.NewSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if signer == nil {
		signer, verifier, err = audit.LoadOrCreateKeys(filepath.Join(t.TempDir(), "audit"), audit.NoteName("example.org"))
		if err != nil {
			t.Fatal(err)
		}
	}
	l, err := audit.Open(ctx, audit.Config{Storage: st, Signer: signer, Witnesses: witnesses})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &testLog{db: db, st: st, log: l, signer: signer, verifier: verifier}
}

func (l *testLog) append(t *testing.T, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		ev := audit.Event{V: 1, ID: fmt.Sprintf("e%d", i), Kind: audit.KindDecision, Time: time.Now(),
			Caller: "spiffe://example.org/agent/a", Callee: "spiffe://example.org/agent/b", Decision: audit.DecisionAllow}
		if _, err := l.log.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// testWitness runs a witness on loopback following the logs with these keys.
type testWitness struct {
	w      *witness.Witness
	store  *witness.Store
	url    string
	key    note.Verifier
	vkey   string
	signer *audit.CosignatureSigner
}

func newTestWitness(t *testing.T, name string, logKeys ...note.Verifier) *testWitness {
	t.Helper()
	skey, vkey, err := audit.GenerateCosignerKey(name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewCosignatureSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	store, err := witness.OpenStore(context.Background(), filepath.Join(t.TempDir(), "witness.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	w, err := witness.New(witness.Config{Signer: signer, Logs: witness.LogsOf(logKeys...), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	return &testWitness{w: w, store: store, url: srv.URL, key: key, vkey: vkey, signer: signer}
}

func (tw *testWitness) client(t *testing.T) *witness.Client {
	t.Helper()
	c, err := witness.NewClient(tw.url, tw.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func post(t *testing.T, url string, body []byte) (int, string, string) {
	t.Helper()
	res, err := http.Post(url+witness.PathAddCheckpoint, "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Content-Type"), string(b)
}

func body(old int64, proof tlog.TreeProof, cp []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.Bytes()
}

func TestWitnessCosignsAGrowingLog(t *testing.T) {
	ctx := context.Background()
	lg := newTestLog(t, nil, nil)
	tw := newTestWitness(t, "witness.example/w1", lg.verifier)
	c := tw.client(t)
	l := newTestLog(t, lg.signer, lg.verifier, c)
	for round, n := range []int{0, 3, 17, 17, 40} {
		l.append(t, int(must(l.st.Size(ctx))), n)
		cp, err := l.log.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		latest, ok, err := tw.w.Latest(ctx, audit.NoteName("example.org"))
		if err != nil || !ok || latest.Size != int64(n) || latest.Root != cp.Root {
			t.Fatalf("round %d: witness holds %+v %v %v, want size %d", round, latest, ok, err, n)
		}
		// The witness's note opens with the log's and the witness's keys.
		nn, err := note.Open(latest.Note, note.VerifierList(l.verifier, tw.key))
		if err != nil || len(nn.Sigs) != 2 {
			t.Fatalf("round %d: witnessed note: %v (%d signatures)", round, err, len(nn.Sigs))
		}
		// The log stored the cosignature beside its checkpoint.
		cs, err := l.st.Cosignatures(ctx, cp.Size)
		if err != nil || len(cs[cp.Size]) != 1 || cs[cp.Size][0].Sig.Name != "witness.example/w1" {
			t.Fatalf("round %d: stored cosignatures %v %v", round, cs, err)
		}
	}
	rep, err := audit.VerifyWith(ctx, l.st, audit.VerifyOptions{Verifiers: []note.Verifier{l.verifier}, Witnesses: []note.Verifier{tw.key},
		Anchors: []audit.Anchor{{Source: tw.url, Note: mustLatest(t, tw)}}})
	if err != nil || rep.Witnessed != 40 || rep.Uncovered != 0 {
		t.Fatalf("verify with the witness: %+v %v", rep, err)
	}
	// An inclusion proof carries the cosignature.
	p, err := l.log.Proof(ctx, "e5")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open([]byte(p.Checkpoint), note.VerifierList(tw.key)); err != nil {
		t.Fatalf("proof's checkpoint has no valid cosignature: %v", err)
	}
}

func TestWitnessRefusesSmallerAndForkedLogs(t *testing.T) {
	ctx := context.Background()
	a := newTestLog(t, nil, nil)
	tw := newTestWitness(t, "witness.example/w1", a.verifier)
	ca := tw.client(t)
	a.append(t, 0, 10)
	cp10, _ := a.log.Checkpoint(ctx)
	a.append(t, 10, 20)
	cp20, _ := a.log.Checkpoint(ctx)
	if _, err := ca.Cosign(ctx, cp20, proveIn(ctx, a.st, cp20.Size)); err != nil {
		t.Fatal(err)
	}
	// A fork: the same key signs another history (a log rolled back to 10 and regrown).
	b := newTestLog(t, a.signer, a.verifier)
	b.append(t, 0, 10)
	b.append(t, 100, 110) // different events after 10
	fork20, _ := b.log.Checkpoint(ctx)
	b.append(t, 110, 115)
	fork25, _ := b.log.Checkpoint(ctx)

	cases := []struct {
		name   string
		body   []byte
		status int
		want   string // in the body
	}{
		{"smaller-checkpoint", body(20, nil, cp10.Note), 400, "old size 20 above"},
		{"smaller-checkpoint-claims-old-10", body(10, nil, cp10.Note), 409, "20\n"},
		{"same-size-other-root", body(20, nil, fork20.Note), 409, "forked"},
		{"larger-but-inconsistent", body(20, must(tlog.ProveTree(25, 20, hashReader(ctx, b.st))), fork25.Note), 422, "does not verify"},
		{"old-size-0-with-a-proof", body(0, tlog.TreeProof{{}}, cp20.Note), 400, "must be empty"},
		{"unknown-origin", body(0, nil, []byte("other.example/log\n1\n"+base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n\n— other.example/log AAAAAAAA\n")), 404, "unknown log origin"},
		{"not-signed-by-the-log", body(20, nil, forge(t, cp20.Note)), 403, "not signed"},
		{"malformed-old-line", []byte("old 020\n\n" + string(cp20.Note)), 400, "malformed"},
		{"no-blank-line", []byte("old 20\n" + string(cp20.Note)), 400, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, ctype, got := post(t, tw.url, tc.body)
			if status != tc.status || !strings.Contains(got, tc.want) {
				t.Fatalf("status %d %q, want %d containing %q", status, got, tc.status, tc.want)
			}
			if status == 409 && tc.want == "20\n" && ctype != "text/x.tlog.size" {
				t.Fatalf("409 Content-Type %q", ctype)
			}
		})
	}
	// The witness still holds size 20 of history a, and kept the fork and the bad proof
	// as evidence.
	latest, _, _ := tw.w.Latest(ctx, audit.NoteName("example.org"))
	if latest.Size != 20 || latest.Root != cp20.Root {
		t.Fatalf("witness state changed by refused checkpoints: %+v", latest)
	}
	refs, err := tw.store.Refusals(ctx)
	if err != nil || len(refs) != 2 || refs[0].Status != 422 || refs[1].Status != 409 {
		t.Fatalf("evidence kept: %d %v", len(refs), err)
	}
	// Through the client: a smaller checkpoint is an AheadError.
	fresh := tw.client(t)
	_, err = fresh.Cosign(ctx, cp10, proveIn(ctx, a.st, cp10.Size))
	var ahead *witness.AheadError
	if !errors.As(err, &ahead) || ahead.Size != 20 {
		t.Fatalf("client submitting a smaller checkpoint: %v", err)
	}
}

func TestWitnessAnswersItsLatestCheckpoint(t *testing.T) {
	ctx := context.Background()
	a := newTestLog(t, nil, nil)
	tw := newTestWitness(t, "witness.example/w1", a.verifier)
	if _, err := witness.FetchLatest(ctx, nil, tw.url, audit.NoteName("example.org")); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("before any checkpoint: %v", err)
	}
	a.append(t, 0, 5)
	cp, _ := a.log.Checkpoint(ctx)
	if _, err := tw.client(t).Cosign(ctx, cp, proveIn(ctx, a.st, cp.Size)); err != nil {
		t.Fatal(err)
	}
	b, err := witness.FetchLatest(ctx, nil, tw.url, audit.NoteName("example.org"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(b, note.VerifierList(a.verifier, tw.key))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("latest checkpoint: %v", err)
	}
}

func proveIn(ctx context.Context, st audit.Storage, size int64) func(int64) (tlog.TreeProof, error) {
	return func(old int64) (tlog.TreeProof, error) { return tlog.ProveTree(size, old, hashReader(ctx, st)) }
}

func hashReader(ctx context.Context, st audit.Storage) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return st.ReadHashes(ctx, idx) })
}

// forge re-signs a checkpoint's text with another key of the same name.
func forge(t *testing.T, msg []byte) []byte {
	t.Helper()
	other, _, err := audit.LoadOrCreateKeys(filepath.Join(t.TempDir(), "audit"), audit.NoteName("example.org"))
	if err != nil {
		t.Fatal(err)
	}
	text := msg[:bytes.Index(msg, []byte("\n\n"))+1]
	out, err := note.Sign(&note.Note{Text: string(text)}, other)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustLatest(t *testing.T, tw *testWitness) []byte {
	t.Helper()
	l, ok, err := tw.w.Latest(context.Background(), audit.NoteName("example.org"))
	if err != nil || !ok {
		t.Fatalf("witness has no checkpoint: %v", err)
	}
	return l.Note
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
