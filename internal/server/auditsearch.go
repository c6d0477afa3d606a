package server

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/enroll"
	"github.com/warden-a2a/warden/internal/store"
)

// auditorPrefix is the path of auditor credentials: spiffe://TD/warden/auditor/NAME.
const auditorPrefix = "/warden/auditor/"

// Auditor credentials live 8 h unless asked otherwise, at most ca.MaxTTL.
const defaultAuditorTTL = 8 * time.Hour

// isAuditor reports an auditor credential of this trust domain.
func (s *Server) isAuditor(id spiffeid.ID) bool {
	return id.MemberOf(s.td) && strings.HasPrefix(id.Path(), auditorPrefix)
}

// readOnlyAuditor refuses every request of an auditor credential other than an audit
// search: the credential reads the log and nothing else (no admin read or write, no
// enrollment, renewal, trust state, event shipping or approvals). It reports whether it
// answered.
func (s *Server) readOnlyAuditor(w http.ResponseWriter, r *http.Request) bool {
	id, ok := peerID(r)
	if !ok || !s.isAuditor(id) || r.Method == http.MethodGet && r.URL.Path == api.PathAuditSearch {
		return false
	}
	s.fail(w, r, http.StatusForbidden, api.ReasonForbidden, "an auditor credential is read-only: it may only search the audit log (GET "+api.PathAuditSearch+")")
	return true
}

// auditReader wraps a handler that the admin or an auditor credential may call.
func (s *Server) auditReader(h http.HandlerFunc) http.HandlerFunc {
	return s.agent(func(w http.ResponseWriter, r *http.Request) {
		if id, _ := peerID(r); id != s.adminID && !s.isAuditor(id) {
			s.fail(w, r, http.StatusForbidden, api.ReasonForbidden, "audit search needs the admin or an auditor credential")
			return
		}
		h(w, r)
	})
}

// searchParams are the query parameters GET /v1/audit/search accepts.
var searchParams = map[string]bool{"from": true, "to": true, "agent": true, "action": true, "decision": true,
	"reason": true, "workflow": true, "kind": true, "limit": true, "before": true, "proof": true}

// parseSearch reads the query strictly: unknown or repeated parameters, bad times,
// decisions, kinds and limits are refused.
func parseSearch(q url.Values) (audit.Filter, bool, error) {
	var f audit.Filter
	for k, v := range q {
		if !searchParams[k] {
			return f, false, fmt.Errorf("unknown parameter %q", k)
		}
		if len(v) != 1 {
			return f, false, fmt.Errorf("parameter %q given %d times", k, len(v))
		}
	}
	get := q.Get
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := get(t.name); v != "" {
			tm, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, false, fmt.Errorf("%s: want RFC 3339, got %q", t.name, v)
			}
			*t.dst = tm
		}
	}
	f.Agent, f.Action, f.Reason, f.Workflow = get("agent"), get("action"), get("reason"), get("workflow")
	f.Decision, f.Kind = get("decision"), audit.Kind(get("kind"))
	if f.Decision != "" && f.Decision != audit.DecisionAllow && f.Decision != audit.DecisionDeny {
		return f, false, fmt.Errorf("decision must be allow or deny")
	}
	if f.Kind != "" && !audit.KnownKind(f.Kind) {
		return f, false, fmt.Errorf("unknown kind %q", f.Kind)
	}
	proof := false
	if v := get("proof"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, false, fmt.Errorf("proof must be true or false")
		}
		proof = b
	}
	f.Limit = 100
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > api.MaxAuditSearchLimit || proof && n > api.MaxAuditSearchProofLimit {
			return f, false, fmt.Errorf("limit must be 1..%d (1..%d with proof)", api.MaxAuditSearchLimit, api.MaxAuditSearchProofLimit)
		}
		f.Limit = n
	} else if proof {
		f.Limit = api.MaxAuditSearchProofLimit
	}
	if v := get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return f, false, fmt.Errorf("before must be a log index above 0")
		}
		f.Before = n
	}
	return f, proof, nil
}

