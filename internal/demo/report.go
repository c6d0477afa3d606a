// Package demo runs the supply-chain story behind `warden demo`: a real control plane on
// the embedded store, the supply-chain agents enrolled with real SVIDs, their workflows and
// the attacks of the threat model, each recorded as a step of report.json.
package demo

// Step is one row of report.json: a workflow that must pass or an attack that must be refused.
type Step struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`     // "workflow" | "attack"
	Expected   string `json:"expected"` // "allow" | "deny"
	Observed   string `json:"observed"` // "allow" | "deny"
	Reason     string `json:"reason"`
	DecisionID string `json:"decision_id"`
}

// Report is report.json. OK is true only when every step's Observed equals its Expected.
type Report struct {
	OK    bool   `json:"ok"`
	Steps []Step `json:"steps"`
}
