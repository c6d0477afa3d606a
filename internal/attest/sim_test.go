package attest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/attest/tpmsim"
)

// rig is one simulated agent host: a TPM (simulator with a fixed seed), the agent's binary
// and config files, a build key, the entry's reference values, and the verifier side.
type rig struct {
	t        *testing.T
	seed     int64
	bin, cfg string
	buildKey ed25519.PrivateKey
	refs     attest.ReferenceValues
	att      *attest.Attester
	v        *attest.Verifier
	nonces   *attest.MemoryNonces
	now      time.Time
}

const subject = "spiffe://example.org/agent/procurement"

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newRig(t *testing.T, seed int64) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{t: t, seed: seed, bin: filepath.Join(dir, "agent"), cfg: filepath.Join(dir, "agent.yaml"),
		v:      attest.NewVerifier(attest.Config{MaxEvidenceAge: time.Minute}),
		nonces: attest.NewMemoryNonces(time.Minute, 64), now: time.Now()}
	writeFile(t, r.bin, "\x7fELF approved agent build 1.4.2")
	writeFile(t, r.cfg, "catalog: default\nzone: eu\n")
	_, r.buildKey, _ = ed25519.GenerateKey(rand.Reader)
	binDigest, _ := attest.FileDigest(r.bin)
	cfgDigest, _ := attest.FileDigest(r.cfg)
	pemKey, err := attest.MarshalPublicKeyPEM(r.buildKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	r.refs = attest.ReferenceValues{Binaries: []string{binDigest}, Configs: []string{cfgDigest},
		BuildSigners: []string{pemKey}}
	st, err := attest.NewProvenance("procurement-agent", binDigest, map[string]any{
		"buildDefinition": map[string]any{"buildType": "https://warden.example/build/v1"}})
	if err != nil {
		t.Fatal(err)
	}
	env, err := attest.SignStatement(r.buildKey, st)
	if err != nil {
		t.Fatal(err)
	}
	r.att, err = attest.NewAttester(attest.AttesterConfig{Opener: tpmsim.Opener{Seed: seed}, Reopen: true,
		Sources:    []attest.Source{{Kind: attest.KindBinary, Path: r.bin}, {Kind: attest.KindConfig, Path: r.cfg}},
		Provenance: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.att.Close() })
	return r
}

// challenge issues a nonce and has the attester answer it.
func (r *rig) evidence() (attest.Challenge, []byte) {
	r.t.Helper()
	ch, err := r.nonces.Issue(context.Background(), subject, r.now)
	if err != nil {
		r.t.Fatal(err)
	}
	ev, err := r.att.Evidence(context.Background(), ch.Nonce)
	if err != nil {
		r.t.Fatal(err)
	}
	b, err := ev.Marshal()
	if err != nil {
		r.t.Fatal(err)
	}
	return ch, b
}

// enroll runs the enrollment exchange: credential challenge, activation, quote.
func (r *rig) enroll() (attest.Result, []byte) {
	r.t.Helper()
	cc, pending, err := r.v.MakeCredential(r.att.EKPublic(), r.att.AKPublic())
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := r.att.ActivateCredential(context.Background(), cc)
	if err != nil {
		r.t.Fatal(err)
	}
	ch, ev := r.evidence()
	if _, err := r.nonces.Consume(context.Background(), subject, ch.Nonce, r.now); err != nil {
		r.t.Fatal(err)
	}
	res := r.v.Appraise(attest.Request{Evidence: ev, Refs: r.refs, Nonce: ch.Nonce, IssuedAt: ch.IssuedAt,
		Activation: &attest.Activation{Pending: pending, Response: resp}, Now: r.now})
	return res, r.att.AKPublic()
}

func (r *rig) renew(enrolledAK []byte) attest.Result {
	r.t.Helper()
	ch, ev := r.evidence()
	return r.v.Appraise(attest.Request{Evidence: ev, Refs: r.refs, Nonce: ch.Nonce, IssuedAt: ch.IssuedAt,
		EnrolledAK: enrolledAK, Now: r.now})
}

