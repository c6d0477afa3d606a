package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// SchemaVersion is the value of Event.V written by this package. ParseEvent rejects others.
const SchemaVersion = 1

// MaxEventSize bounds the canonical encoding of one event (and what ParseEvent accepts).
const MaxEventSize = 64 << 10

// Kind names what an event records. KindDecision is one gate decision; every other kind
// is a lifecycle event of the control plane.
type Kind string

// Event kinds. The list is closed: ParseEvent rejects any other value. Add a kind with the
// code path that writes it and its row in docs/audit-events.md: tests fail on a kind that
// is documented but not written (internal/server TestEveryDocumentedKindIsWritten,
// internal/gate TestDocumentedDecisionFieldsAreWritten) or written but not documented
// (TestDocumentedKindsAreTheKnownKinds).
const (
	KindDecision     Kind = "decision"      // one authorization decision at a gate
	KindEnrollment   Kind = "enrollment"    // an agent enrolled (join token consumed, first SVID)
	KindRenewal      Kind = "renewal"       // an SVID renewed
	KindRevocation   Kind = "revocation"    // an SVID or identity revoked
	KindQuarantine   Kind = "quarantine"    // an agent quarantined (or released: Outcome)
	KindSuspension   Kind = "suspension"    // an agent suspended (or reinstated: Outcome)
	KindAttestation  Kind = "attestation"   // an attestation result appraised, or a challenge pushed
	KindApproval     Kind = "approval"      // a human approval granted or refused
	KindKillSwitch   Kind = "kill_switch"   // a kill switch engaged or released
	KindIncidentMode Kind = "incident_mode" // incident mode entered or left
	KindZone         Kind = "zone"          // a zone's state or max_staleness set by an operator
	KindAnomaly      Kind = "anomaly"       // an anomaly signal raised by the detector
	KindAccess       Kind = "access"        // a control-plane request refused (Reason), other than enrollment and renewal
	KindCARotation   Kind = "ca_rotation"   // the intermediate CA replaced (Serial: the new one)
	KindEntry        Kind = "entry"         // a registration entry created, its attributes updated, or deleted
	KindJoinToken    Kind = "join_token"    // a join token created (never the secret)
	KindApprover     Kind = "approver"      // an approver added or deleted
	KindFederation   Kind = "federation"    // a federation relationship added or removed, a foreign bundle updated or refused
	KindAuditor      Kind = "auditor"       // an auditor credential issued (read-only: audit search)
	KindPolicyBundle Kind = "policy_bundle" // a policy bundle activated or refused (server: a push; gate: a swap)
)

var knownKinds = map[Kind]bool{
	KindDecision: true, KindEnrollment: true, KindRenewal: true, KindRevocation: true,
	KindQuarantine: true, KindSuspension: true, KindAttestation: true, KindApproval: true,
	KindKillSwitch: true, KindIncidentMode: true, KindZone: true, KindAnomaly: true, KindAccess: true,
	KindCARotation: true, KindEntry: true, KindJoinToken: true, KindApprover: true,
	KindFederation: true, KindAuditor: true, KindPolicyBundle: true,
}

