package gate

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/truststate"
)

// The stages of inboundStages, in their order. Each returns nil to go on or the refusal
// that ends the request (pipeline.go).

// scrubHeaders removes what only the gate may say to the agent: every header whose name,
// compared case-insensitively with '_' read as '-', starts with "Warden-" or
// "X-Warden-" (CGI and WSGI servers merge Warden_Peer_Id into HTTP_WARDEN_PEER_ID, so a
// spelling net/http keeps apart must not survive either), except the one exact
// Warden-Intent header the intent stage reads and removes; Authorization (legacy mode
// sets its own); and the configured extra headers. The gate's own headers are set on
// the outgoing request after hop-by-hop processing (newProxy's Rewrite).
func (g *Gate) scrubHeaders(c *inboundCall) *Refusal {
	scrubWarden(c.r.Header, intent.HeaderName)
	c.r.Header.Del("Authorization")
	for _, h := range g.cfg.StripHeaders {
		c.r.Header.Del(h)
	}
	return nil
}

// scrubWarden deletes from h every header whose name is a spelling of Warden-* or
// X-Warden-* (see scrubHeaders), but keep: the one canonical key kept.
func scrubWarden(h http.Header, keep string) {
	for k := range h {
		if k != keep && isWardenHeader(k) {
			delete(h, k)
		}
	}
}

// isWardenHeader: name, lower-cased with '_' read as '-', starts with "warden-" or
// "x-warden-".
func isWardenHeader(name string) bool {
	const w, xw = "warden-", "x-warden-"
	return hasFoldPrefix(name, w) || hasFoldPrefix(name, xw)
}