func wantReason(t *testing.T, res attest.Result, reason attest.Reason) {
	t.Helper()
	if res.Reason != reason {
		t.Fatalf("result %s (%s), want reason %q", res, res.Detail, reason)
	}
	if reason != attest.ReasonNone && res.Affirming() {
		t.Fatalf("refused result is affirming: %+v", res)
	}
	if reason != attest.ReasonNone && res.Tier == attest.TierAffirming {
		t.Fatalf("refused result has tier affirming: %+v", res)
	}
}

func TestSimulatorHappyPathAffirming(t *testing.T) {
	r := newRig(t, 1)
	res, ak := r.enroll()
	wantReason(t, res, attest.ReasonNone)
	if !res.Affirming() || res.TrustVector.InstanceIdentity != attest.ClaimTrustworthyInstance ||
		res.TrustVector.Executables != attest.ClaimApprovedRuntime || res.TrustVector.Configuration != attest.ClaimApprovedConfig {
		t.Fatalf("enrollment result %+v", res)
	}
	if res.AKName == "" || res.Binary != r.refs.Binaries[0] || res.EvidenceDigest == "" {
		t.Fatalf("result fields %+v", res)
	}
	// Periodic renewal with the enrolled AK and a fresh nonce.
	wantReason(t, r.renew(ak), attest.ReasonNone)
	// With the TPM pinned: hardware becomes genuine_hw at enrollment and at renewal.
	r.refs.EKs = []string{res.EKName}
	res, _ = r.enroll()
	wantReason(t, res, attest.ReasonNone)
	if res.TrustVector.Hardware != attest.ClaimGenuineHardware {
		t.Fatalf("pinned EK: hardware claim %d", res.TrustVector.Hardware)
	}
	ch, ev := r.evidence()
	res = r.v.Appraise(attest.Request{Evidence: ev, Refs: r.refs, Nonce: ch.Nonce, IssuedAt: ch.IssuedAt,
		EnrolledAK: ak, EnrolledEK: r.att.EKPublic(), Now: r.now})
	wantReason(t, res, attest.ReasonNone)
	if res.TrustVector.Hardware != attest.ClaimGenuineHardware {
		t.Fatalf("pinned EK at renewal: hardware claim %d", res.TrustVector.Hardware)
	}
}

