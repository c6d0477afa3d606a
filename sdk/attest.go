package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/attest/tpmsim"
)

// Attester is the agent's TPM as the SDK uses it (the RATS attester role). The value
// OpenTPM returns implements it; tests and tools may wrap one.
type Attester interface {
	EKPublic() []byte
	AKPublic() []byte
	// ActivateCredential proves the AK lives in the EK's TPM (enrollment).
	ActivateCredential(ctx context.Context, ch attest.CredentialChallenge) ([]byte, error)
	// Evidence re-measures the agent and quotes PCR 23 over the server's nonce.
	Evidence(ctx context.Context, nonce []byte) (*attest.Evidence, error)
}

var _ Attester = (*attest.Attester)(nil)

// TPMConfig says which TPM to use and what to measure into it.
type TPMConfig struct {
	// TPM: "sim" (the go-tpm-tools simulator, seeded with SimSeed: one seed, one TPM
	// identity), "device" (/dev/tpmrm0) or a device path. Default "device".
	TPM     string
	SimSeed int64
	// Binary is the agent executable measured as kind "binary"; default: this process's
	// executable (os.Executable).
	Binary string
	// Configs and Manifests are measured as kinds "config" and "manifest".
	Configs, Manifests []string
	// Provenance is a DSSE envelope file (in-toto provenance of Binary) sent with every
	// quote; optional unless the entry pins build signers.
	Provenance string
}

// OpenTPM opens the agent's TPM, creates its EK and AK, and measures the sources into
// PCR 23. Close it when done. With the simulator, several agents in one process work
// (each session reopens the simulator and replays its own log; docs/attestation.md).
func OpenTPM(cfg TPMConfig) (*attest.Attester, error) {
	var opener attest.Opener
	reopen := false
	switch cfg.TPM {
	case "sim":
		opener, reopen = tpmsim.Opener{Seed: cfg.SimSeed}, true
	case "", "device":
		opener = attest.DeviceOpener{}
	default:
		opener = attest.DeviceOpener{Path: cfg.TPM}
	}
	bin := cfg.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("sdk: %w", err)
		}
		bin = exe
	}
	ac := attest.AttesterConfig{Opener: opener, Reopen: reopen, Sources: []attest.Source{{Kind: attest.KindBinary, Path: bin}}}
	for _, c := range cfg.Configs {
		ac.Sources = append(ac.Sources, attest.Source{Kind: attest.KindConfig, Path: c})
	}
	for _, m := range cfg.Manifests {
		ac.Sources = append(ac.Sources, attest.Source{Kind: attest.KindManifest, Path: m})
	}
	if cfg.Provenance != "" {
		b, err := os.ReadFile(cfg.Provenance)
		if err != nil {
			return nil, fmt.Errorf("sdk: provenance: %w", err)
		}
		var env attest.Envelope
		if err := json.Unmarshal(b, &env); err != nil {
			return nil, fmt.Errorf("sdk: provenance %s: %w", cfg.Provenance, err)
		}
		ac.Provenance = &env
	}
	a, err := attest.NewAttester(ac)
	if err != nil && cfg.TPM == "sim" && strings.Contains(err.Error(), "requires building with CGO") {
		return nil, fmt.Errorf("sdk: the TPM simulator is not in this build (a static, CGO_ENABLED=0 warden, e.g. the container image): build with cgo (gcc, libssl-dev), or attest with a real TPM (--tpm device): %w", err)
	}
	return a, err
}

// attestSlot runs the challenge round trip (POST /v1/attest/challenge, authenticated by
// token or, when token is "", by client's mTLS) and returns the evidence slot for the
// enroll or renew request. The server answers with a credential challenge only when the
// agent is not yet bound to a TPM (enrollment).
func attestSlot(ctx context.Context, client *http.Client, base, token string, att Attester) ([]byte, error) {
	creq := api.AttestChallengeRequest{Token: token, EKPublic: att.EKPublic(), AKPublic: att.AKPublic()}
	var ch api.AttestChallengeResponse
	if err := postJSON(ctx, client, strings.TrimRight(base, "/")+api.PathAttestChallenge, creq, &ch); err != nil {
		return nil, err
	}
	var slot api.AttestationEvidence
	if len(ch.CredBlob) > 0 {
		secret, err := att.ActivateCredential(ctx, attest.CredentialChallenge{CredBlob: ch.CredBlob, EncSecret: ch.EncSecret})
		if err != nil {
			return nil, fmt.Errorf("sdk: %w", err)
		}
		slot.Activation = secret
	}
	ev, err := att.Evidence(ctx, ch.Nonce)
	if err != nil {
		return nil, fmt.Errorf("sdk: %w", err)
	}
	if slot.Evidence, err = ev.Marshal(); err != nil {
		return nil, fmt.Errorf("sdk: %w", err)
	}
	return json.Marshal(slot)
}

// AttestationReason returns the attestation reason (tampered_binary, quote_replay, ...)
// of an attestation_failed refusal, or "".
func AttestationReason(err error) string {
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Attestation
	}
	return ""
}
