package server

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/truststate"
)

// Recovery of an expired SVID (docs/identity.md, "Recovery"). An agent whose SVID
// expired — typically during a control-plane outage longer than the time left — cannot
// renew over mTLS any more. A TPM-attested agent proves itself again with three things,
// all required:
//
//  1. its last SVID, expired but verifying against the trust bundle at its own NotAfter,
//     not revoked, expired at most Config.RecoverWindow ago, and the newest SVID the
//     control plane recorded for that identity (an older, possibly leaked key cannot be
//     used while a newer one exists);
//  2. a proof by that SVID's private key: a DSSE envelope over an api.RecoverStatement
//     (for the challenge: identity, purpose, time within two minutes; for the issue:
//     also the challenge nonce and the CSR's SHA-256, binding the new key to the old);
//  3. a fresh TPM quote over the challenge's nonce by the AK bound to its entry at
//     enrolment (the same appraisal as a renewal), affirming.
//
// A stolen expired key without the TPM, or the TPM without the key, gets nothing. An
// agent without a TPM binding gets recovery_not_possible, naming `warden token create`.
// Refusals do not apply the class's fail-closed action (an unauthenticated caller must
// not be able to suspend an agent), but an appraisal result is recorded like any other.

// DefaultRecoverWindow is how long after its expiry an SVID may still be recovered.
const DefaultRecoverWindow = 72 * time.Hour

// recoverMaxSkew bounds the difference between a challenge proof's time and the server's.
const recoverMaxSkew = 2 * time.Minute

// maxRecoverChain bounds the certificates of a presented chain (leaf + intermediates).
const maxRecoverChain = 4

// recoverSubject is the nonce subject of a recovering agent (distinct from renewals').
func recoverSubject(id string) string { return "recover:" + id }

func (s *Server) handleRecoverChallenge(w http.ResponseWriter, r *http.Request) {
	var req api.RecoverChallengeRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	entry, leaf, ok := s.recoverable(w, r, req.SVID)
	if !ok {
		return
	}
	st, ok := s.recoverProof(w, r, leaf, entry.SPIFFEID, req.Proof, api.RecoverPurposeChallenge)
	if !ok {
		return
	}
	if d := s.now().Sub(st.Time); d > recoverMaxSkew || d < -recoverMaxSkew {
		s.fail(w, r, http.StatusUnauthorized, api.ReasonRecoveryProof, fmt.Sprintf("proof time %s is more than %s from the server's clock", st.Time.UTC().Format(time.RFC3339), recoverMaxSkew))
		return
	}
	ch, ok := s.issueNonce(w, r, recoverSubject(entry.SPIFFEID), s.now())
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, api.AttestChallengeResponse{Nonce: ch.Nonce, ExpiresAt: ch.ExpiresAt})
}

func (s *Server) handleRecover(w http.ResponseWriter, r *http.Request) {
	var req api.RecoverRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	entry, leaf, ok := s.recoverable(w, r, req.SVID)
	if !ok {
		return
	}
	if len(req.CSR) == 0 {
		s.fail(w, r, http.StatusBadRequest, api.ReasonCSRInvalid, "csr is required")
		return
	}
	st, ok := s.recoverProof(w, r, leaf, entry.SPIFFEID, req.Proof, api.RecoverPurposeIssue)
	if !ok {
		return
	}
	// The proof must name this CSR and the nonce the evidence quotes over: the old key
	// vouches for exactly this new key and this quote.
	sum := sha256.Sum256(req.CSR)
	_, ev, err := parseSlot(req.Evidence)
	if err != nil || subtle.ConstantTimeCompare(st.CSRSHA256, sum[:]) != 1 || subtle.ConstantTimeCompare(st.Nonce, ev.Nonce) != 1 {
		s.fail(w, r, http.StatusUnauthorized, api.ReasonRecoveryProof, "the proof does not name this CSR and the evidence's nonce")
		return
	}
	s.issueFor(w, r, entry, req.CSR, req.Evidence, recoverSubject(entry.SPIFFEID), "recover")
}

