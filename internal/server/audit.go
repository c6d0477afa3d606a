package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/telemetry"
)

// MaxAuditBatchBytes bounds one batch of events shipped by a gate.
const MaxAuditBatchBytes = 4 << 20

// emit appends a lifecycle event to the audit log, if one is configured. The change it
// records has already happened, so a failure is logged, not returned: the event is also
// in the server log with the same fields. Events recording a change of stored state are
// not emitted but committed with the change (commit, commitTrust in outbox.go).
func (s *Server) emit(ctx context.Context, ev audit.Event) {
	if s.cfg.Audit == nil {
		return
	}
	s.complete(&ev)
	// The caller's request may already be cancelled; the record must still be written.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := s.cfg.Audit.Append(ctx, ev); err != nil {
		s.log.Error("audit append failed", "kind", ev.Kind, "id", ev.ID, "subject", ev.Subject, "reason", ev.Reason, "err", err)
	}
}

func newEventID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// auditRequest records the outcome of an enrollment or renewal, granted or refused, with
// its reason code; the handlers annotate the response writer with the subject.
func (s *Server) auditRequest(r *http.Request, sw *statusWriter) {
	kind := audit.KindEnrollment
	switch r.URL.Path {
	case api.PathEnroll:
	case api.PathRenew, api.PathRecover:
		kind = audit.KindRenewal
	default:
		// Approvals refusals are approval events of their own (approval.refused).
		if sw.status >= 400 && sw.reason != "" && !strings.HasPrefix(r.URL.Path, api.PathApprovals) {
			s.accessRefused(r, sw)
		}
		return
	}
	ev := audit.Event{Kind: kind, Subject: sw.subject, Serial: sw.serial, Reason: sw.reason, Outcome: "granted",
		Detail: map[string]string{"request_id": requestID(r)}}
	if sw.status >= 400 {
		ev.Outcome = "refused"
		if ev.Subject == "" {
			ev.Subject = peerString(r)
		}
	}
	if ev.Subject == "" {
		ev.Subject = "unknown"
	}
	if ev.Reason == "" {
		ev.Reason = string(kind) + "_granted"
		if r.URL.Path == api.PathRecover {
			ev.Reason = "recovered" // an expired SVID re-bootstrapped with TPM evidence
		}
	}
	ev.Detail["remote"] = r.RemoteAddr
	s.emit(r.Context(), ev)
	if m := s.cfg.Metrics; m != nil && ev.Outcome == "granted" {
		if kind == audit.KindRenewal {
			m.SVIDEvent(telemetry.SVIDRenewed)
		} else {
			m.SVIDEvent(telemetry.SVIDIssued)
		}
	}
}

// accessPerSecond bounds the access events written per second; the next one written
// after a cut says how many were left out.
const accessPerSecond = 100

// accessRefused records a refused control-plane request other than an enrollment or a
// renewal (those have kinds of their own): the admin API without the admin credential, a
// JWT-SVID or trust-state fetch by a revoked agent, a gate shipping events in another's
// name. The subject is the caller's verified SPIFFE ID, else "unauthenticated".
func (s *Server) accessRefused(r *http.Request, sw *statusWriter) {
	ok, dropped := s.accessLimit.Take(time.Now())
	if !ok {
		return // the server log still has the request line
	}
	subject := peerString(r)
	if subject == "" {
		subject = "unauthenticated"
	}
	detail := map[string]string{"request_id": requestID(r), "remote": r.RemoteAddr, "method": r.Method,
		"path": r.URL.Path, "status": strconv.Itoa(sw.status)}
	if dropped > 0 {
		detail["not_recorded_before"] = strconv.Itoa(dropped)
	}
	s.emit(r.Context(), audit.Event{Kind: audit.KindAccess, Subject: subject, Outcome: "refused", Reason: sw.reason, Detail: detail})
}

// annotate tells the audit wrapper whom a request was about.
func annotate(w http.ResponseWriter, subject, serial string) {
	if sw, ok := w.(*statusWriter); ok {
		sw.subject, sw.serial = subject, serial
	}
}

// approvalEvent maps an approval lifecycle step to an audit event.
func (s *Server) approvalEvent(e approval.Event) {
	actor := e.Approver
	if actor == "" {
		actor = e.Caller
	}
	if actor == "" {
		actor = "server"
	}
	reason := e.Reason
	if reason == "" || strings.Contains(reason, " ") { // free text from an approver goes to detail
		reason = "approval_" + e.Kind
	}
	s.emit(context.Background(), audit.Event{Kind: audit.KindApproval, Time: e.Time.UTC(), Subject: e.Requester, Actor: actor,
		Outcome: e.Kind, Action: e.Action, Resource: e.Resource, Reason: reason,
		Detail: map[string]string{"approval_id": e.ApprovalID, "status": e.Status, "amount": strconv.FormatInt(e.Amount, 10),
			"currency": e.Currency, "policy_id": e.PolicyID, "decision": e.Decision, "text": e.Reason}})
}

