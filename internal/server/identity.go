package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/subtle"
	"errors"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/enroll"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/truststate"
)

func (s *Server) handleBundlePEM(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(ca.CertsPEM(s.ca.Root()))
}

// handleEnroll turns a one-time join token and a CSR (plus evidence) into a first SVID.
// Order matters: the CSR is checked before the token is consumed, so a malformed request
// does not burn a token; a CSR asking for another identity is checked after, and burns it.
func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	var req api.EnrollRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	tok, err := enroll.ParseToken(req.Token)
	if err != nil {
		s.fail(w, r, http.StatusUnauthorized, api.ReasonTokenInvalid, "malformed join token")
		return
	}
	pin := s.ca.RootPin()
	if subtle.ConstantTimeCompare(tok.Pin[:], pin[:]) != 1 {
		s.fail(w, r, http.StatusUnauthorized, api.ReasonTokenInvalid, "join token is for another trust domain")
		return
	}
	if len(req.CSR) == 0 {
		s.fail(w, r, http.StatusBadRequest, api.ReasonCSRInvalid, "csr is required")
		return
	}
	jt, err := s.cfg.Store.ConsumeJoinToken(r.Context(), tok.Hash(), s.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.fail(w, r, http.StatusUnauthorized, api.ReasonTokenInvalid, "unknown join token")
		return
	case errors.Is(err, store.ErrTokenUsed):
		s.fail(w, r, http.StatusUnauthorized, api.ReasonTokenUsed, "join token was already used")
		return
	case errors.Is(err, store.ErrTokenExpired):
		s.fail(w, r, http.StatusUnauthorized, api.ReasonTokenExpired, "join token expired")
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	entry, err := s.cfg.Store.GetEntry(r.Context(), jt.EntryName)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusForbidden, api.ReasonEntryNotFound, "the token's entry was deleted")
		return
	} else if err != nil {
		s.internal(w, r, err)
		return
	}
	s.issueFor(w, r, entry, req.CSR, req.Evidence, enrollSubject(tok), "enroll")
}

// handleRenew issues a fresh SVID to an agent authenticated by its current one.
func (s *Server) handleRenew(w http.ResponseWriter, r *http.Request) {
	id, _ := peerID(r)
	var req api.RenewRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	entry, err := s.cfg.Store.GetEntryBySPIFFEID(r.Context(), id.String())
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusForbidden, api.ReasonUnknownIdentity, id.String()+" has no registration entry")
		return
	} else if err != nil {
		s.internal(w, r, err)
		return
	}
	s.issueFor(w, r, entry, req.CSR, req.Evidence, id.String(), "renew")
}

// issueFor checks the identity's trust state, the CSR and (when attestation is on) the
// evidence, then issues. subject is who the attestation nonce was issued to: the join
// token's hash at enrollment, the SPIFFE ID at renewal.
func (s *Server) issueFor(w http.ResponseWriter, r *http.Request, entry store.Entry, csr, evidence []byte, subject, kind string) {
	annotate(w, entry.SPIFFEID, "")
	id, err := spiffeid.FromString(entry.SPIFFEID)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	_, doc := s.trust.Current()
	if rev, ok := doc.IsRevoked(entry.SPIFFEID, ""); ok {
		s.fail(w, r, http.StatusForbidden, api.ReasonIdentityRevoked, entry.SPIFFEID+" is revoked: "+rev.Reason)
		return
	}
	if doc.Status(entry.SPIFFEID) == truststate.StatusSuspended {
		s.fail(w, r, http.StatusForbidden, api.ReasonIdentitySuspend, entry.SPIFFEID+" is suspended: "+doc.Agents[entry.SPIFFEID].Reason)
		return
	}
	// A review hold ends when an operator restores the agent or when it renews with
	// evidence that appraises affirming (recordResultIf lifts the hold); without
	// evidence to appraise it is refused.
	if doc.Status(entry.SPIFFEID) == truststate.StatusReview && (s.att == nil || len(bytes.TrimSpace(evidence)) == 0 || string(bytes.TrimSpace(evidence)) == "null") {
		s.fail(w, r, http.StatusForbidden, api.ReasonIdentityReview, entry.SPIFFEID+" is held for manual review: "+doc.Agents[entry.SPIFFEID].Reason+
			"; renew with fresh evidence or ask an operator to restore it")
		return
	}
	pub, err := enroll.CheckCSR(csr, id)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, csrReason(err), err.Error())
		return
	}
	if s.att != nil && !s.attestIssue(w, r, entry, subject, evidence, kind == "renew") {
		return
	}
	resp, err := s.issue(r.Context(), pub, id, entry.Name, kind)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	annotate(w, entry.SPIFFEID, resp.Serial)
	s.log.Info("svid issued", "kind", kind, "spiffe_id", entry.SPIFFEID, "expires_at", resp.ExpiresAt)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) issue(ctx context.Context, pub crypto.PublicKey, id spiffeid.ID, entryName, kind string) (*api.SVIDResponse, error) {
	cert, err := s.issuer.Issue(ctx, pub, id, entryName, kind)
	if err != nil {
		return nil, err
	}
	return &api.SVIDResponse{
		SPIFFEID:  id.String(),
		Serial:    ca.SerialHex(cert),
		SVIDPEM:   string(ca.CertsPEM(append(ca.CertsOf(cert), s.ca.ChainFor(cert)...)...)),
		BundlePEM: string(ca.CertsPEM(s.ca.Root())),
		ExpiresAt: cert.NotAfter,
	}, nil
}

func (s *Server) handleJWTSVID(w http.ResponseWriter, r *http.Request) {
	id, _ := peerID(r)
	var req api.JWTSVIDRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	_, doc := s.trust.Current()
	if doc.Status(id.String()) == truststate.StatusSuspended {
		s.fail(w, r, http.StatusForbidden, api.ReasonIdentitySuspend, id.String()+" is suspended")
		return
	}
	tok, err := s.ca.SignJWTSVID(id, req.Audience, time.Duration(req.TTLSec)*time.Second, s.jwtIssuer())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, api.JWTSVIDResponse{Token: tok})
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("internal error", "request_id", requestID(r), "err", err)
	s.fail(w, r, http.StatusInternalServerError, api.ReasonInternal, "internal error; see the server log for request "+requestID(r))
}

// csrReason is the reason code of an enroll.CheckCSR error.
func csrReason(err error) string {
	switch {
	case errors.Is(err, enroll.ErrWeakKey):
		return api.ReasonWeakKey
	case errors.Is(err, enroll.ErrCSRIDMismatch):
		return api.ReasonCSRIDMismatch
	}
	return api.ReasonCSRInvalid
}
