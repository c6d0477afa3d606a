package gate

import (
	"context"
	"log/slog"
	"time"
)

// Event is one audit record: every decision the gate takes, allow or refuse, with why.
type Event struct {
	DecisionID string    `json:"decision_id"`
	Time       time.Time `json:"time"`
	Gate       string    `json:"gate"` // SPIFFE ID of the protected agent (or system)
	Mode       string    `json:"mode"` // inbound | outbound | legacy
	Peer       string    `json:"peer,omitempty"`
	Method     string    `json:"method,omitempty"` // A2A method
	Action     string    `json:"action,omitempty"`
	Resource   string    `json:"resource,omitempty"`
	Workflow   string    `json:"workflow,omitempty"`
	IntentID   string    `json:"intent_id,omitempty"` // jti
	Allow      bool      `json:"allow"`
	Reason     string    `json:"reason"`
	Message    string    `json:"message,omitempty"`
	PolicyIDs  []string  `json:"policy_ids,omitempty"`
	Revision   string    `json:"policy_revision,omitempty"`
	TrustVer   int64     `json:"trust_state_version,omitempty"`
	Stale      bool      `json:"stale,omitempty"` // decided on a trust state older than max_staleness
	ApprovalID string    `json:"approval_id,omitempty"`
	// The business parameters decided on (policy.ParseParams), where the action
	// declares them: amount, currency, the resource's status.
	Amount         *int64 `json:"amount,omitempty"`
	Currency       string `json:"currency,omitempty"`
	ResourceStatus string `json:"resource_status,omitempty"`
	// LocalCaller (outbound) is the kernel's view of the local caller on a unix socket,
	// "uid=N pid=N" (SO_PEERCRED), or "secret" for a loopback caller with the secret.
	LocalCaller string `json:"local_caller,omitempty"`
	// Undeclared: the workflow catalog does not declare this caller → gate → action path.
	Undeclared bool `json:"undeclared,omitempty"`
	// WouldDeny is the workflow verdict (workflow_out_of_order, duplicate_step) of a call
	// forwarded in observe mode: audited with reason would_deny.
	WouldDeny string `json:"would_deny,omitempty"`
	// ActionClass is the class group of the action in the schema (read, advisory,
	// transactional, regulated): the control plane's higher-class trigger reads it.
	ActionClass string `json:"action_class,omitempty"`

	// For the audit decision event (docs/audit-events.md).
	CallerCertSHA256 string `json:"caller_cert_sha256,omitempty"` // hex SHA-256 of the peer's leaf (DER)
	// Evidence that outlives the caller's certificate (docs/audit-events.md): the intent
	// as verified and the chain it is bound to (cnf x5t#S256), so that the caller's
	// signature can be re-verified from the audit log (`warden audit show --verify-intent`).
	Intent      string   `json:"intent,omitempty"`       // compact JWS, set once verified
	CallerChain [][]byte `json:"caller_chain,omitempty"` // DER, leaf first, as presented in TLS
	// DataObjects are the data the catalog declares for this caller → gate → action.
	DataObjects         []string `json:"data_objects,omitempty"`
	AttestationResultID string   `json:"attestation_result_id,omitempty"` // the caller's result in the trust state
	Initiator           string   `json:"initiator,omitempty"`             // first actor of the delegation chain, else the caller
	Purpose             string   `json:"purpose,omitempty"`
	Obligations         []string `json:"obligations,omitempty"`
	AttestationTier     string   `json:"attestation_tier,omitempty"`
	AttestationAgeS     int64    `json:"attestation_age_s,omitempty"`
	LatencyUS           int64    `json:"latency_us,omitempty"` // time the gate spent deciding
	TraceID             string   `json:"trace_id,omitempty"`   // W3C trace-id of the decision span
	SpanID              string   `json:"span_id,omitempty"`
}

// AuditSink receives every decision. Record returning an error makes the gate refuse the
// call (ReasonAuditFailed): an unaudited call is not forwarded. internal/audit's Merkle
// log implements it; LogSink is the default.
type AuditSink interface {
	Record(ctx context.Context, ev Event) error
}

// LogSink writes each decision as one structured log line at info (a refused TLS
// handshake too: its reason and message name the cause) and hands it on to Next, if set.
// It fails only when Next does.
type LogSink struct {
	Logger *slog.Logger
	Next   AuditSink
}

var _ AuditSink = LogSink{}

// Record implements AuditSink.
func (s LogSink) Record(ctx context.Context, ev Event) error {
	if l := s.Logger; l != nil {
		decision := "deny"
		if ev.Allow {
			decision = "allow"
		}
		attrs := []slog.Attr{slog.String("decision_id", ev.DecisionID), slog.String("mode", ev.Mode),
			slog.String("caller", ev.Peer), slog.String("method", ev.Method),
			slog.String("action", ev.Action), slog.String("resource", ev.Resource),
			slog.String("decision", decision), slog.String("reason", ev.Reason)}
		if ev.Message != "" && !ev.Allow {
			attrs = append(attrs, slog.String("message", ev.Message))
		}
		if len(ev.PolicyIDs) > 0 {
			attrs = append(attrs, slog.Any("policy_ids", ev.PolicyIDs))
		}
		if ev.Stale {
			attrs = append(attrs, slog.Bool("stale", true))
		}
		if ev.TrustVer != 0 {
			attrs = append(attrs, slog.Int64("trust_state_version", ev.TrustVer))
		}
		l.LogAttrs(ctx, slog.LevelInfo, "gate decision", attrs...)
	}
	if s.Next != nil {
		return s.Next.Record(ctx, ev)
	}
	return nil
}
