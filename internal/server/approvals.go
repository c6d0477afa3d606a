package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/sqlite"
)

// initApprovals builds the approval service on cfg.ApprovalStore, or on approval_*
// tables in the server's own database when the store is the SQLite or PostgreSQL backend.
// With another backend and no ApprovalStore the approvals API is off: every approvals
// endpoint refuses with approvals_unavailable (fail closed), and the server still starts.
func (s *Server) initApprovals(ctx context.Context) error {
	st := s.cfg.ApprovalStore
	var err error
	if st == nil {
		switch b := s.cfg.Store.(type) {
		case *sqlite.Store:
			st, err = approval.NewSQLite(ctx, b.DB())
		case *postgres.Store:
			st, err = approval.NewPostgres(ctx, b.DB())
		default:
			s.log.Warn("approvals API off: the store backend has no SQL database and Config.ApprovalStore is nil")
			return nil
		}
		if err != nil {
			return err
		}
	}
	hook := s.cfg.OnApprovalEvent
	s.approvals, err = approval.New(approval.Config{Store: st, Now: s.now, OnEvent: func(e approval.Event) {
		// No key, signature or token is in an Event.
		s.log.Info(e.Kind, "approval_id", e.ApprovalID, "requester", e.Requester, "caller", e.Caller,
			"approver", e.Approver, "decision", e.Decision, "action", e.Action, "resource", e.Resource,
			"amount", e.Amount, "currency", e.Currency, "status", e.Status, "reason", e.Reason)
		s.approvalEvent(e)
		if hook != nil {
			hook(e)
		}
	}})
	return err
}

// Approvals returns the approval service.
func (s *Server) Approvals() *approval.Service { return s.approvals }

// approvalRoutes registers the approvals API (docs/approvals.md).
func (s *Server) approvalRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+api.PathApprovals, s.agent(s.approvalsOn(s.handleFileApproval)))
	mux.HandleFunc("POST "+api.PathApprovals+"/{id}/check", s.agent(s.approvalsOn(s.handleCheckApproval)))
	// No client certificate needed: the approver's signature authenticates the decision.
	mux.HandleFunc("POST "+api.PathApprovals+"/{id}/decisions", s.approvalsOn(s.handleDecideApproval))
	mux.HandleFunc("GET "+api.PathAdminApprovals, s.admin(s.approvalsOn(s.handleListApprovals)))
	mux.HandleFunc("GET "+api.PathAdminApprovals+"/{id}", s.admin(s.approvalsOn(s.handleGetApproval)))
	mux.HandleFunc("GET "+api.PathAdminApprovers, s.admin(s.approvalsOn(s.handleListApprovers)))
	mux.HandleFunc("POST "+api.PathAdminApprovers, s.admin(s.approvalsOn(s.handleAddApprover)))
	mux.HandleFunc("DELETE "+api.PathAdminApprovers+"/{name}", s.admin(s.approvalsOn(s.handleDeleteApprover)))
}

// approvalsOn refuses every approvals request while the service is off.
func (s *Server) approvalsOn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.approvals == nil {
			s.fail(w, r, http.StatusServiceUnavailable, api.ReasonApprovalsOff, "the approvals API is not configured on this server")
			return
		}
		h(w, r)
	}
}

// approvalStatus maps approval reason codes to HTTP statuses.
var approvalStatus = map[string]int{
	api.ReasonBadRequest:             http.StatusBadRequest,
	api.ReasonApprovalNotFound:       http.StatusNotFound,
	api.ReasonApproverUnknown:        http.StatusUnauthorized,
	api.ReasonApprovalBadSignature:   http.StatusUnauthorized,
	api.ReasonApprovalStale:          http.StatusUnauthorized,
	api.ReasonSelfApproval:           http.StatusForbidden,
	api.ReasonApprovalForbidden:      http.StatusForbidden,
	api.ReasonApprovalExpired:        http.StatusConflict,
	api.ReasonApprovalDenied:         http.StatusConflict,
	api.ReasonApprovalClosed:         http.StatusConflict,
	api.ReasonAlreadyDecided:         http.StatusConflict,
	api.ReasonApprovalIntentMismatch: http.StatusConflict,
	api.ReasonApprovalBinding:        http.StatusConflict,
	api.ReasonApprovalUsed:           http.StatusConflict,
	api.ReasonApprovalPending:        http.StatusConflict,
}

func (s *Server) approvalFail(w http.ResponseWriter, r *http.Request, err error) {
	var e *approval.Error
	if errors.As(err, &e) {
		st, ok := approvalStatus[e.Reason]
		if !ok {
			st = http.StatusBadRequest
		}
		s.fail(w, r, st, e.Reason, e.Message)
		return
	}
	s.internal(w, r, err)
}

