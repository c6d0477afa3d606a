package approval

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
)

// Status is the answer of a check: the request's state and who approved it.
type Status = api.ApprovalStatus

// States of a request (Status.Status).
const (
	StatePending  = "pending"
	StateApproved = "approved" // at least Required distinct approvers approved, none denied, not expired
	StateDenied   = "denied"   // an approver denied it (final, even after expiry)
	StateExpired  = "expired"  // now >= ExpiresAt and not denied
	StateUsed     = "used"     // approved, then consumed by a gate forwarding the call (final)
)

// Limits of a request.
const (
	DefaultTTL  = time.Hour
	MaxTTL      = 24 * time.Hour
	MaxRequired = 5
	// MaxSkew bounds |server time - statement signed_at|.
	MaxSkew = 5 * time.Minute
)

// Error is a refusal with a stable reason code (api.ReasonApproval* and
// api.ReasonBadRequest).
type Error struct {
	Reason  string
	Message string
}

func (e *Error) Error() string { return "approval: " + e.Reason + ": " + e.Message }

func refuse(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the reason code of a refusal, or "" for other errors.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// Event kinds (Event.Kind).
const (
	EventRequested = "approval.requested" // a request was filed
	EventDecided   = "approval.decided"   // an approver's signed decision was recorded
	EventApproved  = "approval.approved"  // the decision that reached Required
	EventDenied    = "approval.denied"    // the decision that denied the request
	EventRefused   = "approval.refused"   // a filing, decision or check was refused (Reason)
	EventChecked   = "approval.checked"   // a check answered (Status)
	EventConsumed  = "approval.consumed"  // a gate used the approval up forwarding the call
)

// Event is one step of an approval's life, for the audit log and metrics. It carries no
// key, signature or secret.
type Event struct {
	Kind       string
	Time       time.Time
	ApprovalID string
	Requester  string
	FiledBy    string
	Caller     string // SPIFFE ID of the filer or checker, when there is one
	Approver   string
	Decision   string
	Action     string
	Resource   string
	Amount     int64
	Currency   string
	PolicyID   string
	Status     string // state after the step
	Reason     string // refusal reason code (EventRefused) or the approver's reason text
}

// Config configures a Service.
type Config struct {
	Store   Store            // required
	Now     func() time.Time // default time.Now
	OnEvent func(Event)      // called synchronously after each step; nil: none
}

// Service implements filing, deciding and checking approvals over a Store.
type Service struct {
	st      Store
	now     func() time.Time
	onEvent func(Event)
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("approval: Store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{st: cfg.Store, now: cfg.Now, onEvent: cfg.OnEvent}, nil
}

// Store returns the underlying store.
func (s *Service) Store() Store { return s.st }

func (s *Service) emit(e Event) {
	if s.onEvent != nil {
		e.Time = s.now().UTC()
		s.onEvent(e)
	}
}

func eventOf(kind string, r *Request) Event {
	return Event{Kind: kind, ApprovalID: r.ID, Requester: r.Requester, FiledBy: r.FiledBy, Action: r.Action,
		Resource: r.Resource, Amount: r.Amount, Currency: r.Currency, PolicyID: r.PolicyID}
}

var (
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	nameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
)

// printable: non-empty (unless optional), at most max bytes, valid UTF-8, no control
// characters (the value reaches terminals and logs).
func printable(s string, max int, optional bool) bool {
	if s == "" {
		return optional
	}
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// CanFile reports whether caller may file a request for requester: a gate
// (spiffe://TD/gate/NAME of the server's trust domain) files for any requester, an agent
// only for itself.
func CanFile(td spiffeid.TrustDomain, caller spiffeid.ID, requester string) bool {
	if caller.TrustDomain() != td {
		return false
	}
	if strings.HasPrefix(caller.Path(), "/gate/") {
		return true
	}
	return strings.HasPrefix(caller.Path(), "/agent/") && caller.String() == requester
}

// ValidateRequest checks the shape of a filing.
func ValidateRequest(req *api.ApprovalRequest) error {
	if _, err := spiffeid.FromString(req.Requester); err != nil {
		return refuse(api.ReasonBadRequest, "requester must be a SPIFFE ID")
	}
	if _, err := spiffeid.FromString(req.Audience); err != nil {
		return refuse(api.ReasonBadRequest, "audience must be a SPIFFE ID")
	}
	switch {
	case !printable(req.Action, 256, false):
		return refuse(api.ReasonBadRequest, "action is required: printable, at most 256 bytes")
	case !printable(req.Resource, 256, true):
		return refuse(api.ReasonBadRequest, "resource: printable, at most 256 bytes")
	case req.Amount < 0:
		return refuse(api.ReasonBadRequest, "amount must not be negative")
	case req.Currency != "" && !currencyRE.MatchString(req.Currency):
		return refuse(api.ReasonBadRequest, "currency must be an ISO 4217 code (three capital letters) or empty")
	case !validHash(req.IntentHash):
		return refuse(api.ReasonBadRequest, "intent_hash must be base64url SHA-256 (43 characters)")
	case req.Required < 1 || req.Required > MaxRequired:
		return refuse(api.ReasonBadRequest, "required must be between 1 and %d", MaxRequired)
	case !printable(req.PolicyID, 128, false):
		return refuse(api.ReasonBadRequest, "policy_id is required: printable, at most 128 bytes")
	case !printable(req.Workflow, 256, true):
		return refuse(api.ReasonBadRequest, "workflow: printable, at most 256 bytes")
	case req.TTLSec < 0 || time.Duration(req.TTLSec)*time.Second > MaxTTL:
		return refuse(api.ReasonBadRequest, "ttl_s must be between 0 (default %s) and %d", DefaultTTL, int(MaxTTL/time.Second))
	case subtle.ConstantTimeCompare([]byte(req.IntentHash), []byte(IntentHash(bindingOf(req)))) != 1:
		// The approvers sign the fields and the hash; the gate checks the hash. Both
		// must say the same thing.
		return refuse(api.ReasonBadRequest, "intent_hash is not IntentHash of requester, audience, action, resource, workflow, amount and currency")
	}
	return nil
}

func bindingOf(req *api.ApprovalRequest) Binding {
	return Binding{Requester: req.Requester, Audience: req.Audience, Action: req.Action, Resource: req.Resource,
		Workflow: req.Workflow, Amount: req.Amount, Currency: req.Currency}
}

// File records a request filed by caller (already authorized with CanFile) and returns it.
func (s *Service) File(ctx context.Context, caller spiffeid.ID, req api.ApprovalRequest) (Request, error) {
	if err := ValidateRequest(&req); err != nil {
		s.emit(Event{Kind: EventRefused, Caller: caller.String(), Requester: req.Requester, Action: req.Action, Reason: ReasonOf(err)})
		return Request{}, err
	}
	ttl := time.Duration(req.TTLSec) * time.Second
	if ttl == 0 {
		ttl = DefaultTTL
	}
	now := s.now().UTC()
	r := Request{
		ID: newID(), Requester: req.Requester, Audience: req.Audience, FiledBy: caller.String(), Action: req.Action, Resource: req.Resource,
		Amount: req.Amount, Currency: req.Currency, IntentHash: req.IntentHash, Required: req.Required,
		PolicyID: req.PolicyID, Workflow: req.Workflow, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	if err := s.st.CreateRequest(ctx, r); err != nil {
		return Request{}, err
	}
	// Reload: the store's time precision (microseconds) is what later answers show.
	r.CreatedAt, r.ExpiresAt = r.CreatedAt.Truncate(time.Microsecond), r.ExpiresAt.Truncate(time.Microsecond)
	e := eventOf(EventRequested, &r)
	e.Caller, e.Status = caller.String(), StatePending
	s.emit(e)
	return r, nil
}

// newID returns "apr_" + 128 random bits, base64url.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "apr_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// StatusOf computes the state of r with decisions ds at now.
func StatusOf(r *Request, ds []Decision, now time.Time) Status {
	st := Status{ID: r.ID, Required: r.Required, Action: r.Action, Resource: r.Resource, Amount: r.Amount,
		Currency: r.Currency, PolicyID: r.PolicyID, ExpiresAt: r.ExpiresAt, Approvers: []string{}}
	denied := false
	for _, d := range ds {
		switch d.Decision {
		case DecisionApprove:
			if !slices.Contains(st.Approvers, d.Approver) && d.Approver != r.Requester {
				st.Approvers = append(st.Approvers, d.Approver)
			}
		case DecisionDeny:
			denied = true
		}
	}
	slices.Sort(st.Approvers)
	st.Count = len(st.Approvers)
	st.UsedAt, st.UsedBy = r.ConsumedAt, r.ConsumedBy
	switch {
	case !r.ConsumedAt.IsZero():
		st.Status = StateUsed
	case denied:
		st.Status = StateDenied
	case !now.Before(r.ExpiresAt):
		st.Status = StateExpired
	case st.Count >= r.Required:
		st.Status = StateApproved
	default:
		st.Status = StatePending
	}
	return st
}

// Check answers the state of request id for the intent hash the gate computed on the
// retry. A hash other than the one filed is refused (ReasonApprovalIntentMismatch): the
// approval belongs to another request. CanCheck decides who may ask.
func (s *Service) Check(ctx context.Context, caller spiffeid.ID, id, intentHash string) (Status, error) {
	_, st, err := s.check(ctx, caller, id, intentHash)
	return st, err
}

// Consume is Check, then uses the approval up: a gate calls it when it forwards the call
// the approval allowed. It refuses unless the request is approved now
// (ReasonApprovalPending, ReasonApprovalDenied, ReasonApprovalExpired) and not used
// (ReasonApprovalUsed); only gates may consume (ReasonApprovalForbidden). The store
// makes it atomic: of concurrent consumers on any replicas exactly one gets the status
// "used", with the approvers the gate feeds to policy.
func (s *Service) Consume(ctx context.Context, caller spiffeid.ID, id, intentHash string) (Status, error) {
	r, st, err := s.check(ctx, caller, id, intentHash)
	if err != nil {
		return Status{}, err
	}
	refused := func(reason, format string, args ...any) (Status, error) {
		e := eventOf(EventRefused, &r)
		e.Caller, e.Reason = caller.String(), reason
		s.emit(e)
		return Status{}, refuse(reason, format, args...)
	}
	if !strings.HasPrefix(caller.Path(), "/gate/") {
		return refused(api.ReasonApprovalForbidden, "only a gate may consume an approval")
	}
	if reason, ok := stateRefusal[st.Status]; ok {
		return refused(reason, "approval %s is %s (%d of %d approvals)", id, st.Status, st.Count, st.Required)
	}
	now := s.now()
	switch err := s.st.Consume(ctx, id, caller.String(), now); {
	case errors.Is(err, ErrNotConsumable):
		// Lost a race: another gate consumed it, or a deny or the expiry came first.
		if r2, ds, err := s.st.GetRequest(ctx, id); err == nil {
			if st2 := StatusOf(&r2, ds, now); st2.Status != StateApproved {
				return refused(stateRefusal[st2.Status], "approval %s is %s", id, st2.Status)
			}
		}
		return refused(api.ReasonApprovalUsed, "approval %s is already used", id)
	case errors.Is(err, ErrNotFound):
		return refused(api.ReasonApprovalNotFound, "no approval %q", id)
	case err != nil:
		return Status{}, err
	}
	st.Status, st.UsedAt, st.UsedBy = StateUsed, now.UTC().Truncate(time.Microsecond), caller.String()
	e := eventOf(EventConsumed, &r)
	e.Caller, e.Status = caller.String(), StateUsed
	s.emit(e)
	return st, nil
}

// stateRefusal maps the states that cannot be consumed to their reason codes.
var stateRefusal = map[string]string{
	StatePending: api.ReasonApprovalPending,
	StateDenied:  api.ReasonApprovalDenied,
	StateExpired: api.ReasonApprovalExpired,
	StateUsed:    api.ReasonApprovalUsed,
}

func (s *Service) check(ctx context.Context, caller spiffeid.ID, id, intentHash string) (Request, Status, error) {
	r, ds, err := s.st.GetRequest(ctx, id)
	if errors.Is(err, ErrNotFound) {
		s.emit(Event{Kind: EventRefused, ApprovalID: id, Caller: caller.String(), Reason: api.ReasonApprovalNotFound})
		return Request{}, Status{}, refuse(api.ReasonApprovalNotFound, "no approval %q", id)
	} else if err != nil {
		return Request{}, Status{}, err
	}
	if !CanCheck(caller, &r) {
		e := eventOf(EventRefused, &r)
		e.Caller, e.Reason = caller.String(), api.ReasonApprovalForbidden
		s.emit(e)
		return Request{}, Status{}, refuse(api.ReasonApprovalForbidden, "%s may not check this approval", caller)
	}
	if subtle.ConstantTimeCompare([]byte(intentHash), []byte(r.IntentHash)) != 1 {
		e := eventOf(EventRefused, &r)
		e.Caller, e.Reason = caller.String(), api.ReasonApprovalIntentMismatch
		s.emit(e)
		return Request{}, Status{}, refuse(api.ReasonApprovalIntentMismatch, "the approval was filed for another request (requester, audience, action, resource, workflow, amount or currency differ)")
	}
	st := StatusOf(&r, ds, s.now())
	e := eventOf(EventChecked, &r)
	e.Caller, e.Status = caller.String(), st.Status
	s.emit(e)
	return r, st, nil
}

// CanCheck reports whether caller may check r: any gate of r's filer's trust domain, the
// filer, or the requester.
func CanCheck(caller spiffeid.ID, r *Request) bool {
	if c := caller.String(); c == r.FiledBy || c == r.Requester {
		return true
	}
	filer, err := spiffeid.FromString(r.FiledBy)
	return err == nil && caller.TrustDomain() == filer.TrustDomain() && strings.HasPrefix(caller.Path(), "/gate/")
}

// Get returns a request, its decisions and its state (admin API).
func (s *Service) Get(ctx context.Context, id string) (Request, []Decision, Status, error) {
	r, ds, err := s.st.GetRequest(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Request{}, nil, Status{}, refuse(api.ReasonApprovalNotFound, "no approval %q", id)
	} else if err != nil {
		return Request{}, nil, Status{}, err
	}
	return r, ds, StatusOf(&r, ds, s.now()), nil
}
