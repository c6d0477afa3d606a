package gate

import (
	"context"
	"crypto/x509"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.opentelemetry.io/otel/trace"

	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/telemetry"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/internal/workflow"
)

// The inbound request path (ARCHITECTURE.md "One call, end to end") is a list of named
// stages. Each stage reads and fills the one per-request state (inboundCall) and returns
// nil to go on, or the refusal that ends the request. serveInbound runs them in order;
// a refusal is audited and answered in the caller's binding by the loop, never by a
// stage. Adding a check is adding a function and one line to inboundStages.
type stage struct {
	name string // for readers, traces and benchmarks of one stage
	run  func(g *Gate, c *inboundCall) *Refusal
}

// inboundStages is the order in which an inbound (or legacy) call is judged. The order
// is part of the contract: the first failing stage names the reason the caller sees.
var inboundStages = []stage{
	{"scrubHeaders", (*Gate).scrubHeaders},   // drop headers only the gate may set
	{"checkPeer", (*Gate).checkPeer},         // TLS: the leaf is an X509-SVID
	{"readBody", (*Gate).readBody},           // bounded in size and time
	{"parseCall", (*Gate).parseCall},         // A2A method and parameters
	{"checkStanding", (*Gate).checkStanding}, // trust state: revoked, suspended
	{"checkPartner", (*Gate).checkPartner},   // a partner's trust domain still federated
	{"verifyIntent", (*Gate).verifyIntent},   // signature, binding, window, body, replay
	{"checkHold", (*Gate).checkHold},         // an agent under review keeps reads only
	{"parseParams", (*Gate).parseParams},     // the action's typed business parameters
	{"buildContext", (*Gate).buildContext},   // caller entry, staleness, policy request
	{"checkApproval", (*Gate).checkApproval}, // an apr the call carries
	{"decide", (*Gate).decide},               // Cedar, filing an approval when asked
	{"workflowStep", (*Gate).workflowStep},   // declared transition, not a repeated step (reserved)
	{"useApproval", (*Gate).useApproval},     // single use of the apr before forwarding
	{"record", (*Gate).record},               // audit the allow, fail closed
	{"forward", (*Gate).forward},             // identity headers, proxy to the agent
}

// inboundCall is the state of one inbound request as the stages fill it in.
type inboundCall struct {
	w     http.ResponseWriter
	r     *http.Request
	now   time.Time // the decision time (Config.Now)
	start time.Time // wall clock, for the latency of the decision
	span  trace.Span
	ev    Event // the audit event, filled as the stages learn

	leaf   *x509.Certificate // the peer's verified leaf (checkPeer)
	peerID spiffeid.ID
	body   []byte // the whole request body (readBody)
	call   *Call  // nil until parseCall has classified the request
	doc    *truststate.Document
	age    time.Duration // of doc
	claims *intent.Claims
	params map[string]any // business parameters as decided on (parseParams)
	req    policy.Request // what Cedar is asked (buildContext)
	areq   ApprovalRequest
	dec    policy.Decision
	wf     *workflow.Step // the workflow step reserved (workflowStep), settled after the answer
	// recorded: the audit sink was already given this request's event (or refused it);
	// the loop then answers a refusal without recording again.
	recorded bool
}

// serveInbound runs inboundStages on one request: it forwards the call, or refuses it
// in the caller's binding with an audit event either way.
func (g *Gate) serveInbound(w http.ResponseWriter, r *http.Request) {
	c := &inboundCall{w: w, now: g.cfg.Now(), start: time.Now()}
	c.ev = Event{DecisionID: newDecisionID(), Time: c.now, Gate: g.cfg.Self.String(), Mode: g.cfg.Mode}
	if e := g.cfg.Policy.Engine(); e != nil {
		c.ev.Revision = e.Revision() // refusals before decide name the bundle in force too
	}
	// One span per decision, a child of the caller's W3C traceparent, so that one
	// workflow across agents is one trace; the forwarded call carries it on.
	var ctx context.Context
	ctx, c.span = telemetry.StartDecision(r.Context(), g.tracer(), r.Header, "", "", "", g.cfg.Self.String())
	c.r = r.WithContext(ctx)
	c.ev.TraceID, c.ev.SpanID = telemetry.IDs(ctx)
	m := g.cfg.Metrics
	for _, s := range inboundStages {
		t0 := time.Now()
		rf := s.run(g, c)
		if m != nil && s.name != "forward" { // forward is the agent's time, not the gate's
			m.Stage(s.name, time.Since(t0))
		}
		if rf != nil {
			g.refuse(c, rf)
			break
		}
	}
	if m != nil {
		m.Stage(telemetry.StageTotal, time.Duration(c.ev.LatencyUS)*time.Microsecond)
	}
}

// refuse ends a request: the refusal goes into the audit event (unless a stage already
// recorded it) and to the caller in its binding.
func (g *Gate) refuse(c *inboundCall, rf *Refusal) {
	g.settleWorkflow(c, false) // a refused call executed nothing
	if !c.recorded {
		c.ev.Allow, c.ev.Reason, c.ev.Message = false, rf.Reason, rf.Message
		c.finish()
		_ = g.cfg.Audit.Record(c.r.Context(), c.ev) // a refusal is refused whether or not the sink took it
	}
	rf.DecisionID = c.ev.DecisionID
	if rf.ApprovalID == "" && !c.recorded {
		rf.ApprovalID = c.ev.ApprovalID
	}
	writeRefusal(c.w, c.call, *rf)
}

// finish closes the decision: its latency and the span's attributes.
func (c *inboundCall) finish() {
	c.ev.LatencyUS = time.Since(c.start).Microseconds()
	c.span.SetAttributes(telemetry.AttrWorkflowID.String(c.ev.Workflow), telemetry.AttrAction.String(c.ev.Action), telemetry.AttrCaller.String(c.ev.Peer))
	decision := "deny"
	if c.ev.Allow {
		decision = "allow"
	}
	telemetry.EndDecision(c.span, c.ev.DecisionID, decision, c.ev.Reason)
}

// refusal is a stage's typed refusal: HTTP status (on the HTTP+JSON binding), stable
// reason code, one sentence.
func refusal(status int, reason, msg string) *Refusal {
	return &Refusal{Status: status, Reason: reason, Message: msg}
}
