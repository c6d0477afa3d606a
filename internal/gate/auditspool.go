package gate

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/warden-a2a/warden/internal/audit"
)

// SpoolSink records each decision in the gate's local durable spool (internal/audit),
// from which Spool.Run ships batches to the control plane's Merkle log
// (audit.HTTPSink). An outage of the control plane loses nothing. Decisions on
// transactional and regulated actions are fsynced before Record returns, so the call is
// forwarded only once its event is durable; read-only actions (*.read, *.status) and
// refusals of them use the spool's group commit (at most FlushInterval, default 10 ms).
type SpoolSink struct {
	Spool *audit.Spool
	Zone  string
	// GateID is the SPIFFE ID the gate ships with (its SVID's): the agent's own for a
	// gate that presents its agent's SVID, else its /gate/ identity. Empty: the protected
	// agent's (Event.Gate). The control plane accepts only events whose gate_id is the
	// shipping identity (docs/audit-events.md).
	GateID string
}

var _ AuditSink = SpoolSink{}

// Record implements AuditSink.
func (s SpoolSink) Record(ctx context.Context, ev Event) error {
	a := ToAuditEvent(ev, s.Zone)
	if s.GateID != "" {
		a.GateID = s.GateID
	}
	return s.Spool.Append(ctx, a, durability(ev.Action))
}

func durability(action string) audit.Durability {
	if strings.HasSuffix(action, ".read") || strings.HasSuffix(action, ".status") {
		return audit.Batched
	}
	return audit.Sync
}

// ToAuditEvent maps a gate decision to the audit log's decision event
// (docs/audit-events.md). gate_id is the protected agent's SPIFFE ID; SpoolSink replaces
// it with the shipping identity when the gate has one of its own. The protected agent is
// always the callee (inbound, legacy) or the caller (outbound).
func ToAuditEvent(ev Event, zone string) audit.Event {
	out := audit.Event{
		V: audit.SchemaVersion, ID: ev.DecisionID, Kind: audit.KindDecision, Time: ev.Time.UTC(),
		WorkflowID: ev.Workflow, Caller: ev.Peer, Callee: ev.Gate, IntentJTI: ev.IntentID,
		Action: ev.Action, Resource: ev.Resource, PolicyRevision: ev.Revision, DeterminingPolicies: ev.PolicyIDs,
		Decision: audit.DecisionDeny, Reason: ev.Reason, GateID: ev.Gate, Zone: zone,
		Detail:           map[string]string{"mode": ev.Mode},
		CallerCertSHA256: ev.CallerCertSHA256, Initiator: ev.Initiator, Purpose: ev.Purpose,
		Obligations: ev.Obligations, LatencyUS: ev.LatencyUS, TraceID: ev.TraceID, SpanID: ev.SpanID,
		Amount: ev.Amount, Currency: ev.Currency, ResourceStatus: ev.ResourceStatus,
	}
	if ev.AttestationTier != "" {
		out.Attestation = &audit.Attestation{Tier: ev.AttestationTier, AgeMS: ev.AttestationAgeS * 1000, ResultID: ev.AttestationResultID}
	}
	out.Intent, out.DataObjects = ev.Intent, ev.DataObjects
	for _, der := range ev.CallerChain {
		out.CallerChain = append(out.CallerChain, base64.StdEncoding.EncodeToString(der))
	}
	if ev.Mode == ModeOutbound { // the local agent calls out: it is the caller
		out.Caller, out.Callee = ev.Gate, ev.Peer
	}
	if ev.Allow {
		out.Decision = audit.DecisionAllow
	}
	for k, v := range map[string]string{"method": ev.Method, "message": ev.Message, "approval_id": ev.ApprovalID,
		"local_caller": ev.LocalCaller} {
		if v != "" {
			out.Detail[k] = v
		}
	}
	if ev.TrustVer != 0 {
		out.Detail["trust_state_version"] = strconv.FormatInt(ev.TrustVer, 10)
	}
	if ev.Stale {
		out.Detail["stale"] = "true"
	}
	if ev.Undeclared {
		out.Detail["undeclared_path"] = "true"
	}
	if ev.ActionClass != "" {
		out.Detail["action_class"] = ev.ActionClass
	}
	if ev.WouldDeny != "" {
		out.Reason = ReasonWouldDeny
		out.Detail["would_deny"] = ev.WouldDeny
	}
	return out
}