// Kinds returns every kind an event may have, sorted (docs/audit-events.md lists each,
// and a test holds the two together).
func Kinds() []Kind {
	out := make([]Kind, 0, len(knownKinds))
	for k := range knownKinds {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// KnownKind reports whether k is one of the event kinds above.
func KnownKind(k Kind) bool { return knownKinds[k] }

// Decision values of a decision event.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// Attestation is the caller's attestation result as the gate saw it when deciding.
type Attestation struct {
	Tier     string `json:"tier"`                // none | affirming | warning | contraindicated
	AgeMS    int64  `json:"age_ms"`              // age of the result at decision time
	ResultID string `json:"result_id,omitempty"` // id of the attestation result (its lifecycle event)
}

// Event is one audit record. Decision events fill the decision fields; lifecycle events
// fill Subject, Actor, Outcome, Reason and Detail. The JSON field order below is the
// canonical order (see Canonical); docs/audit-events.md documents every field.
type Event struct {
	V    int       `json:"v"`
	ID   string    `json:"id"` // decision id or event id; unique in the log
	Kind Kind      `json:"kind"`
	Time time.Time `json:"time"` // UTC

	// Correlation.
	WorkflowID string `json:"workflow_id,omitempty"`
	TraceID    string `json:"trace_id,omitempty"` // W3C trace-id, 32 hex
	SpanID     string `json:"span_id,omitempty"`  // W3C parent-id, 16 hex

	// Decision fields.
	Initiator           string       `json:"initiator,omitempty"` // who started the workflow
	Caller              string       `json:"caller,omitempty"`    // caller SPIFFE ID
	Callee              string       `json:"callee,omitempty"`    // callee SPIFFE ID
	CallerCertSHA256    string       `json:"caller_cert_sha256,omitempty"`
	CallerChain         []string     `json:"caller_chain,omitempty"` // the caller's certificate chain as presented: base64 DER, leaf first
	IntentJTI           string       `json:"intent_jti,omitempty"`
	Intent              string       `json:"intent,omitempty"` // the signed intent (compact JWS) as verified
	Action              string       `json:"action,omitempty"`
	Resource            string       `json:"resource,omitempty"`
	DataObjects         []string     `json:"data_objects,omitempty"`
	Purpose             string       `json:"purpose,omitempty"`
	Attestation         *Attestation `json:"attestation,omitempty"`
	PolicyRevision      string       `json:"policy_revision,omitempty"`
	DeterminingPolicies []string     `json:"determining_policies,omitempty"`
	Decision            string       `json:"decision,omitempty"` // allow | deny
	Obligations         []string     `json:"obligations,omitempty"`
	LatencyUS           int64        `json:"latency_us,omitempty"`
	GateID              string       `json:"gate_id,omitempty"`
	Zone                string       `json:"zone,omitempty"`
	// The business parameters the decision was taken on, where the action declares
	// them (docs/policy.md "Business parameters").
	Amount         *int64 `json:"amount,omitempty"`
	Currency       string `json:"currency,omitempty"`
	ResourceStatus string `json:"resource_status,omitempty"`

	// Lifecycle fields.
	Subject string `json:"subject,omitempty"` // SPIFFE ID (or name) the event is about
	Actor   string `json:"actor,omitempty"`   // who caused it: operator, server, detector
	Outcome string `json:"outcome,omitempty"` // e.g. engaged | released, granted | refused
	Serial  string `json:"serial,omitempty"`  // certificate serial (hex) where one applies

	// Shared.
	Reason string            `json:"reason,omitempty"` // stable reason code
	Detail map[string]string `json:"detail,omitempty"` // small extra facts, keys sorted
}

// ErrInvalidEvent is wrapped by every ParseEvent and Validate failure.
var ErrInvalidEvent = errors.New("audit: invalid event")

// Validate checks the event's shape: version, a known kind, an id, a time, and for decision
// events a decision value. It returns an error wrapping ErrInvalidEvent.
func (e *Event) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, a...))
	}
	if e.V != SchemaVersion {
		return bad("version %d, want %d", e.V, SchemaVersion)
	}
	if e.ID == "" || len(e.ID) > 128 || strings.ContainsAny(e.ID, " \t\r\n") {
		return bad("id must be 1..128 characters without white space")
	}
	if !knownKinds[e.Kind] {
		return bad("unknown kind %q", e.Kind)
	}
	if e.Time.IsZero() {
		return bad("time missing")
	}
	if y := e.Time.UTC().Year(); y < 1970 || y > 9999 {
		return bad("time out of range")
	}
	if e.Kind == KindDecision && e.Decision != DecisionAllow && e.Decision != DecisionDeny {
		return bad("decision must be allow or deny, got %q", e.Decision)
	}
	if e.Kind != KindDecision && e.Decision != "" {
		return bad("decision set on a %s event", e.Kind)
	}
	if e.LatencyUS < 0 {
		return bad("negative latency")
	}
	return nil
}

// Canonical returns the canonical bytes of e: the log hashes and stores exactly these.
// They are compact JSON in the field order of the Event struct, time in UTC RFC 3339 with
// nanoseconds, Detail keys sorted, no trailing newline. Canonical validates e first.
func (e Event) Canonical() ([]byte, error) {
	e.Time = e.Time.UTC()
	if err := e.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&e); err != nil {
		return nil, fmt.Errorf("audit: encode event: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > MaxEventSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidEvent, len(b), MaxEventSize)
	}
	return b, nil
}

// ParseEvent decodes one event received from an untrusted source (a gate's batch, a spool
// file). It rejects oversized input, invalid UTF-8, unknown fields, trailing data and any
// event that fails Validate. Errors wrap ErrInvalidEvent. Re-encode with Canonical before
// appending: the log stores canonical bytes, never the bytes as received.
func ParseEvent(data []byte) (Event, error) {
	var e Event
	if len(data) > MaxEventSize {
		return e, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidEvent, len(data), MaxEventSize)
	}
	if !utf8.Valid(data) {
		return e, fmt.Errorf("%w: not UTF-8", ErrInvalidEvent)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Event{}, fmt.Errorf("%w: trailing data", ErrInvalidEvent)
	}
	e.Time = e.Time.UTC()
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}