func (s *Server) handleFileApproval(w http.ResponseWriter, r *http.Request) {
	caller, _ := peerID(r)
	var req api.ApprovalRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	if !approval.CanFile(s.td, caller, req.Requester) {
		s.fail(w, r, http.StatusForbidden, api.ReasonApprovalForbidden, "only a gate, or an agent for itself, may file an approval request")
		return
	}
	// A gate registered for one agent files only for calls to that agent.
	if guarded, err := s.guardedBy(r.Context(), caller); err != nil {
		s.internal(w, r, err)
		return
	} else if guarded != "" && req.Audience != guarded {
		s.fail(w, r, http.StatusForbidden, api.ReasonApprovalForbidden, caller.String()+" guards "+guarded+" and may not file approvals for calls to "+req.Audience)
		return
	}
	rec, err := s.approvals.File(r.Context(), caller, req)
	if err != nil {
		s.approvalFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.ApprovalFiled{ID: rec.ID, ExpiresAt: rec.ExpiresAt})
}

func (s *Server) handleCheckApproval(w http.ResponseWriter, r *http.Request) {
	caller, _ := peerID(r)
	var req api.ApprovalCheck
	if !s.readJSON(w, r, &req) {
		return
	}
	check := s.approvals.Check
	if req.Consume {
		check = s.approvals.Consume
	}
	st, err := check(r.Context(), caller, r.PathValue("id"), req.IntentHash)
	if err != nil {
		s.approvalFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleDecideApproval(w http.ResponseWriter, r *http.Request) {
	var req api.ApprovalDecision
	if !s.readJSON(w, r, &req) {
		return
	}
	if req.Statement.ApprovalID != r.PathValue("id") {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "the statement names another approval id than the path")
		return
	}
	st, err := s.approvals.Decide(r.Context(), req.Statement, req.Signature)
	if err != nil {
		s.approvalFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleListApprovals(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	reqs, err := s.approvals.Store().ListRequests(r.Context(), limit)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := make([]api.ApprovalRecord, 0, len(reqs))
	for _, q := range reqs {
		rec, ds, st, err := s.approvals.Get(r.Context(), q.ID)
		if err != nil {
			s.approvalFail(w, r, err)
			return
		}
		out = append(out, approval.APIRecord(rec, ds, st))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetApproval(w http.ResponseWriter, r *http.Request) {
	rec, ds, st, err := s.approvals.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.approvalFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, approval.APIRecord(rec, ds, st))
}

func (s *Server) handleListApprovers(w http.ResponseWriter, r *http.Request) {
	as, err := s.approvals.Store().ListApprovers(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := make([]api.Approver, 0, len(as))
	for _, a := range as {
		out = append(out, approval.APIApprover(a))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleAddApprover(w http.ResponseWriter, r *http.Request) {
	var req api.Approver
	if !s.readJSON(w, r, &req) {
		return
	}
	detail := map[string]string{"spiffe_id": req.SPIFFEID}
	if pub, err := approval.ParsePublicKeyPEM([]byte(req.PublicKey)); err == nil {
		detail["key_id"] = approval.KeyID(pub)
	}
	var a approval.Approver
	err := s.commit(r.Context(), func(ctx context.Context, st ...store.Event) error {
		var err error
		a, err = s.approvals.AddApprover(ctx, req, st...)
		return err
	}, adminEvent(r, audit.Event{Kind: audit.KindApprover, Subject: req.Name, Outcome: "added", Reason: "operator_add_approver", Detail: detail}))
	if errors.Is(err, approval.ErrExists) {
		s.fail(w, r, http.StatusConflict, api.ReasonConflict, "approver "+req.Name+" already exists")
		return
	} else if errors.Is(err, errAuditPending) {
		s.changeFailed(w, r, err)
		return
	} else if err != nil {
		s.approvalFail(w, r, err)
		return
	}
	s.log.Info("approver added", "name", a.Name, "key_id", approval.APIApprover(a).KeyID, "spiffe_id", a.SPIFFEID)
	writeJSON(w, http.StatusCreated, approval.APIApprover(a))
}

func (s *Server) handleDeleteApprover(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	a, err := s.approvals.Store().GetApprover(r.Context(), name)
	if errors.Is(err, approval.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "no approver "+name)
		return
	} else if err != nil {
		s.internal(w, r, err)
		return
	}
	ev := adminEvent(r, audit.Event{Kind: audit.KindApprover, Subject: name, Outcome: "deleted", Reason: "operator_delete_approver",
		Detail: map[string]string{"spiffe_id": a.SPIFFEID, "key_id": approval.APIApprover(a).KeyID}})
	err = s.commit(r.Context(), func(ctx context.Context, st ...store.Event) error {
		return s.approvals.Store().DeleteApprover(ctx, name, st...)
	}, ev)
	if errors.Is(err, approval.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "no approver "+name)
		return
	} else if err != nil {
		s.changeFailed(w, r, err)
		return
	}
	s.log.Info("approver deleted", "name", name)
	w.WriteHeader(http.StatusNoContent)
}
