package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/sdk"
)

// recoverAttempt is one hand-made recovery (POST /v1/recover/challenge, then
// /v1/recover), with the knobs an attacker turns.
type recoverAttempt struct {
	chain     [][]byte      // the SVID presented as the expired one
	key       crypto.Signer // signs both proofs
	tpm       sdk.Attester  // quotes the nonce
	id        string        // the statements' spiffe_id
	proofTime time.Time     // of the challenge proof; zero: now
	otherCSR  bool          // the issue proof names a different CSR than the one sent
}

func chainOf(s *x509svid.SVID) [][]byte {
	out := make([][]byte, len(s.Certificates))
	for i, c := range s.Certificates {
		out[i] = c.Raw
	}
	return out
}

func proof(t *testing.T, key crypto.Signer, st api.RecoverStatement) json.RawMessage {
	t.Helper()
	payload, _ := json.Marshal(st)
	env, err := attest.SignEnvelope(key, api.RecoverPayloadType, payload)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(env)
	return b
}

// recoverRaw runs the attempt against f with a server-authenticated client.
func (f *fixture) recoverRaw(t *testing.T, a recoverAttempt) (*api.SVIDResponse, error) {
	t.Helper()
	ctx := context.Background()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.TLSClientConfig(f.srv.CA().X509Bundle(), tlsconfig.AuthorizeAny())}}
	defer hc.CloseIdleConnections()
	pt := a.proofTime
	if pt.IsZero() {
		pt = time.Now()
	}
	var ch api.AttestChallengeResponse
	if err := api.Do(ctx, hc, http.MethodPost, f.url+api.PathRecoverChallenge, api.RecoverChallengeRequest{SVID: a.chain,
		Proof: proof(t, a.key, api.RecoverStatement{SPIFFEID: a.id, Purpose: api.RecoverPurposeChallenge, Time: pt})}, &ch); err != nil {
		return nil, err
	}
	ev, err := a.tpm.Evidence(ctx, ch.Nonce)
	if err != nil {
		t.Fatal(err)
	}
	evJSON, _ := ev.Marshal()
	slot, _ := json.Marshal(api.AttestationEvidence{Evidence: evJSON})
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, newKey)
	named := csr
	if a.otherCSR {
		named, _ = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, newKey)
	}
	sum := sha256.Sum256(named)
	var resp api.SVIDResponse
	err = api.Do(ctx, hc, http.MethodPost, f.url+api.PathRecover, api.RecoverRequest{SVID: a.chain, CSR: csr, Evidence: slot,
		Proof: proof(t, a.key, api.RecoverStatement{SPIFFEID: a.id, Purpose: api.RecoverPurposeIssue, Time: time.Now(), Nonce: ch.Nonce, CSRSHA256: sum[:]})}, &resp)
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

func wantRefusal(t *testing.T, what string, err error, code, contains string) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != code || !strings.Contains(ae.Message, contains) {
		t.Errorf("%s: %v; want %s (%q)", what, err, code, contains)
	}
}