func hasFoldPrefix(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == '_' {
			c = '-'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// checkPeer: the listener verified the chain against the bundle (go-spiffe); here the
// leaf must be an X509-SVID.
func (g *Gate) checkPeer(c *inboundCall) *Refusal {
	r := c.r
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return refusal(http.StatusUnauthorized, ReasonNoPeerCert, "no client certificate")
	}
	c.leaf = r.TLS.PeerCertificates[0]
	id, err := x509svid.IDFromCert(c.leaf)
	if err != nil {
		return refusal(http.StatusUnauthorized, ReasonNoPeerCert, "client certificate is not an X509-SVID")
	}
	c.peerID = id
	c.ev.Peer = id.String()
	c.ev.CallerCertSHA256 = certSHA256(c.leaf)
	return nil
}

// readBody reads the whole body, bounded in size and in time (slowloris on the body).
func (g *Gate) readBody(c *inboundCall) *Refusal {
	rc := http.NewResponseController(c.w)
	_ = rc.SetReadDeadline(time.Now().Add(g.cfg.Limits.BodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, g.cfg.Limits.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return refusal(http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, "body over "+strconv.FormatInt(g.cfg.Limits.MaxBody, 10)+" bytes")
		}
		return refusal(http.StatusBadRequest, ReasonBodyTimeout, "body not received")
	}
	_ = rc.SetReadDeadline(time.Time{})
	c.body = body
	return nil
}

// parseCall classifies the A2A call; push-notification config changes pass only when
// the gate is configured to let them.
func (g *Gate) parseCall(c *inboundCall) *Refusal {
	call, err := g.classify.Classify(c.r, c.body)
	c.call = &call
	if err != nil {
		return classifyRefusal(err)
	}
	c.ev.Method = call.Method
	if call.Kind == KindConfig && !g.cfg.AllowPushConfig {
		return refusal(http.StatusForbidden, ReasonMethodNotAllowed, call.Method+" is not passed by this gate")
	}
	return nil
}

// classifyRefusal is the refusal of a request the classifier did not accept.
func classifyRefusal(err error) *Refusal {
	msg := err.Error()
	var ce *classifyError
	if errors.As(err, &ce) {
		msg = ce.detail
	}
	if errors.Is(err, ErrInvalidRequest) {
		return refusal(http.StatusBadRequest, ReasonInvalidRequest, msg)
	}
	return refusal(http.StatusBadRequest, ReasonUnknownMethod, msg)
}

// checkStanding: the gate holds a verified trust state, and in it the caller's identity
// is not revoked nor the caller suspended.
func (g *Gate) checkStanding(c *inboundCall) *Refusal {
	c.doc, c.age = g.cfg.Trust.Current()
	if c.doc == nil {
		return refusal(http.StatusServiceUnavailable, ReasonNoTrustState, "the gate holds no verified trust state")
	}
	c.ev.TrustVer = c.doc.Version
	if _, revoked := c.doc.IsRevoked(c.ev.Peer, hex.EncodeToString(c.leaf.SerialNumber.Bytes())); revoked {
		return refusal(http.StatusUnauthorized, ReasonIdentityRevoked, "the caller's identity is revoked")
	}
	if c.doc.Status(c.ev.Peer) == truststate.StatusSuspended {
		return refusal(http.StatusForbidden, ReasonAgentSuspended, "the caller is suspended")
	}
	return nil
}

// verifyIntent: signature by the peer certificate's key, channel binding, audience,
// window, body digest, then the replay cache (intent.Verifier does all, in order).
func (g *Gate) verifyIntent(c *inboundCall) *Refusal {
	tok, err := intent.TokenFromHeader(c.r.Header)
	if err != nil {
		return refusal(http.StatusUnauthorized, intent.ReasonOf(err), "no valid "+intent.HeaderName+" header")
	}
	c.r.Header.Del(intent.HeaderName)
	claims, err := g.verifier.Verify(c.r.Context(), tok, c.leaf, c.body, c.now)
	if err != nil {
		reason := intent.ReasonOf(err)
		status := http.StatusUnauthorized
		if reason == intent.ReasonReplayCacheFull {
			status = http.StatusServiceUnavailable
		}
		return refusal(status, reason, "intent refused")
	}
	c.claims = claims
	ev := &c.ev
	ev.IntentID, ev.Action, ev.Resource, ev.Workflow = claims.ID, claims.Action, claims.Resource, claims.Workflow
	ev.Purpose, ev.Initiator = claims.Purpose, initiator(claims)
	// The evidence a third party re-verifies from the log: what the caller signed and
	// the certificate chain it is bound to.
	ev.Intent = tok
	for _, cert := range c.r.TLS.PeerCertificates {
		ev.CallerChain = append(ev.CallerChain, cert.Raw)
	}
	if g.cfg.Catalog != nil {
		in, ok := g.cfg.Catalog.Declared(ev.Peer, g.cfg.Self.String(), claims.Action)
		if ok {
			ev.DataObjects = in.Data
		} else {
			ev.Undeclared = true // the catalog does not list this path: an anomaly signal
		}
	}
	return nil
}

// checkHold: an agent the control plane holds for review (a failed or stale attestation
// of a transactional agent, truststate.StatusReview) keeps its reads and is refused
// every other action until an operator restores it or an affirming quote lifts the
// hold. Enforced here, whatever the policy bundle says.
func (g *Gate) checkHold(c *inboundCall) *Refusal {
	if c.doc.Status(c.ev.Peer) != truststate.StatusReview || g.isRead(c.claims.Action) {
		return nil
	}
	return refusal(http.StatusForbidden, ReasonAgentUnderReview, "the caller is held for review ("+c.doc.Agents[c.ev.Peer].Reason+"); only reads go on")
}

// parseParams reads the business parameters the action declares in the policy schema
// (policy.ParseParams) from the call's metadata: a value of the wrong type, out of
// range, not one of its values, or a required one missing is refused, naming it. The
// decision event records amount, currency and resource status as decided on.
func (g *Gate) parseParams(c *inboundCall) *Refusal {
	a, _ := g.action(c.claims.Action) // an action outside the schema has none; Cedar denies it
	params, err := policy.ParseParams(a.Params, c.call.Metadata)
	if err != nil {
		return refusal(http.StatusBadRequest, ReasonInvalidRequest, "business parameter "+err.Error())
	}
	c.params = params
	if n, ok := params["amount"].(int64); ok {
		c.ev.Amount = &n
	}
	c.ev.Currency, _ = params["currency"].(string)
	c.ev.ResourceStatus, _ = params["resource_status"].(string)
	return nil
}

// buildContext: the caller's entry, staleness, attestation, the call's parameters; the
// policy request and the approval request bound to this call.
func (g *Gate) buildContext(c *inboundCall) *Refusal {
	claims := c.claims
	agent, ok := g.callerAgent(c)
	if !ok {
		return refusal(http.StatusForbidden, ReasonUnknownPeer, "the caller is neither in the control plane's directory nor in this gate's peers")
	}
	agent.SPIFFEID, agent.TrustDomain = c.ev.Peer, c.peerID.TrustDomain().Name()
	if agent.Name == "" {
		agent.Name = lastSegment(c.peerID.Path())
	}
	if c.age > maxStaleness(c.doc, g.cfg.Zone, g.cfg.MaxStaleness) {
		c.ev.Stale = true
		if !g.isRead(claims.Action) {
			return refusal(http.StatusServiceUnavailable, ReasonTrustStale, "trust state older than the zone's max_staleness; only reads go on")
		}
	}
	amount, _ := c.params["amount"].(int64)
	currency, _ := c.params["currency"].(string)
	sensitivity, _ := c.params["data_sensitivity"].(string)
	c.req = policy.Request{
		Agent:    agent,
		Action:   claims.Action,
		Workflow: claims.Workflow,
		Resource: g.resource(claims.Action, claims.Resource, c.params),
		Context: policy.CallContext{
			Purpose:         claims.Purpose,
			DataSensitivity: sensitivity,
			Amount:          amount,
			Currency:        currency,
			Params:          c.params,
			Attestation:     attestationOf(c.doc, c.ev.Peer, c.now),
		},
		Trust: g.trustViewOf(c.doc),
	}
	c.areq = ApprovalRequest{
		ID: claims.Approval, Requester: c.ev.Peer, Audience: g.cfg.Self.String(), Action: claims.Action,
		Resource: claims.Resource, Workflow: claims.Workflow, Amount: amount, Currency: currency,
		DecisionID: c.ev.DecisionID,
	}
	c.ev.AttestationTier, c.ev.AttestationAgeS = c.req.Context.Attestation.Tier, c.req.Context.Attestation.AgeSeconds
	c.ev.ActionClass = g.classOf(claims.Action)
	if a, ok := c.doc.Attestations[c.ev.Peer]; ok {
		c.ev.AttestationResultID = a.ResultID
	}
	return nil
}

// bindApproval computes the approval binding hash; only calls that file or carry an
// approval need it.
func (g *Gate) bindApproval(c *inboundCall) {
	a := &c.areq
	a.IntentHash = ApprovalHash(a.Requester, a.Audience, a.Action, a.Resource, a.Workflow, a.Amount, a.Currency)
}

// approvalRefusal turns an approvals-service error into the refusal the caller sees;
// nil for no error.
func approvalRefusal(err error) *Refusal {
	var ar *ApprovalRefusal
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrApprovalInvalid):
		return refusal(http.StatusForbidden, ReasonApprovalInvalid, "apr does not name an approval of this request")
	case errors.As(err, &ar):
		return refusal(http.StatusForbidden, ar.Reason, ar.Message)
	default:
		return refusal(http.StatusServiceUnavailable, ReasonApprovalsDown, "approvals could not be checked")
	}
}