// handleAuditSearch answers an audit search from the log's verified bytes: the store
// selects on its filter columns (which verify checks against the bytes), and every
// record found is decoded from its canonical bytes and must match the filter again, or
// the answer is an error naming it.
func (s *Server) handleAuditSearch(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Audit == nil {
		s.fail(w, r, http.StatusServiceUnavailable, api.ReasonAuditUnavailable, "this control plane keeps no audit log")
		return
	}
	f, withProof, err := parseSearch(r.URL.Query())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
		return
	}
	recs, err := s.cfg.Audit.Query(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := api.AuditSearchResponse{Events: make([]api.AuditSearchResult, 0, len(recs))}
	idx := make([]int64, len(recs))
	for i, rec := range recs {
		ev, err := audit.ParseEvent(rec.Data)
		if err != nil || !f.Match(&ev) || ev.ID != rec.ID {
			s.log.Error("audit search: a record's filter columns differ from its bytes", "index", rec.Index)
			s.fail(w, r, http.StatusInternalServerError, api.ReasonAuditInconsistent,
				fmt.Sprintf("record %d's filter columns do not match its canonical bytes: the database was edited; run warden audit verify", rec.Index))
			return
		}
		out.Events = append(out.Events, api.AuditSearchResult{Index: rec.Index, ID: rec.ID, Event: rec.Data})
		idx[i] = rec.Index
	}
	if len(recs) == f.Limit && recs[0].Index > 0 {
		out.Before = recs[0].Index
	}
	if withProof && len(recs) > 0 {
		cp, note, proofs, err := s.cfg.Audit.ProveIndexes(r.Context(), idx)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		out.TreeSize, out.Checkpoint = cp.Size, note
		for i, p := range proofs {
			for _, h := range p {
				out.Events[i].Proof = append(out.Events[i].Proof, base64.StdEncoding.EncodeToString(h[:]))
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleCreateAuditor issues an auditor credential (admin only) for the CSR's key, and
// records it, with its audit event, in one transaction.
func (s *Server) handleCreateAuditor(w http.ResponseWriter, r *http.Request) {
	var req api.AuditorRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	if !nameRE.MatchString(req.Name) {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "name must be [a-z0-9][a-z0-9-]{0,62}")
		return
	}
	ttl := defaultAuditorTTL
	if req.TTLSec != 0 {
		ttl = time.Duration(req.TTLSec) * time.Second
	}
	if ttl <= 0 || ttl > ca.MaxTTL {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, fmt.Sprintf("ttl must be between 1s and %s", ca.MaxTTL))
		return
	}
	id := spiffeid.RequireFromPath(s.td, auditorPrefix+req.Name)
	pub, err := enroll.CheckCSR(req.CSR, id)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, csrReason(err), err.Error())
		return
	}
	cert, err := s.ca.SignX509SVID(ca.X509Request{PublicKey: pub, ID: id, TTL: ttl})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	rec := store.SVID{Serial: ca.SerialHex(cert), SPIFFEID: id.String(), Kind: "auditor",
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, IssuedAt: s.now().UTC()}
	ev := adminEvent(r, audit.Event{Kind: audit.KindAuditor, Subject: id.String(), Serial: rec.Serial, Outcome: "issued",
		Reason: "operator_create_auditor", Detail: map[string]string{"not_after": cert.NotAfter.UTC().Format(time.RFC3339)}})
	if err := s.commit(r.Context(), func(ctx context.Context, st ...store.Event) error { return s.cfg.Store.RecordSVID(ctx, rec, st...) }, ev); err != nil {
		s.changeFailed(w, r, err)
		return
	}
	s.log.Info("auditor credential issued", "spiffe_id", id.String(), "serial", rec.Serial, "not_after", cert.NotAfter)
	chain := append([]*x509.Certificate{cert}, s.ca.ChainFor(cert)...)
	writeJSON(w, http.StatusCreated, api.AuditorResponse{SPIFFEID: id.String(), Certificates: string(ca.CertsPEM(chain...)),
		Bundle: string(ca.CertsPEM(s.ca.Root())), ExpiresAt: cert.NotAfter.UTC()})
}
