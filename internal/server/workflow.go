package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/workflow"
)

// Workflow state for gates (docs/gate.md, "Workflow state"): each gate reserves and
// settles its steps here when it has no Redis of its own. A gate records steps only
// under the identity it stands for (the callee is the caller's SPIFFE ID, or the agent
// its /gate/ identity guards, whatever the body says),
// and a step's predecessors name the callees the catalog declares for them, so one
// workload cannot forge the steps another gate recorded.

func openWorkflows(ctx context.Context, st any) (*workflow.SQLStore, error) {
	switch b := st.(type) {
	case *sqlite.Store:
		return workflow.NewSQLite(ctx, b.DB())
	case *postgres.Store:
		return workflow.NewPostgres(ctx, b.DB())
	}
	return nil, nil
}

// readStep reads a step and makes the caller its callee; on failure it has answered.
func (s *Server) readStep(w http.ResponseWriter, r *http.Request) (workflow.Step, bool) {
	var st workflow.Step
	if !s.readJSON(w, r, &st) {
		return st, false
	}
	// The callee is the agent the caller stands for: itself, or the agent a /gate/
	// identity guards (docs/gate.md, "Identity").
	id, _ := peerID(r)
	st.Callee = id.String()
	guarded, err := s.guardedBy(r.Context(), id)
	if err != nil {
		s.internal(w, r, err)
		return st, false
	}
	if guarded != "" {
		st.Callee = guarded
	}
	if err := st.Validate(); err != nil {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
		return st, false
	}
	if s.workflows == nil {
		s.fail(w, r, http.StatusServiceUnavailable, api.ReasonWorkflowUnavailable, "this store backend keeps no workflow state")
		return st, false
	}
	return st, true
}

// handleWorkflowBegin: POST /v1/workflow/begin.
func (s *Server) handleWorkflowBegin(w http.ResponseWriter, r *http.Request) {
	st, ok := s.readStep(w, r)
	if !ok {
		return
	}
	v, err := s.workflows.Begin(r.Context(), st)
	if err != nil {
		s.workflowFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.WorkflowVerdict{Verdict: v})
}

// handleWorkflowFinish: POST /v1/workflow/finish?done=true|false.
func (s *Server) handleWorkflowFinish(w http.ResponseWriter, r *http.Request) {
	done := r.URL.Query().Get("done")
	if done != "true" && done != "false" {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "done must be true or false")
		return
	}
	st, ok := s.readStep(w, r)
	if !ok {
		return
	}
	if err := s.workflows.Finish(r.Context(), st, done == "true"); err != nil {
		s.workflowFailed(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) workflowFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, workflow.ErrUnavailable) {
		s.log.Error("workflow state", "request_id", requestID(r), "err", err)
		s.fail(w, r, http.StatusServiceUnavailable, api.ReasonWorkflowUnavailable, "workflow state could not be read or written")
		return
	}
	s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
}
