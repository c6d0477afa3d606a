package attest

import (
	"bytes"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Action is what the control plane does to an agent whose attestation is not affirming.
// Applied through the trust state, so every gate enforces it.
type Action string

// Actions, least to most severe.
const (
	// ActionAllow: affirming and fresh; nothing to do.
	ActionAllow Action = "allow"
	// ActionQuarantine: reads go on (audited), every write / state-changing call is denied.
	ActionQuarantine Action = "quarantine"
	// ActionReview: calls are held for manual review (the approval obligation); no new SVID
	// without an operator's decision.
	ActionReview Action = "review"
	// ActionSuspend: every call denied at once; no SVID renewal.
	ActionSuspend Action = "suspend"
)

func (a Action) severity() int {
	switch a {
	case ActionAllow:
		return 0
	case ActionQuarantine:
		return 1
	case ActionReview:
		return 2
	default: // suspend and anything unknown: fail closed
		return 3
	}
}

// Valid reports whether a is one of the four actions.
func (a Action) Valid() bool {
	return a == ActionAllow || a == ActionQuarantine || a == ActionReview || a == ActionSuspend
}

// Agent classes (store.Entry.Class).
const (
	ClassReadOnly      = "read-only"
	ClassAdvisory      = "advisory"
	ClassTransactional = "transactional"
	ClassRegulated     = "regulated"
)

// Policy is the role-aware fail-closed table: what happens, per class and per named role,
// when an agent's attestation is not affirming or not fresh. It is configuration, decided
// ahead of time; Decide is pure.
type Policy struct {
	// Classes maps a class to its action on failure.
	Classes map[string]Action `json:"classes" yaml:"classes"`
	// Roles maps a role (store.Entry.Role, e.g. "payments") to its action; a role
	// rule can only make the outcome stricter than the class rule, never weaker.
	Roles map[string]Action `json:"roles,omitempty" yaml:"roles,omitempty"`
	// Unknown is the action for a class not in Classes (default suspend).
	Unknown Action `json:"unknown,omitempty" yaml:"unknown,omitempty"`
	// MaxResultAge is how long an affirming result stays good (default 10 min); an older
	// one is treated as stale_evidence: no fresh evidence, no trust.
	MaxResultAge time.Duration `json:"max_result_age,omitempty" yaml:"max_result_age,omitempty"`
}

// DefaultPolicy is the table of ARCHITECTURE.md: read-only and advisory → quarantine,
// transactional → review, regulated → suspend, role payments (payment release) → suspend.
func DefaultPolicy() Policy {
	return Policy{
		Classes: map[string]Action{
			ClassReadOnly:      ActionQuarantine,
			ClassAdvisory:      ActionQuarantine,
			ClassTransactional: ActionReview,
			ClassRegulated:     ActionSuspend,
		},
		Roles:        map[string]Action{"payments": ActionSuspend},
		Unknown:      ActionSuspend,
		MaxResultAge: 10 * time.Minute,
	}
}

// Validate checks every action name; allow is not a valid failure action.
func (p Policy) Validate() error {
	check := func(where string, a Action) error {
		if !a.Valid() || a == ActionAllow {
			return fmt.Errorf("attest: policy %s: action %q (want quarantine, review or suspend)", where, a)
		}
		return nil
	}
	for c, a := range p.Classes {
		if err := check("class "+c, a); err != nil {
			return err
		}
	}
	for r, a := range p.Roles {
		if err := check("role "+r, a); err != nil {
			return err
		}
	}
	if p.Unknown != "" {
		return check("unknown", p.Unknown)
	}
	return nil
}

// Decision is the outcome of Decide.
type Decision struct {
	Action Action `json:"action"`
	Reason Reason `json:"reason,omitempty"` // the result's reason, or stale_evidence
	Rule   string `json:"rule"`             // "affirming", "class:<c>", "role:<r>", "unknown-class"
}

// Decide maps an attestation result to an action for an agent of the given class and
// role. Affirming and younger than MaxResultAge → allow; anything else → the class action,
// made stricter by a role rule; an unknown class → Unknown (suspend). Pure.
func (p Policy) Decide(r Result, class, role string, now time.Time) Decision {
	maxAge := p.MaxResultAge
	if maxAge <= 0 {
		maxAge = 10 * time.Minute
	}
	reason := r.Reason
	if r.Affirming() {
		if !r.Time.IsZero() && now.Sub(r.Time) <= maxAge && !now.Before(r.Time.Add(-time.Minute)) {
			return Decision{Action: ActionAllow, Rule: "affirming"}
		}
		reason = ReasonStaleEvidence
	} else if reason == ReasonNone {
		reason = ReasonVerifierError // non-affirming tier without a reason: fail closed
	}
	d := Decision{Reason: reason}
	if a, ok := p.Classes[class]; ok && a.Valid() && a != ActionAllow {
		d.Action, d.Rule = a, "class:"+class
	} else {
		d.Action, d.Rule = p.Unknown, "unknown-class"
		if !d.Action.Valid() || d.Action == ActionAllow {
			d.Action = ActionSuspend
		}
	}
	if a, ok := p.Roles[role]; ok && role != "" {
		if !a.Valid() || a == ActionAllow {
			a = ActionSuspend
		}
		if a.severity() > d.Action.severity() {
			d.Action, d.Rule = a, "role:"+role
		}
	}
	return d
}

// ParsePolicy reads a policy table from YAML or JSON (durations as Go duration strings in
// YAML, e.g. "10m"). Unknown fields and invalid actions are errors; a missing `unknown`
// means suspend.
func ParsePolicy(b []byte) (Policy, error) {
	var p Policy
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("attest: policy: %w", err)
	}
	if p.Unknown == "" {
		p.Unknown = ActionSuspend
	}
	return p, p.Validate()
}
