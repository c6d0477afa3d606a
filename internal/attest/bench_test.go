package attest_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"syscall"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/attest"
)

// BenchmarkAppraise is quote verification plus the whole appraisal of genuine simulator
// evidence (parse, nonce, freshness, AK binding, ECDSA P-256 quote signature, PCR digest,
// event-log replay, reference values, DSSE Ed25519 provenance signature). Target: ≥ 2,000/s
// on one core (-cpu 1).
func BenchmarkAppraise(b *testing.B) {
	fx, ev := loadFixture(b)
	v := attest.NewVerifier(attest.Config{MaxEvidenceAge: time.Hour})
	now := time.Now()
	req := attest.Request{Evidence: fx.Evidence, Refs: fx.Refs, Nonce: ev.Nonce, IssuedAt: now,
		EnrolledAK: ev.AKPublic, Now: now}
	if res := v.Appraise(req); !res.Affirming() {
		b.Fatalf("fixture not affirming: %s %s", res, res.Detail)
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer cpuPerOp(b)()
	for b.Loop() {
		if !v.Appraise(req).Affirming() {
			b.Fatal("not affirming")
		}
	}
}

// BenchmarkAppraiseNoCache is BenchmarkAppraise with the provenance cache off: every
// appraisal verifies the DSSE signature too (first renewal of a new build).
func BenchmarkAppraiseNoCache(b *testing.B) {
	fx, ev := loadFixture(b)
	v := attest.NewVerifier(attest.Config{MaxEvidenceAge: time.Hour, ProvenanceCacheSize: -1})
	now := time.Now()
	req := attest.Request{Evidence: fx.Evidence, Refs: fx.Refs, Nonce: ev.Nonce, IssuedAt: now,
		EnrolledAK: ev.AKPublic, Now: now}
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		if !v.Appraise(req).Affirming() {
			b.Fatal("not affirming")
		}
	}
}

// BenchmarkAppraiseTampered: the refusal path (tampered binary) costs about the same.
func BenchmarkAppraiseTampered(b *testing.B) {
	fx, ev := loadFixture(b)
	v := attest.NewVerifier(attest.Config{MaxEvidenceAge: time.Hour})
	now := time.Now()
	refs := fx.Refs
	refs.Binaries = []string{"sha256:" + hexA}
	req := attest.Request{Evidence: fx.Evidence, Refs: refs, Nonce: ev.Nonce, IssuedAt: now,
		EnrolledAK: ev.AKPublic, Now: now}
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		if v.Appraise(req).Reason != attest.ReasonTamperedBinary {
			b.Fatal("not refused")
		}
	}
}

// BenchmarkBaselineSignatureVerify is the named baseline: the two signature verifications
// every appraisal must do (ECDSA P-256 for the quote, Ed25519 for the provenance) with
// nothing else. Appraise / baseline is the overhead of everything else.
func BenchmarkBaselineSignatureVerify(b *testing.B) {
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 150)
	d := sha256.Sum256(msg)
	es, _ := ecdsa.SignASN1(rand.Reader, ek, d[:])
	ps := ed25519.Sign(priv, msg)
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		d := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(&ek.PublicKey, d[:], es) || !ed25519.Verify(pub, msg, ps) {
			b.Fatal("verify")
		}
	}
}

// BenchmarkEvidenceSimulator is the attester side against the simulator (quote + PCR read
// + re-measure), for reference; a hardware TPM quote takes tens to hundreds of ms.
func BenchmarkEvidenceSimulator(b *testing.B) {
	dir := b.TempDir()
	bin := dir + "/agent"
	writeFile(b, bin, "agent")
	r, err := attest.NewAttester(attest.AttesterConfig{Opener: simOpener(50),
		Sources: []attest.Source{{Kind: attest.KindBinary, Path: bin}}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	nonce := make([]byte, 32)
	for b.Loop() {
		if _, err := r.Evidence(b.Context(), nonce); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuPerOp reports the process CPU time (user+system, getrusage) per operation as
// "cpu-ns/op" and the implied single-core rate as "ops/cpu-s". On a shared machine wall
// time per op inflates with other load; CPU time is what one core spends. Run with -cpu 1.
func cpuPerOp(b *testing.B) func() {
	start := cpuNow()
	return func() {
		d := cpuNow() - start
		if b.N > 0 && d > 0 {
			b.ReportMetric(float64(d)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(b.N)/(float64(d)/1e9), "ops/cpu-s")
		}
	}
}

func cpuNow() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
