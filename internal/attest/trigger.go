package attest

import "time"

// Event-driven re-attestation: the control plane pushes a challenge when one of these
// rules fires. EvaluateTrigger is a pure function over the agent's small trigger state.

// TriggerRule names the rule that fired.
type TriggerRule string

// Trigger rules.
const (
	TriggerHigherClass      TriggerRule = "higher_class_action" // first request for a higher-class action
	TriggerUncatalogedPath  TriggerRule = "uncataloged_path"    // a call on a path not in the catalog
	TriggerDependencyChange TriggerRule = "dependency_change"   // a changed dependency digest
	TriggerDenials          TriggerRule = "denials"             // N denials in M seconds
)

// TriggerConfig switches the rules on and sets the denial window.
type TriggerConfig struct {
	HigherClass      bool          `json:"higher_class" yaml:"higher_class"`
	UncatalogedPath  bool          `json:"uncataloged_path" yaml:"uncataloged_path"`
	DependencyChange bool          `json:"dependency_change" yaml:"dependency_change"`
	Denials          int           `json:"denials" yaml:"denials"`             // N; 0 disables
	DenialWindow     time.Duration `json:"denial_window" yaml:"denial_window"` // M
	// Cooldown suppresses a second trigger for the same agent within this time (default
	// 0: none), so a burst of denials does not become a burst of challenges.
	Cooldown time.Duration `json:"cooldown" yaml:"cooldown"`
}

// DefaultTriggerConfig: all rules on, 5 denials in 60 s, 30 s cooldown.
func DefaultTriggerConfig() TriggerConfig {
	return TriggerConfig{HigherClass: true, UncatalogedPath: true, DependencyChange: true,
		Denials: 5, DenialWindow: time.Minute, Cooldown: 30 * time.Second}
}

// Observation is one thing the control plane saw about an agent.
type Observation struct {
	Time time.Time
	// ActionClass is the class of the action requested ("" if not a request).
	ActionClass string
	// AgentClass is the agent's own class (its entry's); a first request above it fires
	// higher_class_action. Optional.
	AgentClass string
	// Path is the called path and InCatalog whether the catalog lists it ("" if none).
	Path      string
	InCatalog bool
	// DependencyDigest is the agent's reported dependency-manifest digest ("" if none).
	DependencyDigest string
	// Denied is true when the request was denied.
	Denied bool
}

// TriggerState is the per-agent memory of the evaluator. The zero value is a new agent.
type TriggerState struct {
	HighestClass     string      `json:"highest_class,omitempty"`
	DependencyDigest string      `json:"dependency_digest,omitempty"`
	Denials          []time.Time `json:"denials,omitempty"` // within the window, oldest first
	LastTrigger      time.Time   `json:"last_trigger,omitempty"`
}

// ClassRank orders the classes: read-only 1, advisory 2, transactional 3, regulated 4;
// unknown 0.
func ClassRank(c string) int {
	switch c {
	case ClassReadOnly:
		return 1
	case ClassAdvisory:
		return 2
	case ClassTransactional:
		return 3
	case ClassRegulated:
		return 4
	}
	return 0
}

// EvaluateTrigger folds o into s and reports the rule that fires, if any ("" for none).
// It returns the new state; s is not modified.
func EvaluateTrigger(cfg TriggerConfig, s TriggerState, o Observation) (TriggerState, TriggerRule) {
	n := s
	n.Denials = nil
	var fired TriggerRule

	if o.ActionClass != "" {
		base := s.HighestClass // the baseline: highest of the history and the agent's class
		if ClassRank(o.AgentClass) > ClassRank(base) {
			base = o.AgentClass
		}
		if ClassRank(o.ActionClass) > ClassRank(base) {
			// Without an AgentClass the first action only sets the baseline; a later,
			// higher one fires.
			if cfg.HigherClass && base != "" {
				fired = TriggerHigherClass
			}
		}
		if ClassRank(o.ActionClass) > ClassRank(s.HighestClass) {
			n.HighestClass = o.ActionClass
		}
	}
	if fired == "" && cfg.UncatalogedPath && o.Path != "" && !o.InCatalog {
		fired = TriggerUncatalogedPath
	}
	if o.DependencyDigest != "" {
		if s.DependencyDigest != "" && o.DependencyDigest != s.DependencyDigest && cfg.DependencyChange && fired == "" {
			fired = TriggerDependencyChange
		}
		n.DependencyDigest = o.DependencyDigest
	}
	for _, t := range s.Denials {
		if cfg.DenialWindow > 0 && o.Time.Sub(t) < cfg.DenialWindow {
			n.Denials = append(n.Denials, t)
		}
	}
	if o.Denied && cfg.Denials > 0 {
		n.Denials = append(n.Denials, o.Time)
		if len(n.Denials) >= cfg.Denials && fired == "" {
			fired = TriggerDenials
		}
	}
	if len(n.Denials) > cfg.Denials && cfg.Denials > 0 {
		n.Denials = n.Denials[len(n.Denials)-cfg.Denials:]
	}
	if fired != "" {
		if cfg.Cooldown > 0 && !s.LastTrigger.IsZero() && o.Time.Sub(s.LastTrigger) < cfg.Cooldown {
			return n, ""
		}
		n.LastTrigger = o.Time
		if fired == TriggerDenials {
			n.Denials = nil
		}
	}
	return n, fired
}
