package approval

import (
	"context"
	"errors"
	"time"

	"github.com/warden-a2a/warden/internal/store"
)

// Store errors callers tell apart with errors.Is.
var (
	// ErrNotFound: no request or approver with that id or name.
	ErrNotFound = errors.New("approval: not found")
	// ErrExists: a request with that id, an approver with that name, or a decision of
	// that approver on that request already exists.
	ErrExists = errors.New("approval: already exists")
	// ErrNotConsumable: Consume changed nothing: the approval was already used, was
	// denied, or has expired (the caller re-reads the request to tell which).
	ErrNotConsumable = errors.New("approval: not consumable")
)

// Request is one filed approval request.
type Request struct {
	ID         string
	Requester  string // SPIFFE ID of the agent whose call was refused
	Audience   string // SPIFFE ID of the agent it called (the filing gate's Self)
	FiledBy    string // SPIFFE ID of the gate (or agent) that filed it
	Action     string
	Resource   string
	Amount     int64
	Currency   string
	IntentHash string
	Required   int // distinct approvals needed
	PolicyID   string
	Workflow   string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	ConsumedAt time.Time // zero until a gate consumed the approval (single use)
	ConsumedBy string    // SPIFFE ID of the gate that consumed it
}

// Binding returns what r is for; IntentHash(r.Binding()) == r.IntentHash for every
// request filed through Service.File.
func (r *Request) Binding() Binding {
	return Binding{Requester: r.Requester, Audience: r.Audience, Action: r.Action, Resource: r.Resource,
		Workflow: r.Workflow, Amount: r.Amount, Currency: r.Currency}
}

// Decision is one approver's signed decision on a request.
type Decision struct {
	ApprovalID string
	Approver   string
	Decision   string // DecisionApprove | DecisionDeny
	Reason     string
	Statement  []byte // SigningBytes of the statement, as verified
	Signature  []byte
	KeyID      string
	DecidedAt  time.Time
}

// Approver is a registered human approver.
type Approver struct {
	Name         string
	PublicKeyPEM []byte
	SPIFFEID     string // optional identity this person also acts as
	CreatedAt    time.Time
}

// Store persists requests, decisions and approvers. NewSQLite and NewPostgres are the
// implementations; both pass the same suite (store_test.go). Safe for concurrent use,
// also by several server replicas on one database.
type Store interface {
	// CreateRequest stores r; ErrExists if its id is taken.
	CreateRequest(ctx context.Context, r Request) error
	// GetRequest returns the request and its decisions (oldest first), or ErrNotFound.
	GetRequest(ctx context.Context, id string) (Request, []Decision, error)
	// ListRequests returns up to limit requests, newest first.
	ListRequests(ctx context.Context, limit int) ([]Request, error)
	// AddDecision stores d; ErrNotFound if the request does not exist, ErrExists if
	// this approver already decided it (one decision per approver and request, so the
	// same approver twice counts once).
	AddDecision(ctx context.Context, d Decision) error
	// Consume marks request id used by gate `by` at `at`, atomically and only if it is
	// not used yet, not expired at `at` and has no deny decision; otherwise it changes
	// nothing and returns ErrNotConsumable (ErrNotFound if there is no such request). Of
	// concurrent calls on one request, from any number of replicas, exactly one succeeds.
	// The caller checks before that the request is approved (enough approvers).
	Consume(ctx context.Context, id, by string, at time.Time) error
	// PurgeExpired deletes the requests that expired before `before`, used or not, with
	// their decisions, and returns how many requests it deleted. Their history stays in
	// the audit log (approval events).
	PurgeExpired(ctx context.Context, before time.Time) (int64, error)

	// PutApprover registers a; ErrExists if the name is taken. events are staged in the
	// same transaction (store.Event: the control plane's outbox), only when a is stored.
	PutApprover(ctx context.Context, a Approver, events ...store.Event) error
	// GetApprover returns the approver, or ErrNotFound.
	GetApprover(ctx context.Context, name string) (Approver, error)
	// ListApprovers returns all approvers ordered by name.
	ListApprovers(ctx context.Context) ([]Approver, error)
	// DeleteApprover removes the approver (its recorded decisions stay); ErrNotFound if
	// absent. events are staged as for PutApprover, only when an approver was deleted.
	DeleteApprover(ctx context.Context, name string, events ...store.Event) error
}
