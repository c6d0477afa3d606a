package gate

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/warden-a2a/warden/internal/inventory"
	"github.com/warden-a2a/warden/internal/workflow"
)

// Reason codes of the workflow stage (docs/gate.md, "Workflow state").
const (
	ReasonOutOfOrder          = workflow.OutOfOrder // a step that follows no declared transition
	ReasonDuplicateStep       = workflow.Duplicate  // a non-repeatable step again for the same resource
	ReasonWorkflowUnavailable = "workflow_state_unavailable"
	// ReasonWouldDeny is the reason of an allowed decision event in observe mode whose
	// workflow verdict would have refused it (the verdict is in detail.would_deny).
	ReasonWouldDeny = "would_deny"
)

// wfStep is what the gate knows of one action that is a workflow step.
type wfStep struct {
	workflow   string
	enforce    bool // the workflow's mode is enforce
	after      []workflow.Pred
	repeatable bool
}

// indexWorkflows maps every step action of c's workflows to what Begin needs.
func indexWorkflows(c *inventory.Catalog) map[string]*wfStep {
	if c == nil || len(c.Workflows) == 0 {
		return nil
	}
	out := map[string]*wfStep{}
	for i := range c.Workflows {
		w := &c.Workflows[i]
		for j := range w.Steps {
			s := &w.Steps[j]
			ws := &wfStep{workflow: w.Name, enforce: w.EffectiveMode() == inventory.WorkflowEnforce, repeatable: s.Repeatable}
			for _, p := range s.After {
				ws.after = append(ws.after, workflow.Pred{Action: p, Callees: c.Receivers(w.Name, p)})
			}
			if _, dup := out[s.Action]; !dup {
				out[s.Action] = ws
			}
		}
	}
	return out
}

// workflowStep checks and reserves the call as a step of its catalog workflow: one that
// follows no declared transition (workflow_out_of_order) or repeats a non-repeatable step
// on the same resource at this gate (duplicate_step) is refused in enforce mode — always
// for regulated actions — and in observe mode forwarded with the verdict in the audit
// event (reason would_deny). The reservation is settled after the answer (forward) or
// released when the call is refused later (pipeline refuse).
func (g *Gate) workflowStep(c *inboundCall) *Refusal {
	ws, ok := g.steps[c.claims.Action]
	if !ok || g.cfg.WorkflowStore == nil {
		return nil
	}
	enforce := ws.enforce || g.isClass(c.claims.Action, "regulated")
	verdictOf := func(v, msg string) *Refusal {
		if enforce {
			status := http.StatusConflict
			if v == ReasonWorkflowUnavailable {
				status = http.StatusServiceUnavailable
			}
			return refusal(status, v, msg)
		}
		c.ev.WouldDeny = v
		return nil
	}
	if c.claims.Workflow == "" {
		return verdictOf(ReasonOutOfOrder, c.claims.Action+" is a step of workflow "+ws.workflow+" and the intent names no workflow id (wf)")
	}
	st := workflow.Step{Workflow: ws.workflow, ID: c.claims.Workflow, Action: c.claims.Action,
		Resource: c.req.Resource.Type + "/" + c.req.Resource.ID, Callee: g.cfg.Self.String(),
		After: ws.after, Repeatable: ws.repeatable, Enforce: enforce, Token: c.ev.DecisionID}
	v, err := g.cfg.WorkflowStore.Begin(c.r.Context(), st)
	if err != nil {
		g.cfg.Logger.Error("gate: workflow state", "decision_id", c.ev.DecisionID, "err", err)
		if errors.Is(err, workflow.ErrUnavailable) {
			return verdictOf(ReasonWorkflowUnavailable, "the workflow state could not be checked")
		}
		return verdictOf(ReasonOutOfOrder, "the call is not a valid workflow step: "+err.Error())
	}
	if v == "" || !enforce {
		c.wf = &st // reserved (in observe mode even when v != ""): settle it later
	}
	switch v {
	case ReasonOutOfOrder:
		return verdictOf(v, c.claims.Action+" does not follow a step of workflow "+ws.workflow+" "+c.claims.Workflow+" that the catalog allows before it")
	case ReasonDuplicateStep:
		return verdictOf(v, c.claims.Action+" of "+st.Resource+" was already executed at this gate (workflow "+ws.workflow+")")
	}
	return nil
}

// settleWorkflow keeps the reserved step as executed (done) or releases it.
func (g *Gate) settleWorkflow(c *inboundCall, done bool) {
	if c.wf == nil {
		return
	}
	st := *c.wf
	c.wf = nil
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.r.Context()), 5*time.Second)
	defer cancel()
	if err := g.cfg.WorkflowStore.Finish(ctx, st, done); err != nil {
		g.cfg.Logger.Error("gate: workflow step not settled", "decision_id", st.Token, "done", done, "err", err)
	}
}

// classOf is the class of action by its group in the schema, named as the agent classes
// are: read-only (group read), advisory, transactional, regulated; "" when in none.
func (g *Gate) classOf(action string) string {
	for _, c := range []string{"regulated", "transactional", "advisory", "read"} {
		if g.isClass(action, c) {
			if c == "read" {
				return "read-only"
			}
			return c
		}
	}
	return ""
}

// isClass reports whether action is in the schema's group class.
func (g *Gate) isClass(action, class string) bool {
	a, ok := g.action(action)
	return ok && slices.Contains(a.Groups, class)
}

// answerRecorder remembers the status the upstream answered with.
type answerRecorder struct {
	http.ResponseWriter
	status int
}

func (w *answerRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *answerRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *answerRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *answerRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
