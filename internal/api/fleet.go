package api

import (
	"encoding/json"
	"time"
)

// Paths of central policy distribution and gate heartbeats (docs/api.md, "Policy and
// gates").
const (
	// PathAdminPolicy: GET the active revision and the bundles pushed (PolicyStatus).
	PathAdminPolicy = "/v1/admin/policy"
	// PathAdminPolicyBundles: POST a signed bundle (PolicyPush); it becomes the trust
	// state's policy_revision.
	PathAdminPolicyBundles = "/v1/admin/policy/bundles"
	// PathPolicyBundles + REVISION: GET the signed bundle (any SVID of the trust domain).
	PathPolicyBundles = "/v1/policy/bundles/"
	// PathGateHeartbeat: POST a gate's report (GateReport), mTLS with the gate's SVID.
	PathGateHeartbeat = "/v1/gates/heartbeat"
	// PathAdminGates: GET every gate's last report with its flags ([]GateStatus).
	PathAdminGates = "/v1/admin/gates"
)

// MaxBundleBytes bounds a signed policy bundle (and the push request carrying it).
const MaxBundleBytes = 4 << 20

// MaxReportBytes bounds a heartbeat body.
const MaxReportBytes = 8 << 10

// Reason codes of policy pushes.
const (
	ReasonBundleInvalid   = "policy_bundle_invalid"   // not a bundle, does not compile, revision mismatch, tests fail
	ReasonBundleSignature = "policy_bundle_signature" // no configured policy key verifies it
	ReasonNoPolicyKey     = "policy_key_unset"        // the server has no --policy-public-key
)

// PolicyPush is the body of POST /v1/admin/policy/bundles.
type PolicyPush struct {
	Bundle   json.RawMessage `json:"bundle"` // the signed bundle, as `warden policy bundle` writes it
	Reason   string          `json:"reason"`
	Operator string          `json:"operator,omitempty"`
}

// PolicyPushResponse names the revision now in force and the trust-state version that
// names it.
type PolicyPushResponse struct {
	Revision string `json:"revision"`
	KeyID    string `json:"key_id"`
	Version  int64  `json:"version"`
	// Unchanged is true when the revision was already the active one (nothing written).
	Unchanged bool `json:"unchanged,omitempty"`
}

// PolicyBundleInfo describes one pushed bundle.
type PolicyBundleInfo struct {
	Revision string    `json:"revision"`
	KeyID    string    `json:"key_id"`
	Created  time.Time `json:"created"` // when it was signed
	Pushed   time.Time `json:"pushed"`  // when it was first pushed
	Active   bool      `json:"active"`
}

// PolicyStatus answers GET /v1/admin/policy.
type PolicyStatus struct {
	Revision string             `json:"revision"` // the trust state's policy_revision ("" before the first push)
	Bundles  []PolicyBundleInfo `json:"bundles"`  // newest first
}

// GateReport is what a gate tells the control plane in its heartbeat. The gate's identity
// is its client certificate's SPIFFE ID, not a field.
type GateReport struct {
	Mode              string    `json:"mode"` // inbound | outbound | legacy
	Zone              string    `json:"zone,omitempty"`
	PolicyRevision    string    `json:"policy_revision,omitempty"` // the revision it enforces
	PolicySource      string    `json:"policy_source,omitempty"`   // dir | bundle | central
	TrustStateVersion int64     `json:"trust_state_version"`
	TrustStateAgeMS   int64     `json:"trust_state_age_ms"` // since the control plane last confirmed it
	MaxStalenessMS    int64     `json:"max_staleness_ms,omitempty"`
	SVIDExpiresAt     time.Time `json:"svid_expires_at,omitzero"`
	SpoolDepth        int64     `json:"spool_depth"` // audit events not yet shipped
	LastError         string    `json:"last_error,omitempty"`
	StartedAt         time.Time `json:"started_at,omitzero"`
	IntervalMS        int64     `json:"interval_ms"` // how often it reports
}

// GateStatus is one gate in GET /v1/admin/gates.
type GateStatus struct {
	GateID string `json:"gate_id"`
	GateReport
	ReportedAt time.Time `json:"reported_at"`
	// Flags: drift (enforces another policy revision than the trust state names),
	// behind (held an older trust-state version than the current one when it reported),
	// stale (its trust state was older than its max_staleness), silent (no heartbeat for
	// three intervals), error (it reported an error), svid_expiring (its SVID ends
	// before its next heartbeat is due).
	Flags []string `json:"flags,omitempty"`
}

// Paths of the workflow state store on the control plane (gates, mTLS; docs/api.md). The
// body is a workflow step (internal/workflow.Step); the recording gate is the caller's
// SPIFFE ID, whatever the body says.
const (
	PathWorkflowBegin  = "/v1/workflow/begin"  // → WorkflowVerdict
	PathWorkflowFinish = "/v1/workflow/finish" // ?done=true|false → 204
)

// WorkflowVerdict answers PathWorkflowBegin: "" (the step may run), workflow_out_of_order
// or duplicate_step.
type WorkflowVerdict struct {
	Verdict string `json:"verdict"`
}

// ReasonWorkflowUnavailable: the control plane keeps no workflow state (a store backend
// without SQL).
const ReasonWorkflowUnavailable = "workflow_state_unavailable"
