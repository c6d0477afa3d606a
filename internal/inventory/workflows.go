package inventory

import (
	"slices"

	"gopkg.in/yaml.v3"
)

// Workflow modes (docs/catalog.md, "Workflows"): enforce refuses a step that does not
// follow a declared transition or repeats a non-repeatable one; observe (the default, for
// a workflow being rolled out) computes the same verdict, audits it as would_deny and
// forwards the call — except regulated actions, which are always enforced.
const (
	WorkflowEnforce = "enforce"
	WorkflowObserve = "observe"
)

// Finding codes of the workflows section.
const (
	CodeWorkflowStep = "workflow_step" // a step that is not sound: unknown predecessor, action in two workflows
)

// Workflow declares the steps of one workflow and the transitions between them.
type Workflow struct {
	Name  string
	Mode  string // WorkflowEnforce | WorkflowObserve ("" is observe)
	Steps []Step

	Line  int
	Lines map[string]int
}

// Step is one step of a workflow: an action, the steps that may come right before it
// (After: any one of them must have been recorded for the same workflow id; none: the
// step may start the workflow), and whether it may run more than once for the same
// resource.
type Step struct {
	Action     string
	After      []string
	Repeatable bool

	Line  int
	Lines map[string]int
}

// EffectiveMode is the workflow's mode with the default applied.
func (w *Workflow) EffectiveMode() string {
	if w.Mode == "" {
		return WorkflowObserve
	}
	return w.Mode
}

// Step returns the step of action, if the workflow declares one.
func (w *Workflow) Step(action string) (*Step, bool) {
	for i := range w.Steps {
		if w.Steps[i].Action == action {
			return &w.Steps[i], true
		}
	}
	return nil, false
}

// Receivers lists the agents the catalog declares as receiving action within workflow w
// (the `to` of its interactions), by SPIFFE ID: the identities whose gates record that
// step.
func (c *Catalog) Receivers(w, action string) []string {
	var out []string
	for i := range c.Interactions {
		in := &c.Interactions[i]
		if in.Workflow != w || in.Action != action {
			continue
		}
		if a, ok := c.Agent(in.To); ok && a.Identity != "" && !slices.Contains(out, a.Identity) {
			out = append(out, a.Identity)
		}
	}
	return out
}

// WorkflowOf returns the workflow that declares a step for action (an action is a step of
// at most one workflow; Check reports a catalog where it is not).
func (c *Catalog) WorkflowOf(action string) (*Workflow, *Step, bool) {
	for i := range c.Workflows {
		if s, ok := c.Workflows[i].Step(action); ok {
			return &c.Workflows[i], s, true
		}
	}
	return nil, nil, false
}

func decodeWorkflow(file string, n *yaml.Node) (Workflow, error) {
	var w Workflow
	lines, err := fields(file, n, "workflow", []string{"name", "mode", "steps"}, func(k string, v *yaml.Node) error {
		switch k {
		case "name":
			return decodeString(file, v, &w.Name)
		case "mode":
			return decodeString(file, v, &w.Mode)
		case "steps":
			return decodeList(file, v, "steps", &w.Steps, decodeStep)
		}
		return nil
	})
	w.Line, w.Lines = n.Line, lines
	return w, err
}

func decodeStep(file string, n *yaml.Node) (Step, error) {
	var s Step
	lines, err := fields(file, n, "step", []string{"action", "after", "repeatable"}, func(k string, v *yaml.Node) error {
		switch k {
		case "action":
			return decodeString(file, v, &s.Action)
		case "after":
			return decodeStrings(file, v, &s.After)
		case "repeatable":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
				return &ParseError{File: file, Line: v.Line, Msg: "repeatable must be true or false"}
			}
			return v.Decode(&s.Repeatable)
		}
		return nil
	})
	s.Line, s.Lines = n.Line, lines
	return s, err
}

// workflows checks the workflows section: names, modes, steps whose action the
// interactions of that workflow declare, predecessors that are steps of the same
// workflow, and no action that is a step of two workflows.
func (k *checker) workflows() {
	c := k.c
	names := map[string]bool{}
	owner := map[string]string{} // action -> workflow
	for i := range c.Workflows {
		w := &c.Workflows[i]
		if w.Name == "" {
			k.add(SevError, CodeMissingField, w.Line, "workflow without a name")
		} else if names[w.Name] {
			k.add(SevError, CodeDuplicate, w.Line, "workflow %q declared twice", w.Name)
		}
		names[w.Name] = true
		if w.Mode != "" && w.Mode != WorkflowEnforce && w.Mode != WorkflowObserve {
			k.add(SevError, CodeBadValue, lineOf(w.Lines, "mode", w.Line), "workflow %s: mode %q (want enforce or observe)", w.Name, w.Mode)
		}
		if len(w.Steps) == 0 {
			k.add(SevError, CodeMissingField, w.Line, "workflow %s declares no steps", w.Name)
		}
		starts := 0
		for j := range w.Steps {
			s := &w.Steps[j]
			if s.Action == "" {
				k.add(SevError, CodeMissingField, s.Line, "workflow %s: a step without an action", w.Name)
				continue
			}
			if o, ok := owner[s.Action]; ok {
				k.add(SevError, CodeWorkflowStep, s.Line, "action %s is a step of workflow %s and of %s: a gate could not tell which", s.Action, o, w.Name)
			}
			owner[s.Action] = w.Name
			if len(s.After) == 0 {
				starts++
			}
			for _, p := range s.After {
				if _, ok := w.Step(p); !ok {
					k.add(SevError, CodeWorkflowStep, lineOf(s.Lines, "after", s.Line), "workflow %s: step %s comes after %s, which is not a step of the workflow", w.Name, s.Action, p)
				}
			}
			if len(c.Receivers(w.Name, s.Action)) == 0 {
				k.add(SevWarning, CodeWorkflowStep, s.Line, "workflow %s: no interaction of the workflow declares %s; any gate records it", w.Name, s.Action)
			}
		}
		if len(w.Steps) > 0 && starts == 0 {
			k.add(SevError, CodeWorkflowStep, w.Line, "workflow %s has no step that may start it (a step without after)", w.Name)
		}
	}
}
