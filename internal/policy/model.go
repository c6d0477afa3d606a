package policy

import "time"

// Agent is the caller, as established by the gate from its X509-SVID and the
// control plane's registry. The Cedar entity is Agent::"<SPIFFEID>".
type Agent struct {
	SPIFFEID    string // spiffe://supplychain.example/agent/procurement
	Name        string // procurement
	Role        string // forecasting, procurement, vendor, shipping, compliance, payments, carrier, edge
	Class       string // read-only, advisory, transactional, regulated
	Zone        string // deployment zone, looked up in TrustView.ZoneStates
	TrustDomain string // supplychain.example
	Partner     bool   // agent of a federated partner trust domain
}

// Resource is the business object a workflow step acts on. The Cedar entity is
// <Type>::"<ID>" with attributes status and amount (and Attrs as extra String
// attributes, which policies can only use if the schema declares them).
type Resource struct {
	Type   string // Order, Shipment, Invoice, CustomsForm, InventoryFeed, VendorRecord, Forecast
	ID     string
	Status string // e.g. an order's "open" / "closed"
	Amount int64  // whole currency units; 0 when not applicable
	Attrs  map[string]string
}

// Attestation is the caller's current attestation result (RATS AR4SI-style tier).
type Attestation struct {
	Tier       string // none, affirming, warning, contraindicated; "" is treated as "none"
	AgeSeconds int64  // seconds since the evidence was appraised
}

// CallContext is what the gate knows about this call beyond who and what.
type CallContext struct {
	Purpose         string
	DataSensitivity string // public, internal, confidential, restricted
	Amount          int64  // whole currency units
	Currency        string
	Attestation     Attestation
	// Params are the call's business parameters as ParseParams read them against the
	// action's declaration (int64 or string by name). When set they are the context's
	// parameter attributes and DataSensitivity, Amount and Currency are not used: an
	// optional parameter the call did not carry is then absent, not zero. Callers that
	// leave Params nil (policy test cases) get the three fields as attributes.
	Params map[string]any
	// Approvers are the ids of the humans or agents that approved this step.
	// context.approvals.count is the number of DISTINCT approvers other than
	// the caller itself, so one approver twice, or a self-approval, counts once
	// or not at all.
	Approvers []string
}

// KillSwitch stops every matching call, whatever the policies and exceptions permit.
type KillSwitch struct {
	Scope  string // "action", "workflow", "agent" (SPIFFE ID or name) or "zone"; Value "*" matches all
	Value  string
	Reason string
	// Expires, when not zero, is when the switch stops applying (a --ttl switch).
	Expires time.Time `yaml:"expires"`
}

// Agent states in TrustView.AgentStatus.
const (
	AgentQuarantined = "quarantined"
	AgentSuspended   = "suspended"
)

// Zone states in TrustView.ZoneStates (the trust state's names; docs/trust-state.md).
// ZoneHealthy is the old name of ZoneNormal: the engine reads it as normal.
const (
	ZoneNormal      = "normal"
	ZoneDegraded    = "degraded"
	ZoneQuarantined = "quarantined"
	ZoneOffline     = "offline"
	ZoneHealthy     = "healthy"
)

// TrustView is the part of the control plane's signed trust state that policy
// needs. It depends on nothing outside this package so the trust-state code can
// map its document into it.
type TrustView struct {
	KillSwitches []KillSwitch
	IncidentMode bool
	// IncidentZone, when set, limits incident mode to callers of that zone.
	IncidentZone string
	// Responders lists the agents (SPIFFE IDs or names) allowed to act during an incident.
	Responders []string
	// ZoneStates maps a zone to normal, degraded, quarantined or offline; a zone not
	// listed (or "healthy", the old name) is normal.
	ZoneStates map[string]string
	// AgentStatus maps a SPIFFE ID to quarantined or suspended; absent means active.
	AgentStatus map[string]string
}

// Request is one workflow step to decide: who asks, to do what, on what, in which context.
type Request struct {
	Agent    Agent
	Action   string // e.g. "purchase_order.create"
	Workflow string // workflow name or id, matched by kill switches of scope "workflow"
	Resource Resource
	Context  CallContext
	Trust    TrustView
}

// Reason codes carried by Decision.Code. A forbid policy may set its own code with
// @code("..."); these are the ones the engine itself produces.
const (
	CodeAllow           = "policy_allow"
	CodeException       = "exception"
	CodePolicyDeny      = "policy_deny"
	CodeDefaultDeny     = "default_deny"
	CodeEvaluationError = "evaluation_error"
	CodeKillSwitch      = "kill_switch"
	CodeRateLimited     = "rate_limited"
	CodeAgentSuspended  = "agent_suspended"
	CodeNoPolicy        = "no_policy_loaded"
	CodeInvalidRequest  = "invalid_request" // no caller SPIFFE ID, or a resource type the action does not apply to
)

// Decision is the outcome of Engine.Decide. The zero value denies. Its slices and
// maps may be shared between decisions: read them, do not modify them in place.
type Decision struct {
	Allow bool
	// Code is a stable, machine-readable reason (see the Code constants).
	Code string
	// Reason is one human sentence: why it was denied, or which policy allowed it.
	Reason string
	// PolicyIDs are the @id of the policies that determined the decision (forbids
	// for a deny, permits for an allow); "kill-switch:<scope>:<value>" and
	// "ratelimit:<id>" for the checks made outside Cedar.
	PolicyIDs []string
	// Annotations of the determining policies, by policy id.
	Annotations map[string]map[string]string
	// Obligations from @remedy of the determining policies, e.g. "approval", "review".
	Obligations []string
	// Revision of the bundle that made the decision.
	Revision string
	// Errors are evaluation errors; any error denies.
	Errors []string
}