// TestRecoverExpiredSVID: a TPM-attested agent whose SVID expired recovers with the
// expired SVID, a proof by its key and a fresh quote (sdk.Source.Recover); every
// attempt missing one of the three, or with the wrong one, is refused with its reason;
// an agent without a TPM is told to use `warden token create`.
func TestRecoverExpiredSVID(t *testing.T) {
	f := start(t, options{ttl: 3 * time.Second, att: attestOn()})
	ctx := context.Background()
	pay := f.attestedEntry(t, "payments", "transactional", "payment-release", 21)
	if err := f.enrollAttested(t, pay); err != nil {
		t.Fatal(err)
	}
	other := f.attestedEntry(t, "logistics", "transactional", "shipping", 22)
	if err := f.enrollAttested(t, other); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.CreateEntry(ctx, api.Entry{Name: "forecast", Role: "forecasting", Class: "advisory", Zone: "cloud"}); err != nil {
		t.Fatal(err)
	}
	fsvid, _, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: f.url, Token: f.token(t, "forecast", time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	old := mustSVID(pay.src)
	payID := old.ID.String()

	// Still valid: renew instead.
	_, err = f.recoverRaw(t, recoverAttempt{chain: chainOf(old), key: old.PrivateKey, tpm: pay.tpm, id: payID})
	wantRefusal(t, "still-valid SVID", err, api.ReasonBadRequest, "renew it over mTLS")

	time.Sleep(time.Until(old.Certificates[0].NotAfter) + 100*time.Millisecond)
	if err := pay.src.Renew(ctx); err == nil {
		t.Fatal("renewed over mTLS with an expired SVID")
	}

	// Attacks on the expired SVID.
	otherSVID := mustSVID(other.src)
	selfSigned := func() [][]byte { // claims payments' SPIFFE ID, chains to nothing
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "payments"}, URIs: old.Certificates[0].URIs,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(-time.Minute), KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
		if err != nil {
			t.Fatal(err)
		}
		return [][]byte{der}
	}
	for _, tc := range []struct {
		defect   string
		a        recoverAttempt
		code     string
		contains string
	}{
		{"proof by another agent's key", recoverAttempt{chain: chainOf(old), key: otherSVID.PrivateKey, tpm: pay.tpm, id: payID}, api.ReasonRecoveryProof, "not signed by the SVID's key"},
		{"proof for another identity", recoverAttempt{chain: chainOf(old), key: old.PrivateKey, tpm: pay.tpm, id: otherSVID.ID.String()}, api.ReasonRecoveryProof, "the proof is for"},
		{"stale challenge proof", recoverAttempt{chain: chainOf(old), key: old.PrivateKey, tpm: pay.tpm, id: payID, proofTime: time.Now().Add(-10 * time.Minute)}, api.ReasonRecoveryProof, "from the server's clock"},
		{"self-signed certificate claiming the identity", recoverAttempt{chain: selfSigned(), key: old.PrivateKey, tpm: pay.tpm, id: payID}, api.ReasonRecoveryProof, "not one this trust domain issued"},
		{"quote by another TPM", recoverAttempt{chain: chainOf(old), key: old.PrivateKey, tpm: other.tpm, id: payID}, api.ReasonAttestation, ""},
		{"issue proof naming another CSR", recoverAttempt{chain: chainOf(old), key: old.PrivateKey, tpm: pay.tpm, id: payID, otherCSR: true}, api.ReasonRecoveryProof, "does not name this CSR"},
		{"agent without a TPM", recoverAttempt{chain: chainOf(fsvid), key: fsvid.PrivateKey, tpm: pay.tpm, id: fsvid.ID.String()}, api.ReasonRecoveryImpossible, "warden token create --entry forecast"},
	} {
		_, err := f.recoverRaw(t, tc.a)
		wantRefusal(t, tc.defect, err, tc.code, tc.contains)
	}
	entries, err := f.admin.ListEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.SPIFFEID == payID && e.Status != "active" {
			t.Errorf("refused recoveries changed the agent's status to %q", e.Status)
		}
	}

	// The real recovery: the SDK, as enroll --watch runs it.
	if err := pay.src.Recover(ctx); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	now := mustSVID(pay.src)
	if now.ID != old.ID || !time.Now().Before(now.Certificates[0].NotAfter) {
		t.Fatalf("recovered %s valid until %s", now.ID, now.Certificates[0].NotAfter)
	}
	if _, _, err := x509svid.Verify(now.Certificates, f.srv.CA().X509Bundle()); err != nil {
		t.Fatalf("recovered SVID does not verify: %v", err)
	}
	if err := pay.src.Renew(ctx); err != nil {
		t.Fatalf("renewal after recovery: %v", err)
	}
	// The old expired SVID is no longer the newest: it cannot recover again.
	_, err = f.recoverRaw(t, recoverAttempt{chain: chainOf(old), key: old.PrivateKey, tpm: pay.tpm, id: payID})
	wantRefusal(t, "older SVID after a newer was issued", err, api.ReasonRecoveryImpossible, "not the newest")

	// A revoked identity never recovers.
	if _, err := f.admin.ChangeTrust(ctx, "revoke", api.TrustChange{ID: otherSVID.ID.String(), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(otherSVID.Certificates[0].NotAfter) + 100*time.Millisecond)
	_, err = f.recoverRaw(t, recoverAttempt{chain: chainOf(otherSVID), key: otherSVID.PrivateKey, tpm: other.tpm, id: otherSVID.ID.String()})
	wantRefusal(t, "revoked identity", err, api.ReasonIdentityRevoked, "")
}

// TestRecoverWindow: an SVID expired longer ago than --recover-window, or with recovery
// off, needs a new join token.
func TestRecoverWindow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		window   time.Duration
		contains string
	}{{"expired too long ago", time.Second, "more than 1s ago"}, {"recovery off", -1, "recovery of expired SVIDs is off"}} {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, options{ttl: 2 * time.Second, att: attestOn(), recoverWindow: tc.window})
			a := f.attestedEntry(t, "payments", "transactional", "payment-release", 23)
			if err := f.enrollAttested(t, a); err != nil {
				t.Fatal(err)
			}
			sv := mustSVID(a.src)
			time.Sleep(time.Until(sv.Certificates[0].NotAfter) + 1500*time.Millisecond)
			err := a.src.Recover(context.Background())
			wantRefusal(t, tc.name, err, api.ReasonRecoveryImpossible, tc.contains)
			if !strings.Contains(err.Error(), "warden token create") {
				t.Errorf("the refusal does not name warden token create: %v", err)
			}
		})
	}
}
