package attest_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/attest/tpmsim"
)

// Example shows the whole exchange as the control plane and the agent run it: enrollment
// with credential activation, a periodic renewal, a binary replaced after start, and the
// fail-closed table deciding what happens to a regulated agent.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "attest-example")
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "agent")
	os.WriteFile(bin, []byte("agent build 7"), 0o755)

	// Build pipeline: provenance for the binary, signed by the build key.
	buildPub, buildKey, _ := ed25519.GenerateKey(rand.Reader)
	binDigest, _ := attest.FileDigest(bin)
	st, _ := attest.NewProvenance("compliance-agent", binDigest, map[string]any{})
	env, _ := attest.SignStatement(buildKey, st)

	// Operator: the entry's reference values.
	signerPEM, _ := attest.MarshalPublicKeyPEM(buildPub)
	refs := attest.ReferenceValues{Binaries: []string{binDigest}, BuildSigners: []string{signerPEM}}

	// Agent: the attester over the TPM (the simulator here; attest.DeviceOpener{} on hardware).
	att, err := attest.NewAttester(attest.AttesterConfig{Opener: tpmsim.Opener{Seed: 7}, Reopen: true,
		Sources: []attest.Source{{Kind: attest.KindBinary, Path: bin}}, Provenance: env})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer att.Close()

	// Control plane.
	v := attest.NewVerifier(attest.Config{})
	nonces := attest.NewMemoryNonces(time.Minute, 8)
	now := time.Now()
	const agent = "spiffe://example.org/agent/compliance"

	// Enrollment: credential challenge + nonce -> activation + evidence -> appraisal.
	cc, pending, _ := v.MakeCredential(att.EKPublic(), att.AKPublic())
	ch, _ := nonces.Issue(ctx, agent, now)
	secret, _ := att.ActivateCredential(ctx, cc)
	ev, _ := att.Evidence(ctx, ch.Nonce)
	raw, _ := ev.Marshal()
	issued, err := nonces.Consume(ctx, agent, ev.Nonce, now)
	if err != nil {
		fmt.Println(attest.ReasonForNonceError(err))
		return
	}
	res := v.Appraise(attest.Request{Evidence: raw, Refs: refs, Nonce: issued.Nonce, IssuedAt: issued.IssuedAt,
		Activation: &attest.Activation{Pending: pending, Response: secret}, Now: now})
	fmt.Println("enroll:", res)
	enrolledAK := ev.AKPublic // stored with the entry

	renew := func() attest.Result {
		ch, _ := nonces.Issue(ctx, agent, now)
		ev, _ := att.Evidence(ctx, ch.Nonce)
		raw, _ := ev.Marshal()
		issued, _ := nonces.Consume(ctx, agent, ev.Nonce, now)
		return v.Appraise(attest.Request{Evidence: raw, Refs: refs, Nonce: issued.Nonce,
			IssuedAt: issued.IssuedAt, EnrolledAK: enrolledAK, Now: now})
	}
	fmt.Println("renew:", renew())

	os.WriteFile(bin, []byte("agent build 7 with an implant"), 0o755)
	res = renew()
	fmt.Println("after tampering:", res)
	d := attest.DefaultPolicy().Decide(res, attest.ClassRegulated, "compliance", now)
	fmt.Println("regulated agent:", d.Action, d.Reason)
	// Output:
	// enroll: affirming
	// renew: affirming
	// after tampering: contraindicated:tampered_binary
	// regulated agent: suspend tampered_binary
}
