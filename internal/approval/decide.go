package approval

import (
	"context"
	"errors"
	"path"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/store"
)

// ValidateStatement checks the shape of a signed decision before any key is looked up.
func ValidateStatement(st *Statement) error {
	switch {
	case st.Version != StatementVersion:
		return refuse(api.ReasonBadRequest, "statement version must be %d", StatementVersion)
	case st.Decision != DecisionApprove && st.Decision != DecisionDeny:
		return refuse(api.ReasonBadRequest, "decision must be approve or deny")
	case !nameRE.MatchString(st.Approver):
		return refuse(api.ReasonBadRequest, "approver must match [a-z0-9][a-z0-9._-]{0,62}")
	case !printable(st.ApprovalID, 64, false):
		return refuse(api.ReasonBadRequest, "approval_id is required")
	case !printable(st.Reason, 512, true):
		return refuse(api.ReasonBadRequest, "reason: printable, at most 512 bytes")
	}
	return nil
}

// Decide verifies and records one approver's signed decision, in this order (each step
// a refusal with its reason): statement shape; approver registered
// (ReasonApproverUnknown); signature by that approver's key (ReasonApprovalBadSignature);
// signed_at within MaxSkew of now (ReasonApprovalStale); request exists
// (ReasonApprovalNotFound); every bound field of the statement equals the request
// (ReasonApprovalBinding); approver is not the requester (ReasonSelfApproval); request
// still pending (ReasonApprovalExpired, ReasonApprovalDenied, ReasonApprovalClosed);
// first decision of this approver (ReasonAlreadyDecided). The signature is checked before
// the request is read, so an unauthenticated caller learns nothing about request ids.
// It returns the state after the decision.
func (s *Service) Decide(ctx context.Context, st Statement, sig []byte) (Status, error) {
	st2, err := s.decide(ctx, st, sig)
	if err != nil {
		if reason := ReasonOf(err); reason != "" {
			s.emit(Event{Kind: EventRefused, ApprovalID: st.ApprovalID, Approver: st.Approver, Decision: st.Decision, Reason: reason})
		}
	}
	return st2, err
}

func (s *Service) decide(ctx context.Context, st Statement, sig []byte) (Status, error) {
	if err := ValidateStatement(&st); err != nil {
		return Status{}, err
	}
	a, err := s.st.GetApprover(ctx, st.Approver)
	if errors.Is(err, ErrNotFound) {
		return Status{}, refuse(api.ReasonApproverUnknown, "no approver %q is registered", st.Approver)
	} else if err != nil {
		return Status{}, err
	}
	pub, err := ParsePublicKeyPEM(a.PublicKeyPEM)
	if err != nil {
		return Status{}, err
	}
	if !Verify(pub, &st, sig) {
		return Status{}, refuse(api.ReasonApprovalBadSignature, "the signature does not verify with the key registered for %s", st.Approver)
	}
	now := s.now()
	if d := now.Sub(time.Unix(st.SignedAt, 0)); d > MaxSkew || d < -MaxSkew {
		return Status{}, refuse(api.ReasonApprovalStale, "signed_at is %s away from the server's clock (at most %s)", d.Round(time.Second), MaxSkew)
	}
	r, ds, err := s.st.GetRequest(ctx, st.ApprovalID)
	if errors.Is(err, ErrNotFound) {
		return Status{}, refuse(api.ReasonApprovalNotFound, "no approval %q", st.ApprovalID)
	} else if err != nil {
		return Status{}, err
	}
	if st.IntentHash != r.IntentHash || st.Requester != r.Requester || st.Action != r.Action ||
		st.Resource != r.Resource || st.Amount != r.Amount || st.Currency != r.Currency {
		return Status{}, refuse(api.ReasonApprovalBinding, "the statement does not name this request's requester, action, resource, amount, currency and intent hash")
	}
	if IsSelf(&a, r.Requester) {
		return Status{}, refuse(api.ReasonSelfApproval, "approver %s is the requester %s", a.Name, r.Requester)
	}
	before := StatusOf(&r, ds, now)
	switch before.Status {
	case StateExpired:
		return Status{}, refuse(api.ReasonApprovalExpired, "approval %s expired at %s", r.ID, r.ExpiresAt.Format(time.RFC3339))
	case StateDenied:
		return Status{}, refuse(api.ReasonApprovalDenied, "approval %s was denied", r.ID)
	case StateApproved, StateUsed:
		return Status{}, refuse(api.ReasonApprovalClosed, "approval %s is already approved", r.ID)
	}
	msg, err := SigningBytes(&st)
	if err != nil {
		return Status{}, err
	}
	d := Decision{ApprovalID: r.ID, Approver: a.Name, Decision: st.Decision, Reason: st.Reason, Statement: msg,
		Signature: sig, KeyID: KeyID(pub), DecidedAt: now.UTC()}
	switch err := s.st.AddDecision(ctx, d); {
	case errors.Is(err, ErrExists):
		return Status{}, refuse(api.ReasonAlreadyDecided, "%s already decided approval %s", a.Name, r.ID)
	case errors.Is(err, ErrNotFound):
		return Status{}, refuse(api.ReasonApprovalNotFound, "no approval %q", r.ID)
	case err != nil:
		return Status{}, err
	}
	// Re-read: a concurrent decision (another replica) may have landed meanwhile.
	r, ds, err = s.st.GetRequest(ctx, r.ID)
	if err != nil {
		return Status{}, err
	}
	after := StatusOf(&r, ds, now)
	e := eventOf(EventDecided, &r)
	e.Approver, e.Decision, e.Status, e.Reason = a.Name, st.Decision, after.Status, st.Reason
	s.emit(e)
	if after.Status != before.Status && (after.Status == StateApproved || after.Status == StateDenied) {
		e.Kind = map[string]string{StateApproved: EventApproved, StateDenied: EventDenied}[after.Status]
		s.emit(e)
	}
	return after, nil
}