// checkApproval: a call that carries an approval (apr) learns who approved it; the
// policy counts them.
func (g *Gate) checkApproval(c *inboundCall) *Refusal {
	if c.claims.Approval == "" {
		return nil
	}
	c.ev.ApprovalID = c.claims.Approval
	g.bindApproval(c)
	st, err := g.cfg.Approvals.Approval(c.r.Context(), c.areq)
	if rf := approvalRefusal(err); rf != nil {
		return rf
	}
	c.req.Context.Approvers = st.Approvers
	return nil
}

// decide asks Cedar. A refusal whose obligation is an approval, on a call that carries
// none, files one and tells the caller its id.
func (g *Gate) decide(c *inboundCall) *Refusal {
	d := g.cfg.Policy.Decide(c.req, c.now)
	c.dec = d
	c.ev.PolicyIDs, c.ev.Revision, c.ev.Obligations = d.PolicyIDs, d.Revision, d.Obligations
	if d.Allow {
		return nil
	}
	if slices.Contains(d.Obligations, "approval") && c.claims.Approval == "" {
		c.areq.PolicyIDs = d.PolicyIDs
		g.bindApproval(c)
		st, err := g.cfg.Approvals.Approval(c.r.Context(), c.areq)
		if err != nil {
			return refusal(http.StatusForbidden, ReasonApprovalsDown, "an approval is required and none can be filed: "+d.Reason)
		}
		c.ev.ApprovalID = st.ID
		return refusal(http.StatusForbidden, ReasonApprovalRequired, "approval "+st.ID+" filed; retry with apr set once approved")
	}
	return refusal(http.StatusForbidden, d.Code, d.Reason)
}

