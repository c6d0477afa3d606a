package sdk

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/attest"
)

// ErrExpiredNoTPM is returned (wrapped) by Run and Recover when the SVID expired and the
// agent has no TPM to prove itself again: it needs a new join token.
var ErrExpiredNoTPM = errors.New("sdk: the SVID expired and this agent has no TPM attester to recover it: create a new join token (warden token create --entry NAME) and enrol again")

// Recover re-bootstraps an expired SVID without a join token (docs/identity.md,
// "Recovery"): over server-authenticated TLS (the expired certificate is not presented)
// it asks POST /v1/recover/challenge for a nonce, proving possession of the expired
// SVID's key, then POST /v1/recover with a CSR for a fresh key, a quote by the TPM over
// the nonce and a proof by the old key naming both. It needs SourceConfig.Attester;
// without one it returns ErrExpiredNoTPM. A refusal comes back as *RefusedError
// (recovery_not_possible, recovery_proof_invalid, attestation_failed, identity_revoked,
// ...).
func (s *Source) Recover(ctx context.Context) error {
	if s.cfg.Attester == nil {
		return ErrExpiredNoTPM
	}
	s.mu.RLock()
	old, bundle := s.svid, s.bundle
	s.mu.RUnlock()
	chain := make([][]byte, len(old.Certificates))
	for i, c := range old.Certificates {
		chain[i] = c.Raw
	}
	// No client certificate: the server's handshake would refuse the expired one.
	client := &http.Client{Timeout: s.cfg.Timeout, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.TLSClientConfig(bundle, tlsconfig.AuthorizeID(serverID(s.td))),
	}}
	defer client.CloseIdleConnections()
	base := strings.TrimRight(s.cfg.ServerURL, "/")
	now := time.Now().UTC()
	proof, err := recoverProof(old.PrivateKey, api.RecoverStatement{SPIFFEID: old.ID.String(), Purpose: api.RecoverPurposeChallenge, Time: now})
	if err != nil {
		return err
	}
	var ch api.AttestChallengeResponse
	if err := postJSON(ctx, client, base+api.PathRecoverChallenge, api.RecoverChallengeRequest{SVID: chain, Proof: proof}, &ch); err != nil {
		return err
	}
	ev, err := s.cfg.Attester.Evidence(ctx, ch.Nonce)
	if err != nil {
		return fmt.Errorf("sdk: %w", err)
	}
	var slot api.AttestationEvidence
	if slot.Evidence, err = ev.Marshal(); err != nil {
		return fmt.Errorf("sdk: %w", err)
	}
	evidence, err := json.Marshal(slot)
	if err != nil {
		return err
	}
	key, csr, err := newKeyAndCSR(s.cfg.KeyType)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(csr)
	proof, err = recoverProof(old.PrivateKey, api.RecoverStatement{SPIFFEID: old.ID.String(), Purpose: api.RecoverPurposeIssue,
		Time: time.Now().UTC(), Nonce: ch.Nonce, CSRSHA256: sum[:]})
	if err != nil {
		return err
	}
	var resp api.SVIDResponse
	if err := postJSON(ctx, client, base+api.PathRecover, api.RecoverRequest{SVID: chain, CSR: csr, Evidence: evidence, Proof: proof}, &resp); err != nil {
		return err
	}
	svid, nb, err := parseSVIDResponse(&resp, key, true)
	if err != nil {
		return err
	}
	if err := s.install(svid, nb); err != nil {
		return err
	}
	s.log.Info("svid recovered with fresh TPM evidence", "spiffe_id", svid.ID.String(), "expires_at", svid.Certificates[0].NotAfter)
	return nil
}

// recoverProof signs st with the expired SVID's key as a DSSE envelope.
func recoverProof(key crypto.Signer, st api.RecoverStatement) (json.RawMessage, error) {
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	env, err := attest.SignEnvelope(key, api.RecoverPayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("sdk: recover proof: %w", err)
	}
	return json.Marshal(env)
}

// expired reports whether svid's leaf is past its NotAfter at now.
func expired(svid *x509svid.SVID, now time.Time) bool {
	return !now.Before(svid.Certificates[0].NotAfter)
}
