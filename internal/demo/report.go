// Package demo runs the supply-chain story behind `warden demo` against the product as
// an operator runs it: `warden server`, one `warden enroll --watch --tpm sim` per agent
// and a `warden gate --config gate.yaml` per gate are child processes of the same binary
// (package proc), their files under one directory (Stack); the A2A agents are unmodified
// a2a-go servers on unix sockets behind their gates, the callers unmodified a2a-go
// clients or in-process attackers. Each workflow and each attack of the threat model is
// a row of report.json with the CLI commands that are its equivalent.
//
// The exported Stack, AgentSpec/Enrol, GateSpec/StartGate, ServeA2A, OutboundClient,
// CallAs/CallGate and WatchTrust are the helpers the rows use and that the
// end-to-end tests (e2e/) share; docs/operator-guide.md describes the directory as a
// worked example of a deployment.
package demo

// Step is one row of report.json: a workflow that must pass or an attack that must be refused.
type Step struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`     // "workflow" | "attack"
	Expected   string `json:"expected"` // "allow" | "deny"
	Observed   string `json:"observed"` // "allow" | "deny"
	Reason     string `json:"reason"`
	DecisionID string `json:"decision_id"`
	// Command is the step's equivalent on the command line, one command per line, with
	// the demo's directory written $DIR; a line starting with # says what the demo does
	// in process instead (an attacker's tool, an agent's own SDK call).
	Command string `json:"command,omitempty"`
}

// Report is report.json. OK is true only when every step's Observed equals its Expected.
type Report struct {
	OK    bool   `json:"ok"`
	Steps []Step `json:"steps"`
}
