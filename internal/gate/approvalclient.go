package gate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/approval"
)

// DefaultRequiredApprovals is how many distinct approvals ApprovalClient asks for when
// none of the policies that asked is in ApprovalClient.Required: two, the stricter
// choice (a policy that counts fewer is then satisfied too).
const DefaultRequiredApprovals = 2

// ApprovalClient implements Approvals on the control plane's approvals API
// (docs/approvals.md) through approval.Client, which authenticates with the gate's own
// X509-SVID (spiffe://TD/gate/NAME: only gates may file for another agent and consume).
//
//   - ID empty: files a request bound to req.IntentHash and returns its id;
//   - ID set: checks the approval for req.IntentHash and returns its approvers once it
//     is approved (an *ApprovalRefusal with approval_pending, approval_denied,
//     approval_expired or approval_used otherwise);
//   - ID and Consume set: uses the approval up, atomically on the control plane, so one
//     approval releases exactly one call.
//
// An unknown id, an id filed for another request or one this gate may not see is
// ErrApprovalInvalid; any other failure (network, control plane down) is returned as is
// and the gate refuses with approvals_unavailable: it fails closed.
type ApprovalClient struct {
	Client *approval.Client
	// Required maps a policy @id to the distinct approvals it needs (the number its
	// `context.approvals.count < N` condition names); the request asks for the largest
	// among the policies that asked, DefaultRequiredApprovals for a policy not listed.
	Required map[string]int
	// TTL of a filed request; zero: the control plane's default (one hour).
	TTL time.Duration
}

var _ Approvals = (*ApprovalClient)(nil)

// Approval implements Approvals.
func (a *ApprovalClient) Approval(ctx context.Context, req ApprovalRequest) (ApprovalState, error) {
	if a == nil || a.Client == nil {
		return ApprovalState{}, ErrNoApprovals
	}
	if req.ID == "" {
		return a.file(ctx, req)
	}
	check := a.Client.Check
	if req.Consume {
		check = a.Client.Consume
	}
	st, err := check(ctx, req.ID, req.IntentHash)
	if err != nil {
		return ApprovalState{}, approvalErr(err)
	}
	switch st.Status {
	case approval.StateApproved, approval.StateUsed:
		if st.Status == approval.StateUsed && !req.Consume {
			break
		}
		return ApprovalState{ID: st.ID, Approvers: st.Approvers}, nil
	}
	reason, ok := refusalOfState[st.Status]
	if !ok {
		reason = ReasonApprovalInvalid
	}
	return ApprovalState{}, &ApprovalRefusal{Reason: reason,
		Message: fmt.Sprintf("approval %s is %s (%d of %d distinct approvals)", st.ID, st.Status, st.Count, st.Required)}
}

var refusalOfState = map[string]string{
	approval.StatePending: ReasonApprovalPending,
	approval.StateDenied:  ReasonApprovalDenied,
	approval.StateExpired: ReasonApprovalExpired,
	approval.StateUsed:    ReasonApprovalUsed,
}

func (a *ApprovalClient) file(ctx context.Context, req ApprovalRequest) (ApprovalState, error) {
	required, policyID := 0, ""
	for _, p := range req.PolicyIDs {
		n, ok := a.Required[p]
		if !ok {
			n = DefaultRequiredApprovals
		}
		if n > required || policyID == "" {
			required, policyID = max(n, required), p
		}
	}
	if policyID == "" {
		policyID, required = "unknown", DefaultRequiredApprovals
	}
	required = min(max(required, 1), approval.MaxRequired)
	id, err := a.Client.Request(ctx, approval.Req{
		Requester: req.Requester, Audience: req.Audience, Action: req.Action, Resource: req.Resource,
		Workflow: req.Workflow, Amount: req.Amount, Currency: req.Currency, IntentHash: req.IntentHash,
		Required: required, PolicyID: policyID, TTLSec: int(a.TTL / time.Second),
	})
	if err != nil {
		return ApprovalState{}, approvalErr(err)
	}
	return ApprovalState{ID: id}, nil
}

// approvalErr maps the control plane's refusals to the gate's.
func approvalErr(err error) error {
	var e *api.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code {
	case api.ReasonApprovalNotFound, api.ReasonApprovalIntentMismatch, api.ReasonApprovalForbidden:
		return fmt.Errorf("%w (%s)", ErrApprovalInvalid, e.Code)
	case api.ReasonApprovalPending, api.ReasonApprovalDenied, api.ReasonApprovalExpired, api.ReasonApprovalUsed:
		return &ApprovalRefusal{Reason: e.Code, Message: e.Message}
	}
	return err
}
