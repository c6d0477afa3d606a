package gate

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/warden-a2a/warden/sdk"
)

// Reason codes the gate itself produces. Intent refusals keep the codes of
// internal/intent (replay, wrong_audience, body_mismatch, ...), policy refusals the
// Decision.Code (policy_deny, kill_switch, agent_quarantined, ...). docs/gate.md lists them.
const (
	ReasonNoPeerCert       = "no_peer_certificate"   // the TLS layer gave no verified X509-SVID
	ReasonUntrustedCert    = "untrusted_certificate" // handshake refused: the certificate is no X509-SVID of the bundle
	ReasonIdentityRevoked  = "identity_revoked"      // SPIFFE ID or serial revoked in the trust state
	ReasonAgentSuspended   = "agent_suspended"       // suspended in the trust state
	ReasonAgentUnderReview = "agent_under_review"    // held for review in the trust state; the action is not a read
	ReasonNoTrustState     = "no_trust_state"        // the gate holds no verified trust state yet
	ReasonTrustStale       = "trust_state_stale"     // older than the zone's max_staleness, action not a read
	ReasonUnknownPeer      = "unknown_peer"          // caller not in the gate's peer directory
	ReasonUnknownMethod    = "unknown_method"        // not an A2A call the agent would dispatch, or a body that names another method than its route
	ReasonInvalidRequest   = "invalid_request"       // an A2A call whose body or parameters the gate refuses to read (strict JSON, typed parameters)
	ReasonMethodNotAllowed = "method_not_allowed"    // an A2A method this gate does not pass (push config)
	ReasonBodyTooLarge     = "body_too_large"        // over Limits.MaxBody
	ReasonBodyTimeout      = "body_read_failed"      // body not received in time or cut
	ReasonNoAction         = "no_action"             // outbound: no act could be derived for the call
	ReasonLocalAuth        = "local_caller_refused"  // outbound: local caller not authenticated
	ReasonApprovalRequired = "approval_required"     // an approval was filed; retry with apr
	ReasonApprovalInvalid  = "approval_invalid"      // apr does not name an approval for this intent
	ReasonApprovalsDown    = "approvals_unavailable" // the approvals service could not be asked
	ReasonApprovalPending  = "approval_pending"      // apr names an approval still waiting for approvers
	ReasonApprovalDenied   = "approval_denied"       // apr names an approval an approver denied
	ReasonApprovalExpired  = "approval_expired"      // apr names an expired approval
	ReasonApprovalUsed     = "approval_used"         // apr names an approval already used (single use)
	ReasonUpstream         = "upstream_unavailable"  // the protected agent or system did not answer
	ReasonUpstreamTLS      = "upstream_tls_failed"   // outbound: the TLS handshake with the remote gate failed (message: why)
	ReasonSVIDExpired      = "gate_svid_expired"     // outbound: this gate's own SVID has expired (its writer stopped renewing)
	ReasonSigning          = "signing_failed"        // outbound: could not sign the intent
	ReasonAuditFailed      = "audit_failed"          // the audit sink refused the event: fail closed
)

// Headers the gate sets towards the protected agent. Values arriving from outside are
// removed before the pipeline runs.
const (
	HeaderPeerID     = sdk.HeaderPeerID
	HeaderDecisionID = "Warden-Decision-Id"
)

// newDecisionID returns a fresh decision id: "dec_" and 128 random bits in hex.
func newDecisionID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("gate: crypto/rand failed: " + err.Error())
	}
	return "dec_" + hex.EncodeToString(b[:])
}

// Refusal is one refusal as it reaches the caller.
type Refusal struct {
	Status     int    // HTTP status on the HTTP+JSON binding and for non-A2A requests
	Reason     string // stable reason code
	Message    string // one human sentence, no secrets
	DecisionID string
	ApprovalID string // set with ReasonApprovalRequired
}

// jsonrpcServerError is the JSON-RPC code used for refusals: -32000 ("server error"),
// which a2a-go v2.3.1 maps to a2a.ErrServerError keeping the message; it throws away
// the body of any non-200 answer, so JSON-RPC refusals are sent with status 200.
const jsonrpcServerError = -32000

// a2aDomain is the ErrorInfo domain of A2A errors (a2a.ProtocolDomain). a2a-go's
// HTTP+JSON client keeps an ErrorInfo's metadata only under this domain, so the gate's
// refusals use it with the A2A reason (UNAUTHENTICATED, UNAUTHORIZED, ...) and carry
// Warden's own reason code in metadata.reason.
const a2aDomain = "a2a-protocol.org"