func TestSimulatorRefusals(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, r *rig) attest.Result
		want attest.Reason
	}{
		{"tampered-binary-after-start", func(t *testing.T, r *rig) attest.Result {
			_, ak := r.enroll()
			writeFile(t, r.bin, "\x7fELF agent with an implant") // changed on disk after start
			return r.renew(ak)
		}, attest.ReasonTamperedBinary},
		{"unapproved-config", func(t *testing.T, r *rig) attest.Result {
			_, ak := r.enroll()
			writeFile(t, r.cfg, "catalog: attacker\n")
			return r.renew(ak)
		}, attest.ReasonUnapprovedConfig},
		{"replayed-quote-old-nonce", func(t *testing.T, r *rig) attest.Result {
			_, ak := r.enroll()
			_, old := r.evidence()                                          // captured by an attacker
			ch, err := r.nonces.Issue(context.Background(), subject, r.now) // the next challenge
			if err != nil {
				t.Fatal(err)
			}
			return r.v.Appraise(attest.Request{Evidence: old, Refs: r.refs, Nonce: ch.Nonce,
				IssuedAt: ch.IssuedAt, EnrolledAK: ak, Now: r.now})
		}, attest.ReasonQuoteReplay},
		{"wrong-ak", func(t *testing.T, r *rig) attest.Result {
			// The entry enrolled the AK of another TPM (seed 99); this TPM's quote is not
			// signed by it.
			other := newRig(t, 99)
			otherAK := other.att.AKPublic()
			return r.renew(otherAK)
		}, attest.ReasonWrongAK},
		{"unknown-build-signer", func(t *testing.T, r *rig) attest.Result {
			_, ak := r.enroll()
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			pemKey, _ := attest.MarshalPublicKeyPEM(k.Public())
			r.refs.BuildSigners = []string{pemKey} // the entry pins another build key
			return r.renew(ak)
		}, attest.ReasonUnknownBuildSigner},
		{"approved-new-binary-without-its-provenance", func(t *testing.T, r *rig) attest.Result {
			_, ak := r.enroll() // verifies and caches the provenance of build 1
			writeFile(t, r.bin, "\x7fELF approved agent build 1.4.3")
			d, _ := attest.FileDigest(r.bin)
			r.refs.Binaries = append(r.refs.Binaries, d) // approved, but its provenance never shipped
			return r.renew(ak)
		}, attest.ReasonBadProvenance},
		{"stale-evidence", func(t *testing.T, r *rig) attest.Result {
			_, ak := r.enroll()
			ch, ev := r.evidence()
			return r.v.Appraise(attest.Request{Evidence: ev, Refs: r.refs, Nonce: ch.Nonce,
				IssuedAt: ch.IssuedAt, EnrolledAK: ak, Now: r.now.Add(2 * time.Minute)})
		}, attest.ReasonStaleEvidence},
		{"no-activation-no-enrolled-ak", func(t *testing.T, r *rig) attest.Result {
			ch, ev := r.evidence()
			return r.v.Appraise(attest.Request{Evidence: ev, Refs: r.refs, Nonce: ch.Nonce,
				IssuedAt: ch.IssuedAt, Now: r.now})
		}, attest.ReasonAKNotInEKTPM},
		{"ek-pin-without-enrolled-ek-fails-closed", func(t *testing.T, r *rig) attest.Result {
			res, ak := r.enroll()
			r.refs.EKs = []string{res.EKName} // the right EK, but renewal cannot bind it
			return r.renew(ak)
		}, attest.ReasonUnknownEK},
		{"evidence-ek-swapped-at-renewal", func(t *testing.T, r *rig) attest.Result {
			_, ak := r.enroll()
			other := newRig(t, 98)
			otherEK := other.att.EKPublic()
			other.att.Close()
			ch, ev := r.evidence()
			return r.v.Appraise(attest.Request{Evidence: ev, Refs: r.refs, Nonce: ch.Nonce, IssuedAt: ch.IssuedAt,
				EnrolledAK: ak, EnrolledEK: otherEK, Now: r.now})
		}, attest.ReasonUnknownEK},
		{"unpinned-ek", func(t *testing.T, r *rig) attest.Result {
			_, ak := r.enroll()
			r.refs.EKs = []string{"sha256:" + string(make([]byte, 0)) + "00000000000000000000000000000000000000000000000000000000000000aa"}
			return r.renew(ak)
		}, attest.ReasonUnknownEK},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, int64(10+i))
			wantReason(t, tc.run(t, r), tc.want)
		})
	}
}

// TestSimulatorAKNotInEKTPM: the attester presents the EK of one TPM (seed 2, the
// legitimate machine) with an AK of another (seed 3). The credential is encrypted to the
// first TPM's EK and bound to the AK's name; the second TPM cannot release it.
func TestSimulatorAKNotInEKTPM(t *testing.T) {
	legit := newRig(t, 2)
	legitEK := legit.att.EKPublic()
	legit.att.Close()

	r := newRig(t, 3)
	cc, pending, err := r.v.MakeCredential(legitEK, r.att.AKPublic())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := r.att.ActivateCredential(context.Background(), cc)
	if err == nil {
		t.Fatalf("ActivateCredential on the wrong TPM succeeded")
	}
	ch, ev := r.evidence()
	// The evidence's EK is the attacker TPM's; the activation was for the legitimate EK:
	res := r.v.Appraise(attest.Request{Evidence: ev, Refs: r.refs, Nonce: ch.Nonce, IssuedAt: ch.IssuedAt,
		Activation: &attest.Activation{Pending: pending, Response: resp}, Now: r.now})
	wantReason(t, res, attest.ReasonAKNotInEKTPM)
	// A guessed response is refused too, even with evidence naming the legitimate EK.
	res = r.v.Appraise(attest.Request{Evidence: ev, Refs: r.refs, Nonce: ch.Nonce, IssuedAt: ch.IssuedAt,
		Activation: &attest.Activation{Pending: pending, Response: make([]byte, 32)}, Now: r.now})
	wantReason(t, res, attest.ReasonAKNotInEKTPM)
}

func simOpener(seed int64) attest.Opener { return tpmsim.Opener{Seed: seed} }