// handleAuditEvents takes a batch of events from a gate's spool: POST /v1/audit/events
// with {"events": [event, ...]}. A gate ships with the SVID it holds — its agent's, or
// its own /gate/ identity — and only decision, anomaly and policy_bundle events whose gate_id is that
// SPIFFE ID and, for decisions, about the agent it stands for (shipperMayRecord): no
// identity can record decisions in another's name or about another agent. Every event is parsed as untrusted
// input; the batch is appended durably or refused whole.
func (s *Server) handleAuditEvents(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Audit == nil {
		s.fail(w, r, http.StatusServiceUnavailable, api.ReasonAuditUnavailable, "this control plane keeps no audit log")
		return
	}
	id, _ := peerID(r)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.fail(w, r, http.StatusUnsupportedMediaType, api.ReasonUnsupportedMedia, "Content-Type must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAuditBatchBytes))
	if err != nil {
		s.fail(w, r, http.StatusRequestEntityTooLarge, api.ReasonBodyTooLarge, "audit batch over 4 MiB")
		return
	}
	var batch struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &batch); err != nil || len(batch.Events) == 0 {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "body must be {\"events\": [...]} with at least one event")
		return
	}
	guarded, err := s.guardedBy(r.Context(), id)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	raw := make([][]byte, len(batch.Events))
	parsed := make([]audit.Event, len(batch.Events))
	for i, e := range batch.Events {
		ev, err := audit.ParseEvent(e)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, fmt.Sprintf("event %d: %v", i, err))
			return
		}
		if ev.Kind != audit.KindDecision && ev.Kind != audit.KindAnomaly && ev.Kind != audit.KindPolicyBundle {
			s.fail(w, r, http.StatusForbidden, api.ReasonForbidden, fmt.Sprintf("event %d: a gate may not record %s events", i, ev.Kind))
			return
		}
		if why := shipperMayRecord(&ev, id, guarded); why != "" {
			s.fail(w, r, http.StatusForbidden, api.ReasonForbidden, fmt.Sprintf("event %d: %s", i, why))
			return
		}
		raw[i], parsed[i] = e, ev
	}
	if err := (audit.LogSink{Log: s.cfg.Audit}).Ship(r.Context(), raw); err != nil {
		if errors.Is(err, audit.ErrInvalidEvent) {
			s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
			return
		}
		s.internal(w, r, err)
		return
	}
	s.observeDecisions(r.Context(), parsed)
	writeJSON(w, http.StatusOK, map[string]int{"appended": len(raw)})
}

// observeDecisions closes the loop from what gates saw to runtime attestation: each
// shipped decision feeds the anomaly detector (repeated denials, rate spikes, cross-zone
// and partner-to-partner routing, certificate churn) and the attestation trigger rules
// (N denials in M seconds, a first call above the agent's class, a path the catalog does
// not declare). An anomaly is appended to the audit log; a fired rule or an anomaly about
// one of this trust domain's agents pushes an event-driven challenge to it.
func (s *Server) observeDecisions(ctx context.Context, evs []audit.Event) {
	for _, ev := range evs {
		if ev.Kind != audit.KindDecision || ev.Caller == "" {
			continue
		}
		s.detector.Observe(ev)
		if s.att == nil {
			continue
		}
		// A call refused because the caller's attestation is missing or too old for the
		// action (transactional ≤ 600 s, regulated ≤ 300 s), whether that was its reason
		// code or one of its obligations (a refusal for a missing approval may also need
		// fresh evidence), asks for fresh evidence at once, so the caller's retry can pass
		// without waiting for its next renewal.
		if ev.Decision == audit.DecisionDeny && (ev.Reason == "attestation_required" || slices.Contains(ev.Obligations, "reattest")) &&
			strings.HasPrefix(ev.Caller, s.td.ID().String()+"/") {
			if _, _, err := s.Challenge(ctx, ev.Caller, "fresh_attestation_required"); err != nil {
				s.log.Info("no challenge pushed", "spiffe_id", ev.Caller, "err", err)
			}
			continue
		}
		o := attest.Observation{Time: ev.Time, Denied: ev.Decision == audit.DecisionDeny, Path: ev.Action,
			InCatalog: ev.Detail["undeclared_path"] != "true", ActionClass: ev.Detail["action_class"]}
		if rule, err := s.Observe(ctx, ev.Caller, o); rule != "" || err != nil {
			s.log.Info("attestation trigger", "spiffe_id", ev.Caller, "rule", rule, "decision_id", ev.ID, "err", err)
		}
	}
}

// onAnomaly records an anomaly and challenges the agent it is about.
func (s *Server) onAnomaly(ev audit.Event) {
	ctx := context.Background()
	s.emit(ctx, ev)
	if m := s.cfg.Metrics; m != nil {
		m.Anomaly(ev.Reason)
	}
	if strings.HasPrefix(ev.Subject, s.td.ID().String()+"/") {
		s.maybeQuarantine(ctx, ev)
	}
	// A first cross-zone route is recorded, not challenged: new routes are normal when a
	// workflow starts; the other signals point at the agent itself.
	if s.att == nil || ev.Reason == audit.AnomalyCrossZone || !strings.HasPrefix(ev.Subject, s.td.ID().String()+"/") {
		return
	}
	if _, _, err := s.Challenge(ctx, ev.Subject, "anomaly_"+ev.Reason); err != nil {
		s.log.Info("anomaly: no challenge pushed", "spiffe_id", ev.Subject, "reason", ev.Reason, "err", err)
	}
}
