package gate

import (
	"context"
	"errors"

	"github.com/warden-a2a/warden/internal/approval"
)

// ApprovalRequest asks the approvals service about one call. With ID empty it files a
// new request; with ID set (the intent's apr) it asks for that approval's state, and
// with Consume also set it uses the approval up (the gate is forwarding the call).
type ApprovalRequest struct {
	ID         string   // apr of the retried intent; empty to file a new request
	IntentHash string   // ApprovalHash of the call: the approval is bound to it
	Requester  string   // SPIFFE ID of the caller (intent iss)
	Audience   string   // SPIFFE ID of the protected agent (intent aud, the gate's Self)
	Action     string   // act
	Resource   string   // res
	Workflow   string   // wf
	Amount     int64    // amount from the call's metadata
	Currency   string   // currency from the call's metadata
	PolicyIDs  []string // the policies that asked for the approval
	DecisionID string
	// Consume: the policy allowed the call with this approval and the gate forwards it;
	// the service must use the approval up atomically (single use) and refuse with
	// ApprovalRefusal{Reason: "approval_used"} if it already was.
	Consume bool
}

// ApprovalState is the answer of the approvals service.
type ApprovalState struct {
	ID string // the approval id (the new one, when filed)
	// Approvers are the distinct approvers who approved, never including the requester;
	// the policy counts them (context.approvals.count).
	Approvers []string
}

// Approvals is the control plane's approval service as the gate sees it. The
// implementation must check that an existing ID is bound to req.IntentHash and
// req.Requester, and return ErrApprovalInvalid otherwise; an approval that exists for
// this call but cannot release it now (pending, denied, expired, used) is an
// *ApprovalRefusal with its reason code. ApprovalClient is the implementation on the
// control plane's approvals API.
type Approvals interface {
	Approval(ctx context.Context, req ApprovalRequest) (ApprovalState, error)
}

// ErrApprovalInvalid: the approval does not exist, or is bound to another intent.
var ErrApprovalInvalid = errors.New("gate: approval does not match this intent")

// ErrNoApprovals is returned by NoApprovals: this gate has no approvals service.
var ErrNoApprovals = errors.New("gate: no approvals service configured")

// ApprovalRefusal: the approval names this call but does not release it now. Reason is
// the stable code the caller sees: approval_pending, approval_denied,
// approval_expired or approval_used.
type ApprovalRefusal struct {
	Reason  string
	Message string
}

func (e *ApprovalRefusal) Error() string { return "gate: " + e.Reason + ": " + e.Message }

// NoApprovals is the default: it files nothing and approves nothing, so a decision that
// needs an approval is refused (approvals_unavailable).
type NoApprovals struct{}

// Approval implements Approvals.
func (NoApprovals) Approval(context.Context, ApprovalRequest) (ApprovalState, error) {
	return ApprovalState{}, ErrNoApprovals
}

// ApprovalHash binds an approval to what was asked, not to one intent token (a retry
// carries a fresh jti and body): approval.IntentHash, the one definition the control
// plane recomputes, base64url(SHA-256(JCS({"act","amount","aud","cur","iss","res","wf"}))).
func ApprovalHash(iss, aud, act, res, wf string, amount int64, currency string) string {
	return approval.IntentHash(approval.Binding{Requester: iss, Audience: aud, Action: act, Resource: res,
		Workflow: wf, Amount: amount, Currency: currency})
}