// useApproval: an allowed call that carries an approval uses it up before it is
// forwarded, so the same approval cannot release a second call (a retry with a new
// jti). Of concurrent retries exactly one is forwarded.
func (g *Gate) useApproval(c *inboundCall) *Refusal {
	if c.claims.Approval == "" {
		return nil
	}
	c.areq.Consume, c.areq.PolicyIDs = true, c.dec.PolicyIDs
	_, err := g.cfg.Approvals.Approval(c.r.Context(), c.areq)
	return approvalRefusal(err)
}

// record audits the allow; a call the sink did not take is not forwarded (fail closed).
func (g *Gate) record(c *inboundCall) *Refusal {
	c.ev.Allow, c.ev.Reason, c.ev.Message = true, c.dec.Code, c.dec.Reason
	c.finish()
	c.recorded = true
	if err := g.cfg.Audit.Record(c.r.Context(), c.ev); err != nil {
		g.cfg.Logger.Error("gate: audit sink failed", "decision_id", c.ev.DecisionID, "err", err)
		c.ev.Allow = false
		return refusal(http.StatusServiceUnavailable, ReasonAuditFailed, "the decision could not be audited")
	}
	return nil
}

// forward proxies the very bytes that were judged to the upstream. The identity
// headers (Warden-Peer-Id, Warden-Decision-Id, traceparent and, legacy, the downstream
// JWT) are set by the proxy's Rewrite on the outgoing request, after the hop-by-hop
// headers are removed: a "Connection: Warden-Peer-Id" from the caller cannot take them
// away.
func (g *Gate) forward(c *inboundCall) *Refusal {
	st := &reqState{decisionID: c.ev.DecisionID, peer: c.ev.Peer, call: c.call, body: c.body}
	if g.cfg.Mode == ModeLegacy {
		jwt, err := g.legacyToken(c.ev.Peer, c.claims.Action, c.claims.Resource, c.now)
		if err != nil {
			return &Refusal{Status: http.StatusInternalServerError, Reason: ReasonSigning}
		}
		st.authorization = "Bearer " + jwt
	}
	r := c.r
	r.Body = io.NopCloser(bytes.NewReader(c.body))
	r.ContentLength = int64(len(c.body))
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	if c.wf == nil {
		g.proxy.ServeHTTP(c.w, r)
		return nil
	}
	// A reserved workflow step is kept when the upstream answered, released when it
	// did not (no answer, or a 5xx): then the step did not run and a retry may.
	rec := &answerRecorder{ResponseWriter: c.w}
	g.proxy.ServeHTTP(rec, r)
	g.settleWorkflow(c, !st.failed && rec.status < 500)
	return nil
}