// writeRefusal answers in the caller's binding (ARCHITECTURE.md "Refusals reach an A2A
// caller in the caller's binding"):
//
//   - JSON-RPC: HTTP 200 and a JSON-RPC 2.0 error object (for SendStreamingMessage and
//     SubscribeToTask as the one event of a text/event-stream), message "<reason>: <text>",
//     and data = [ErrorInfo{reason UNAUTHORIZED|UNAUTHENTICATED|..., domain
//     "a2a-protocol.org", metadata {reason, decision_id[, approval_id]}}]. data is an ARRAY of typed details: a2a-go v2.3.1
//     decodes data as []errordetails.Typed and fails on an object, and surfaces the
//     ErrorInfo metadata on the a2a.Error it returns;
//   - HTTP+JSON and anything else: the HTTP status and a google.rpc.Status body
//     (A2A 1.0 §11.6) whose details hold the same ErrorInfo.
func writeRefusal(w http.ResponseWriter, call *Call, rf Refusal) {
	meta := map[string]string{"reason": rf.Reason, "decision_id": rf.DecisionID}
	if rf.ApprovalID != "" {
		meta["approval_id"] = rf.ApprovalID
	}
	status := rf.Status
	if status == 0 {
		status = http.StatusForbidden
	}
	a2aReason, grpcStatus := "UNAUTHORIZED", "PERMISSION_DENIED"
	switch status {
	case http.StatusUnauthorized:
		a2aReason, grpcStatus = "UNAUTHENTICATED", "UNAUTHENTICATED"
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		a2aReason, grpcStatus = "INVALID_REQUEST", "INVALID_ARGUMENT"
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusInternalServerError:
		a2aReason, grpcStatus = "SERVER_ERROR", "UNAVAILABLE"
	}
	info := map[string]any{
		"@type":    "type.googleapis.com/google.rpc.ErrorInfo",
		"reason":   a2aReason,
		"domain":   a2aDomain,
		"metadata": meta,
	}
	msg := rf.Reason
	if rf.Message != "" {
		msg += ": " + rf.Message
	}
	w.Header().Set(HeaderDecisionID, rf.DecisionID)
	w.Header().Set("Content-Type", "application/json")
	if call != nil && call.Binding == BindingJSONRPC {
		id := call.ID
		if len(id) == 0 {
			id = json.RawMessage("null")
		}
		b, _ := json.Marshal(map[string]any{
			"jsonrpc": "2.0",
			"id":      id,
			"error":   map[string]any{"code": jsonrpcServerError, "message": msg, "data": []any{info}},
		})
		if call.Streaming {
			// a2a-go reads a streaming answer as SSE whatever its content type: a
			// plain JSON body would read as an empty stream. One event carries the error.
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(append(append([]byte("data: "), b...), '\n', '\n'))
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
		return
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code":    status,
		"status":  grpcStatus,
		"message": msg,
		"details": []any{info},
	}})
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// upstreamFailure names why a forwarded call failed, for the caller: a TLS failure
// with the remote gate (its certificate expired or not verifying, or it refusing this
// gate's certificate) is upstream_tls_failed with the cause; anything else is
// upstream_unavailable.
func upstreamFailure(err error) (reason, msg string) {
	var inv x509.CertificateInvalidError
	var unk x509.UnknownAuthorityError
	var rec tls.RecordHeaderError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return ReasonUpstreamTLS, "the remote gate's certificate has expired: " + inv.Error()
	case errors.As(err, &inv), errors.As(err, &unk):
		return ReasonUpstreamTLS, "the remote gate's certificate does not verify: " + err.Error()
	case errors.As(err, &rec):
		return ReasonUpstreamTLS, "the upstream does not speak TLS (an http:// address behind an https:// upstream?)"
	case strings.Contains(err.Error(), "remote error: tls:"):
		return ReasonUpstreamTLS, "the remote gate refused this gate's certificate (" + tlsAlert(err) + "): is this gate's SVID current and of the right trust domain?"
	case strings.Contains(err.Error(), "x509svid:") || strings.Contains(err.Error(), "tls:"):
		return ReasonUpstreamTLS, "TLS with the remote gate failed: " + err.Error()
	}
	return ReasonUpstream, "the upstream did not answer"
}

// tlsAlert extracts "remote error: tls: ..." from err's text.
func tlsAlert(err error) string {
	s := err.Error()
	if i := strings.Index(s, "remote error: tls:"); i >= 0 {
		return s[i:]
	}
	return s
}
