package workflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Verdicts of Begin; "" is a step that may run.
const (
	OutOfOrder = "workflow_out_of_order"
	Duplicate  = "duplicate_step"
)

// ErrUnavailable wraps a store failure: the state could not be read or written.
var ErrUnavailable = errors.New("workflow: state store unavailable")

// Pred is a step that may come right before another: its action, and the identities
// whose gates record it (the receivers the catalog declares; none: any).
type Pred struct {
	Action  string   `json:"action"`
	Callees []string `json:"callees,omitempty"`
}

// Step is one call as the workflow store sees it.
type Step struct {
	Workflow string `json:"workflow"` // catalog workflow name
	ID       string `json:"id"`       // workflow id: the intent's wf
	Action   string `json:"action"`
	Resource string `json:"resource"` // "Type/ID" of the resource acted on
	Callee   string `json:"callee"`   // SPIFFE ID of the gate that records it
	// After: one of these must have been recorded for (Workflow, ID); empty: the step
	// may start the workflow.
	After      []Pred `json:"after,omitempty"`
	Repeatable bool   `json:"repeatable,omitempty"`
	// Enforce: a violation writes nothing and is returned; otherwise (observe) the step
	// is recorded anyway and the verdict returned for the audit (would_deny).
	Enforce bool `json:"enforce,omitempty"`
	// Token names the reservation (the gate's decision id).
	Token string `json:"token"`
}

// Validate checks the fields a store relies on.
func (s *Step) Validate() error {
	for name, v := range map[string]string{"workflow": s.Workflow, "id": s.ID, "action": s.Action, "callee": s.Callee, "token": s.Token} {
		if v == "" || len(v) > 256 || strings.ContainsAny(v, "\x00\n") {
			return fmt.Errorf("workflow: step %s must be 1..256 bytes without NUL or newline", name)
		}
	}
	if len(s.Resource) > 512 || strings.ContainsAny(s.Resource, "\x00\n") {
		return errors.New("workflow: resource at most 512 bytes without NUL or newline")
	}
	if len(s.After) > 32 {
		return errors.New("workflow: at most 32 predecessors")
	}
	for _, p := range s.After {
		if p.Action == "" || len(p.Callees) > 32 {
			return errors.New("workflow: a predecessor needs an action and at most 32 callees")
		}
	}
	return nil
}

// Store keeps workflow state shared by gates. Implementations are safe for concurrent
// use by several processes and pass Contract.
type Store interface {
	// Begin checks s against what is recorded and, unless s is enforced and violates
	// it, reserves it — atomically: of concurrent Begins of the same non-repeatable
	// step for one resource and callee exactly one gets "". It returns the verdict
	// ("", OutOfOrder or Duplicate); an error wraps ErrUnavailable.
	Begin(ctx context.Context, s Step) (string, error)
	// Finish settles the reservation of s: done keeps it as executed; !done removes it
	// (the call was not forwarded, or the upstream failed), so a retry can run.
	Finish(ctx context.Context, s Step, done bool) error
}

// satisfied reports whether one of after is among recorded (action, callee) pairs.
func satisfied(after []Pred, has func(action, callee string) bool, hasAny func(action string) bool) bool {
	if len(after) == 0 {
		return true
	}
	for _, p := range after {
		if len(p.Callees) == 0 {
			if hasAny(p.Action) {
				return true
			}
			continue
		}
		if slices.ContainsFunc(p.Callees, func(c string) bool { return has(p.Action, c) }) {
			return true
		}
	}
	return false
}