// recoverable checks the presented chain (rule 1 above) and returns its entry and leaf.
// On a refusal it has answered.
func (s *Server) recoverable(w http.ResponseWriter, r *http.Request, chain [][]byte) (store.Entry, *x509.Certificate, bool) {
	impossible := func(msg string) (store.Entry, *x509.Certificate, bool) {
		s.fail(w, r, http.StatusForbidden, api.ReasonRecoveryImpossible, msg)
		return store.Entry{}, nil, false
	}
	if s.att == nil {
		return impossible("attestation is off on this control plane, so an expired SVID cannot be recovered: create a new join token (warden token create --entry NAME) and enrol again")
	}
	if s.cfg.RecoverWindow < 0 {
		return impossible("recovery of expired SVIDs is off on this control plane (--recover-window): create a new join token (warden token create --entry NAME) and enrol again")
	}
	if len(chain) == 0 || len(chain) > maxRecoverChain {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, fmt.Sprintf("svid must hold 1..%d certificates, leaf first", maxRecoverChain))
		return store.Entry{}, nil, false
	}
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, fmt.Sprintf("svid[%d]: %v", i, err))
			return store.Entry{}, nil, false
		}
		certs[i] = c
	}
	leaf := certs[0]
	// Verified at its own expiry: it was a valid SVID of this trust domain then.
	id, _, err := x509svid.Verify(certs, s.ca.X509Bundle(), x509svid.WithTime(leaf.NotAfter))
	if err != nil {
		s.fail(w, r, http.StatusUnauthorized, api.ReasonRecoveryProof, "the SVID is not one this trust domain issued: "+err.Error())
		return store.Entry{}, nil, false
	}
	serial := ca.SerialHex(leaf)
	annotate(w, id.String(), serial)
	now := s.now()
	if now.Before(leaf.NotAfter) {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "the SVID is valid until "+leaf.NotAfter.UTC().Format(time.RFC3339)+": renew it over mTLS (POST "+api.PathRenew+")")
		return store.Entry{}, nil, false
	}
	window := s.cfg.RecoverWindow
	if window == 0 {
		window = DefaultRecoverWindow
	}
	if now.Sub(leaf.NotAfter) > window {
		return impossible(fmt.Sprintf("the SVID expired at %s, more than %s ago: create a new join token (warden token create --entry NAME) and enrol again",
			leaf.NotAfter.UTC().Format(time.RFC3339), window))
	}
	_, doc := s.trust.Current()
	if rev, revoked := doc.IsRevoked(id.String(), serial); revoked {
		s.fail(w, r, http.StatusForbidden, api.ReasonIdentityRevoked, id.String()+" is revoked: "+rev.Reason)
		return store.Entry{}, nil, false
	}
	switch doc.Status(id.String()) {
	case truststate.StatusSuspended:
		s.fail(w, r, http.StatusForbidden, api.ReasonIdentitySuspend, id.String()+" is suspended: "+doc.Agents[id.String()].Reason)
		return store.Entry{}, nil, false
	case truststate.StatusReview:
		s.fail(w, r, http.StatusForbidden, api.ReasonIdentityReview, id.String()+" is held for manual review: "+doc.Agents[id.String()].Reason)
		return store.Entry{}, nil, false
	}
	entry, err := s.cfg.Store.GetEntryBySPIFFEID(r.Context(), id.String())
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusForbidden, api.ReasonUnknownIdentity, id.String()+" has no registration entry")
		return store.Entry{}, nil, false
	} else if err != nil {
		s.internal(w, r, err)
		return store.Entry{}, nil, false
	}
	if _, bound := keysFromAttrs(entry.Attrs); !bound {
		return impossible(id.String() + " did not enrol with a TPM, so it cannot prove itself without a valid SVID: create a new join token (warden token create --entry " + entry.Name + ") and enrol again")
	}
	latest, err := s.cfg.Store.LatestSVID(r.Context(), id.String())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.internal(w, r, err)
		return store.Entry{}, nil, false
	}
	if err != nil || latest.Serial != serial {
		return impossible("serial " + serial + " is not the newest SVID issued to " + id.String() + ": only the newest may recover; create a new join token (warden token create --entry " + entry.Name + ") and enrol again")
	}
	return entry, leaf, true
}

// recoverProof verifies the DSSE envelope by the leaf's key (rule 2) and returns its
// statement. On a refusal it has answered.
func (s *Server) recoverProof(w http.ResponseWriter, r *http.Request, leaf *x509.Certificate, id string, raw json.RawMessage, purpose string) (api.RecoverStatement, bool) {
	bad := func(msg string) (api.RecoverStatement, bool) {
		s.fail(w, r, http.StatusUnauthorized, api.ReasonRecoveryProof, msg)
		return api.RecoverStatement{}, false
	}
	var env attest.Envelope
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if len(raw) == 0 || dec.Decode(&env) != nil || dec.More() {
		return bad("proof must be one DSSE envelope")
	}
	if env.PayloadType != api.RecoverPayloadType {
		return bad("proof payload type must be " + api.RecoverPayloadType)
	}
	if _, err := attest.VerifyEnvelope(&env, []crypto.PublicKey{leaf.PublicKey}); err != nil {
		return bad("the proof is not signed by the SVID's key")
	}
	var st api.RecoverStatement
	pd := json.NewDecoder(bytes.NewReader(env.Payload))
	pd.DisallowUnknownFields()
	if pd.Decode(&st) != nil || pd.More() {
		return bad("proof payload is not a recover statement")
	}
	if st.SPIFFEID != id || st.Purpose != purpose {
		return bad("the proof is for " + st.SPIFFEID + " (" + st.Purpose + "), not " + id + " (" + purpose + ")")
	}
	return st, true
}
