package api

import "time"

// Paths of the approvals API (docs/approvals.md).
const (
	PathApprovals      = "/v1/approvals"       // POST: file a request (gate or agent, mTLS)
	PathAdminApprovals = "/v1/admin/approvals" // GET: list; GET /{id}: one request with its decisions
	PathAdminApprovers = "/v1/admin/approvers" // GET, POST; DELETE /{name}
	// POST PathApprovals + "/{id}/check"     (gate or requester, mTLS): status for an intent hash;
	//                                        with consume (gates only): use the approval up
	// POST PathApprovals + "/{id}/decisions" (signed by a registered approver key)
)

// Reason codes of approval refusals. Like the other reason codes they never change meaning.
const (
	ReasonApprovalNotFound       = "approval_not_found"        // no such approval id
	ReasonApprovalExpired        = "approval_expired"          // past expires_at: no more decisions
	ReasonApprovalDenied         = "approval_denied"           // an approver denied it: final
	ReasonApprovalClosed         = "approval_closed"           // already approved; no more decisions needed
	ReasonApprovalIntentMismatch = "approval_intent_mismatch"  // intent hash differs from the one approved
	ReasonApprovalBinding        = "approval_binding_mismatch" // the signed statement names other action/resource/amount/...
	ReasonApproverUnknown        = "approver_unknown"          // no approver registered under that name
	ReasonApprovalBadSignature   = "approval_bad_signature"    // signature does not verify with the approver's key
	ReasonApprovalStale          = "approval_stale_signature"  // signed_at too far from the server's clock
	ReasonSelfApproval           = "self_approval"             // the approver is the requester
	ReasonAlreadyDecided         = "approver_already_decided"  // this approver already decided this request
	ReasonApprovalForbidden      = "approval_forbidden"        // caller may not file/check this request
	ReasonApprovalsOff           = "approvals_unavailable"     // the server has no approval store
	ReasonApprovalUsed           = "approval_used"             // single use: a gate already consumed it
	ReasonApprovalPending        = "approval_pending"          // consume: not enough distinct approvers yet
)

// ApprovalRequest is the body of POST /v1/approvals.
type ApprovalRequest struct {
	Requester  string `json:"requester"`   // SPIFFE ID of the agent whose call needs approval
	Audience   string `json:"audience"`    // SPIFFE ID of the agent it called (intent aud)
	Action     string `json:"action"`      // intent act
	Resource   string `json:"resource"`    // intent res (may be empty)
	Amount     int64  `json:"amount"`      // whole currency units, >= 0
	Currency   string `json:"currency"`    // ISO 4217 code or empty
	IntentHash string `json:"intent_hash"` // approval.IntentHash of the fields above: recomputed and compared
	Required   int    `json:"required"`    // distinct approvals needed, 1..5
	PolicyID   string `json:"policy_id"`   // @id of the policy that asked for approval
	Workflow   string `json:"workflow,omitempty"`
	TTLSec     int    `json:"ttl_s,omitempty"` // default 3600, at most 86400
}

// ApprovalFiled answers POST /v1/approvals.
type ApprovalFiled struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ApprovalCheck is the body of POST /v1/approvals/{id}/check.
type ApprovalCheck struct {
	IntentHash string `json:"intent_hash"`
	// Consume uses the approval up (single use), atomically: of concurrent consumers
	// exactly one gets 200 and status "used"; the others get approval_used. Only an
	// approved request can be consumed (approval_pending, approval_denied,
	// approval_expired otherwise). Only gates may consume.
	Consume bool `json:"consume,omitempty"`
}

// ApprovalStatus answers a check and the decision endpoint.
type ApprovalStatus struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"` // pending | approved | denied | expired | used
	Approvers []string  `json:"approvers"`
	Count     int       `json:"count"`
	Required  int       `json:"required"`
	Action    string    `json:"action"`
	Resource  string    `json:"resource"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	PolicyID  string    `json:"policy_id"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedAt    time.Time `json:"used_at,omitzero"` // when a gate consumed it (status used)
	UsedBy    string    `json:"used_by,omitempty"`
}

// ApprovalStatement is what an approver signs (approval.Statement.SigningBytes).
type ApprovalStatement struct {
	Version    int    `json:"v"` // 1
	ApprovalID string `json:"approval_id"`
	IntentHash string `json:"intent_hash"`
	Requester  string `json:"requester"`
	Action     string `json:"action"`
	Resource   string `json:"resource"`
	Amount     int64  `json:"amount"`
	Currency   string `json:"currency"`
	Approver   string `json:"approver"`
	Decision   string `json:"decision"` // approve | deny
	Reason     string `json:"reason"`
	SignedAt   int64  `json:"signed_at"` // seconds since the Unix epoch
}

// ApprovalDecision is the body of POST /v1/approvals/{id}/decisions.
type ApprovalDecision struct {
	Statement ApprovalStatement `json:"statement"`
	Signature []byte            `json:"sig"` // base64 in JSON
}

// ApprovalRecord is one request with its decisions (admin API).
type ApprovalRecord struct {
	ApprovalStatus
	Requester  string            `json:"requester"`
	Audience   string            `json:"audience,omitempty"`
	FiledBy    string            `json:"filed_by"`
	IntentHash string            `json:"intent_hash"`
	Workflow   string            `json:"workflow,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	Decisions  []ApprovalDecided `json:"decisions"`
}

// ApprovalDecided is one recorded decision.
type ApprovalDecided struct {
	Approver  string    `json:"approver"`
	Decision  string    `json:"decision"`
	Reason    string    `json:"reason,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
}

// Approver is a registered human approver and the public key that signs its decisions.
type Approver struct {
	Name      string    `json:"name"`
	PublicKey string    `json:"public_key_pem"`      // PKIX PEM, Ed25519 or ECDSA P-256
	SPIFFEID  string    `json:"spiffe_id,omitempty"` // an identity this person also acts as (self-approval check)
	KeyID     string    `json:"key_id,omitempty"`    // base64url SHA-256 of the PKIX DER (answers only)
	CreatedAt time.Time `json:"created_at,omitzero"`
}
