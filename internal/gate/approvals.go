package gate

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/warden-a2a/warden/internal/jcs"
)

// ApprovalRequest asks the approvals service about one intent. With ID empty it files a
// new request; with ID set (the intent's apr) it asks for that approval's state.
type ApprovalRequest struct {
	ID         string   // apr of the retried intent; empty to file a new request
	IntentHash string   // ApprovalHash of the intent: the approval is bound to it
	Requester  string   // SPIFFE ID of the caller
	Audience   string   // SPIFFE ID of the protected agent
	Action     string   // act
	Resource   string   // res
	Amount     int64    // amount from the call's metadata
	PolicyIDs  []string // the policies that asked for the approval
	DecisionID string
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
// req.Requester, and return ErrApprovalInvalid otherwise.
type Approvals interface {
	Approval(ctx context.Context, req ApprovalRequest) (ApprovalState, error)
}

// ErrApprovalInvalid: the approval does not exist, or is bound to another intent.
var ErrApprovalInvalid = errors.New("gate: approval does not match this intent")

// ErrNoApprovals is returned by NoApprovals: this gate has no approvals service.
var ErrNoApprovals = errors.New("gate: no approvals service configured")

// NoApprovals is the default: it files nothing and approves nothing, so a decision that
// needs an approval is refused (approvals_unavailable).
type NoApprovals struct{}

// Approval implements Approvals.
func (NoApprovals) Approval(context.Context, ApprovalRequest) (ApprovalState, error) {
	return ApprovalState{}, ErrNoApprovals
}

// ApprovalHash binds an approval to what was asked, not to one intent token (a retry
// carries a fresh jti and body): base64url(SHA-256(JCS({"act","amount","aud","iss","res","wf"}))).
func ApprovalHash(iss, aud, act, res, wf string, amount int64) string {
	raw, _ := json.Marshal(map[string]any{"act": act, "amount": amount, "aud": aud, "iss": iss, "res": res, "wf": wf})
	canon, err := jcs.Transform(raw)
	if err != nil { // invalid UTF-8 in a claim: hash the encoder's output
		canon = raw
	}
	h := sha256.Sum256(canon)
	return base64.RawURLEncoding.EncodeToString(h[:])
}