// IsSelf reports whether approver a is the requester: its linked SPIFFE ID is the
// requester, or its name is the requester's name (the last path segment of its SPIFFE
// ID, which policy also refuses to count: policy.CallContext.Approvers).
func IsSelf(a *Approver, requester string) bool {
	if a.SPIFFEID != "" && a.SPIFFEID == requester {
		return true
	}
	id, err := spiffeid.FromString(requester)
	return a.Name == requester || (err == nil && path.Base(id.Path()) == a.Name)
}

// AddApprover registers an approver with its public key, staging events in the same
// transaction (Store.PutApprover).
func (s *Service) AddApprover(ctx context.Context, in api.Approver, events ...store.Event) (Approver, error) {
	if !nameRE.MatchString(in.Name) {
		return Approver{}, refuse(api.ReasonBadRequest, "name must match [a-z0-9][a-z0-9._-]{0,62}")
	}
	if _, err := ParsePublicKeyPEM([]byte(in.PublicKey)); err != nil {
		return Approver{}, refuse(api.ReasonBadRequest, "%v", err)
	}
	if in.SPIFFEID != "" {
		if _, err := spiffeid.FromString(in.SPIFFEID); err != nil {
			return Approver{}, refuse(api.ReasonBadRequest, "spiffe_id must be a SPIFFE ID")
		}
	}
	a := Approver{Name: in.Name, PublicKeyPEM: []byte(in.PublicKey), SPIFFEID: in.SPIFFEID, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	if err := s.st.PutApprover(ctx, a, events...); err != nil {
		return Approver{}, err
	}
	return a, nil
}

// APIApprover is the wire form of a.
func APIApprover(a Approver) api.Approver {
	out := api.Approver{Name: a.Name, PublicKey: string(a.PublicKeyPEM), SPIFFEID: a.SPIFFEID, CreatedAt: a.CreatedAt}
	if pub, err := ParsePublicKeyPEM(a.PublicKeyPEM); err == nil {
		out.KeyID = KeyID(pub)
	}
	return out
}

// APIRecord is the wire form of a request with its decisions and state.
func APIRecord(r Request, ds []Decision, st Status) api.ApprovalRecord {
	out := api.ApprovalRecord{ApprovalStatus: st, Requester: r.Requester, Audience: r.Audience, FiledBy: r.FiledBy, IntentHash: r.IntentHash,
		Workflow: r.Workflow, CreatedAt: r.CreatedAt, Decisions: []api.ApprovalDecided{}}
	for _, d := range ds {
		out.Decisions = append(out.Decisions, api.ApprovalDecided{Approver: d.Approver, Decision: d.Decision, Reason: d.Reason, DecidedAt: d.DecidedAt})
	}
	return out
}

// StatementFor returns the statement an approver signs for record rec.
func StatementFor(rec *api.ApprovalRecord, approver, decision, reason string, now time.Time) Statement {
	return Statement{Version: StatementVersion, ApprovalID: rec.ID, IntentHash: rec.IntentHash, Requester: rec.Requester,
		Action: rec.Action, Resource: rec.Resource, Amount: rec.Amount, Currency: rec.Currency, Approver: approver,
		Decision: decision, Reason: reason, SignedAt: now.Unix()}
}
