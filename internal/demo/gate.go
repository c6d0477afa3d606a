package demo

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/sdk"
)

// gateEnv is what the gate rows share: vendor-portal's a2a-go agent behind its inbound
// gate, procurement's outbound gate on a unix socket, and the ERP behind a legacy gate —
// each gate a `warden gate --config DIR/gates/NAME/gate.yaml` child.
type gateEnv struct {
	*env
	inbound  *Gate // vendor-portal's
	outbound *Gate // procurement's
	legacy   *Gate // the ERP's
	erpURL   string
	vendorID spiffeid.ID
	erpID    spiffeid.ID
	seen     *callerLog // what vendor-portal's agent read as its verified caller
	started  string     // the commands that started the gates, as shown
	stops    []func()   // in-process agents to stop when the gate rows are done
}

// stop ends the in-process agents, newest first; the gates are children of the stack
// and stay up until it closes.
func (g *gateEnv) stop() {
	for i := len(g.stops) - 1; i >= 0; i-- {
		g.stops[i]()
	}
	g.stops = nil
}

// gateStory appends the gate rows: the purchase-order workflow through the gates, the
// legacy ERP, the attacks at the gates, and the payment with two approvers.
func gateStory(ctx context.Context, e *env) {
	g, err := startGates(ctx, e)
	defer g.stop()
	if err != nil {
		e.record(Step{Name: "start the gates", Kind: "workflow", Expected: "allow", Observed: "deny", Reason: err.Error(), Command: g.started})
		return
	}
	e.gates = g
	e.vendorGate = g.inbound.Addr // the gate process outlives the gate rows (reviewHold)
	defer func() { e.gates = nil }()
	for _, step := range []func(context.Context, *gateEnv){
		poHappyPath, erpBooking,
		gateFollowsRotation, gateReload, // reload.go: the gate follows its agent's files; SIGHUP
		gateImpersonation, gateReplay, gateTamperedBody, gateWrongAudience, gateRevokedAgent, erpDirectCall,
		gateParserDifferential, gateBusinessParams, gateIdentityHeaders, // strict.go
		paymentApproval, // payment.go: approvals end to end
	} {
		step(ctx, g)
	}
}

// startGates starts vendor-portal's agent and inbound gate, procurement's outbound gate,
// and the ERP with its legacy gate.
func startGates(ctx context.Context, e *env) (*gateEnv, error) {
	g := &gateEnv{env: e, vendorID: e.ID("vendor-portal"), erpID: e.ID("erp")}
	fail := func(err error) (*gateEnv, error) { return g, err }
	vendor, err := e.agent("vendor-portal")
	if err != nil {
		return fail(err)
	}
	buyer, err := e.agent("procurement")
	if err != nil {
		return fail(err)
	}
	var shown []string
	start := func(spec GateSpec) (*Gate, error) {
		gt, err := e.StartGate(ctx, spec)
		if gt != nil {
			shown = append(shown, gt.Proc.Command+" &")
			fmt.Fprintf(e.out, "       $ %s &   # %s gate of %s\n", gt.Proc.Command, spec.Mode, spec.Name)
		}
		g.started = commands(shown...)
		return gt, err
	}
	fmt.Fprintln(e.out, "\nStarting the gates (each reads the SVID files its agent's enroll --watch keeps fresh):")

	// vendor-portal: an unmodified a2a-go server on a unix socket only — the gate is the
	// one way in (docs/gate.md, "The agent on a unix socket").
	g.seen = &callerLog{byDecision: map[string]string{}}
	upstream, closeAgent, err := ServeA2A(filepath.Join(e.SockDir, "vendor-portal-agent.sock"), OrderAgent{Name: "vendor-portal"}, g.seen.observe)
	if err != nil {
		return fail(err)
	}
	g.stops = append(g.stops, closeAgent)
	if g.inbound, err = start(GateSpec{Name: "vendor-portal", Mode: "inbound", Self: g.vendorID.String(), SVIDDir: vendor.Dir,
		Upstream: upstream, Zone: "partner-edge", YAML: `card:
  name: vendor-portal
  description: "Vendor portal: acknowledges purchase orders"
  url: https://vendor-portal.supplychain.example
  version: "1"
  streaming: true
`}); err != nil {
		return fail(err)
	}

	// procurement: its outbound gate on a unix socket (SO_PEERCRED: this uid only).
	if g.outbound, err = start(GateSpec{Name: "procurement", Mode: "outbound", Self: buyer.ID.String(), SVIDDir: buyer.Dir,
		Upstream: "https://" + g.inbound.Addr, Zone: "cloud", YAML: fmt.Sprintf(`outbound:
  audience: %[1]s
  upstream_id: %[1]s
  allowed_uids: [%[2]d]
  defaults:
    GetTask: {action: purchase_order.read, resource: Order/PO-1001}
`, g.vendorID, os.Getuid())}); err != nil {
		return fail(err)
	}

	// The ERP: plain HTTP behind legacy.Verifier holding the legacy gate's public key; its
	// legacy gate has an identity of its own, attested like every agent.
	erp, err := e.Enrol(ctx, AgentSpec{Name: "erp", Role: "erp", Class: "transactional", Zone: "cloud", TPMSeed: 9001})
	if err != nil {
		return fail(fmt.Errorf("enrol the ERP's gate identity: %w", err))
	}
	e.agents["erp"] = erp
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyFile := filepath.Join(e.gateDir("erp"), "legacy-key.pem")
	der, _ := x509.MarshalECPrivateKey(key)
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fail(err)
	}
	erpURL, closeERP, err := ServeERP(&key.PublicKey, e.log)
	if err != nil {
		return fail(err)
	}
	g.stops = append(g.stops, closeERP)
	g.erpURL = erpURL
	if g.legacy, err = start(GateSpec{Name: "erp", Mode: "legacy", Self: g.erpID.String(), SVIDDir: erp.Dir, Upstream: erpURL, Zone: "cloud",
		YAML: "legacy:\n  key_file: " + keyFile + "\n  audience: erp\n"}); err != nil {
		return fail(err)
	}
	fmt.Fprintln(e.out)
	return g, nil
}

// poHappyPath: procurement (an unmodified a2a-go client behind its outbound gate) sends
// purchase order PO-1001 to vendor-portal (an unmodified a2a-go server behind its
// inbound gate), follows the confirmation as a stream, then reads the task. Each row
// names the inbound gate's decision, found in the control plane's audit log.
func poHappyPath(ctx context.Context, g *gateEnv) {
	path := fmt.Sprintf("# in process: an unmodified a2a-go client -> unix:%s -> warden gate (outbound, procurement) -> https://%s warden gate (inbound, vendor-portal) -> a2a-go server on a unix socket",
		g.show(g.outbound.Addr), g.inbound.Addr)
	var steps []Step
	rec := func(name string, err error, detail, id string) {
		s := Step{Name: name, Kind: "workflow", Expected: "allow", Command: commands(path)}
		if err != nil {
			s.Observed, s.Reason = "deny", err.Error()
		} else {
			s.Observed, s.DecisionID, s.Reason = "allow", id, detail
			s.Command = commands(path, g.Procs.Show("audit", "proof", "--id", id, "--data-dir", g.ServerDir()))
		}
		steps = append(steps, s)
	}
	client, ids, err := OutboundClient(ctx, g.outbound.Addr)
	if err != nil {
		g.record(Step{Name: "a2a-go client through procurement's outbound gate", Kind: "workflow", Expected: "allow", Observed: "deny", Reason: err.Error()})
		return
	}
	defer client.Destroy()
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("Purchase order PO-1001: 400 pallets, 4800 EUR"))
	msg.Metadata = map[string]any{"warden.action": "purchase_order.create", "warden.resource": "Order/PO-1001", "warden.amount": 4800, "warden.currency": "EUR", "warden.workflow": "po-1001"}
	res, err := client.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
	detail := ""
	if m, ok := res.(*a2a.Message); ok && len(m.Parts) > 0 {
		detail = fmt.Sprintf("vendor-portal answered %q", m.Parts[0].Text())
	}
	rec("PO-1001: procurement -> vendor-portal SendMessage through both gates", err, detail, ids.Last())

	smsg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("Confirm PO-1001"))
	smsg.Metadata = map[string]any{"warden.action": "purchase_order.create", "warden.resource": "Order/PO-1001", "warden.amount": 4800, "warden.currency": "EUR", "warden.workflow": "po-1001", "as_task": true}
	var taskID a2a.TaskID
	var states []string
	err = nil
	for ev, serr := range client.SendStreamingMessage(ctx, &a2a.SendMessageRequest{Message: smsg}) {
		if serr != nil {
			err = serr
			break
		}
		switch v := ev.(type) {
		case *a2a.Task:
			taskID = v.ID
			states = append(states, string(v.Status.State))
		case *a2a.TaskStatusUpdateEvent:
			taskID = v.TaskID
			states = append(states, string(v.Status.State))
		}
	}
	if err == nil && taskID == "" {
		err = errors.New("no task in the stream")
	}
	rec("PO-1001: streamed confirmation (SendStreamingMessage, SSE through both gates)", err, "states "+strings.Join(states, " -> "), ids.Last())

	var task *a2a.Task
	if err == nil {
		task, err = client.GetTask(ctx, &a2a.GetTaskRequest{ID: taskID})
	}
	detail = ""
	if task != nil {
		detail = fmt.Sprintf("task %s is %s", task.ID, task.Status.State)
	}
	rec("PO-1001: GetTask through both gates (purchase_order.read)", err, detail, ids.Last())

	// The inbound gate shipped its decisions to the control plane: each row names its
	// decision there (policy and reason), as `warden audit proof` would show it.
	g.annotateFromAudit(ctx, steps)
	for _, s := range steps {
		g.record(s)
	}
}

// annotateFromAudit adds to each allowed step the decision the audit log holds under its
// decision id; a decision that does not arrive turns the step into a failure.
func (g *gateEnv) annotateFromAudit(ctx context.Context, steps []Step) {
	want := map[string]bool{}
	for _, s := range steps {
		if s.Observed == "allow" && s.DecisionID != "" {
			want[s.DecisionID] = true
		}
	}
	found := map[string]audit.Event{}
	_, err := g.WaitAudit(ctx, 30*time.Second, "the gate's decisions", func(ev audit.Event) bool {
		if want[ev.ID] {
			found[ev.ID] = ev
		}
		return len(found) == len(want)
	})
	for i := range steps {
		s := &steps[i]
		if s.Observed != "allow" {
			continue
		}
		ev, ok := found[s.DecisionID]
		switch {
		case s.DecisionID == "":
			s.Observed, s.Reason = "deny", "no Warden-Decision-Id on the answer: "+s.Reason
		case !ok:
			s.Observed, s.Reason = "deny", fmt.Sprintf("decision %s not in the audit log: %v", s.DecisionID, err)
		default:
			s.Reason = fmt.Sprintf("%s; %s by %v (gate %s)", s.Reason, ev.Reason, ev.DeterminingPolicies, ev.GateID)
		}
	}
}

func poIntent(aud spiffeid.ID) sdk.Intent {
	return sdk.Intent{Audience: aud.String(), Action: "purchase_order.create", Resource: "Order/PO-1001", Workflow: "po-1001"}
}

// call is a gate call by an enrolled agent, recorded as s with its curl equivalent.
func (g *gateEnv) call(ctx context.Context, s Step, caller, addr string, in sdk.Intent, body []byte) {
	a, err := g.agent(caller)
	if err != nil {
		s.Observed, s.Reason, _ = outcome(err)
		g.record(s)
		return
	}
	s.Command = curlCommand(g.Stack, a, addr, in)
	r := CallAs(ctx, a, addr, in, body)
	s.Observed, s.Reason, s.DecisionID = r.Observed, r.Reason, r.DecisionID
	g.record(s)
}

// erpBooking: procurement books PO-1001 in the ERP through the legacy gate; the ERP sees
// a one-action JWT minted for this call.
func erpBooking(ctx context.Context, g *gateEnv) {
	s := Step{Name: "PO-1001: procurement -> legacy ERP through the legacy gate (per-call JWT)", Kind: "workflow", Expected: "allow"}
	in := sdk.Intent{Audience: g.erpID.String(), Action: "purchase_order.create", Resource: "Order/PO-1001", Workflow: "po-1001"}
	g.call(ctx, s, "procurement", g.legacy.Addr, in, RPCMessage("book PO-1001", map[string]any{"warden.amount": 4800, "warden.currency": "EUR"}))
}

// gateImpersonation: a self-signed certificate claiming procurement's SPIFFE ID. The
// handshake has no room for a decision id; the gate's audit event of the refused
// handshake has one, found in the audit log by the certificate's hash.
func gateImpersonation(ctx context.Context, g *gateEnv) {
	s := Step{Name: "gate: impersonate procurement with a self-signed certificate", Kind: "attack", Expected: "deny",
		Command: selfSignedCommand(g.ID("procurement"), g.inbound.Addr)}
	der, conf := selfSigned(g.ID("procurement"))
	r := CallGate(ctx, conf, g.inbound.Addr, RPCMessage("PO", nil), "")
	s.Observed, s.Reason, s.DecisionID = r.Observed, r.Reason, r.DecisionID
	sum := sha256.Sum256(der)
	hash := hex.EncodeToString(sum[:])
	if s.Observed == "deny" {
		ev, err := g.WaitAudit(ctx, 30*time.Second, "the refused handshake", func(ev audit.Event) bool {
			return ev.GateID == g.vendorID.String() && ev.CallerCertSHA256 == hash
		})
		if err == nil {
			s.Reason, s.DecisionID = ev.Reason+": "+ev.Detail["message"], ev.ID
			s.Command = commands(s.Command, g.Procs.Show("audit", "proof", "--id", ev.ID, "--data-dir", g.ServerDir()))
		} else {
			s.Reason += " (" + err.Error() + ")"
		}
	}
	g.record(s)
}

// prepare signs in for body as caller and returns its TLS config and intent, with the
// curl equivalent (plus note) in s.Command; on failure it records s and returns false.
func (g *gateEnv) prepare(s *Step, caller string, in sdk.Intent, body []byte, note string) (*tls.Config, string, bool) {
	a, err := g.agent(caller)
	var conf *tls.Config
	var tok string
	if err == nil {
		s.Command = commands(curlCommand(g.Stack, a, g.inbound.Addr, in), note)
		var cerr error
		tok, err = a.Sign(in, body)
		conf, cerr = a.MTLS()
		err = errors.Join(err, cerr)
	}
	if err != nil {
		s.Observed, s.Reason, _ = outcome(err)
		g.record(*s)
		return nil, "", false
	}
	return conf, tok, true
}

func gateReplay(ctx context.Context, g *gateEnv) {
	s := Step{Name: "gate: replay a captured intent (same body, same connection identity)", Kind: "attack", Expected: "deny"}
	body := RPCMessage("PO-1001 again", map[string]any{"warden.amount": 4800, "warden.currency": "EUR"})
	conf, tok, ok := g.prepare(&s, "procurement", poIntent(g.vendorID), body, "# the same curl again, same $INTENT")
	if !ok {
		return
	}
	if r := CallGate(ctx, conf, g.inbound.Addr, body, tok); r.Observed != "allow" {
		s.Observed, s.Reason = "allow", "the original call was refused, so the replay proves nothing: "+r.Reason
		g.record(s)
		return
	}
	r := CallGate(ctx, conf, g.inbound.Addr, body, tok)
	s.Observed, s.Reason, s.DecisionID = r.Observed, r.Reason, r.DecisionID
	g.record(s)
}

func gateTamperedBody(ctx context.Context, g *gateEnv) {
	s := Step{Name: "gate: tamper with the body after signing (amount 4800 -> 480000)", Kind: "attack", Expected: "deny"}
	body := RPCMessage("PO-1001", map[string]any{"warden.amount": 4800, "warden.currency": "EUR"})
	conf, tok, ok := g.prepare(&s, "procurement", poIntent(g.vendorID), body, "# ... with body.json edited after signing: 4800 -> 480000")
	if !ok {
		return
	}
	r := CallGate(ctx, conf, g.inbound.Addr, bytes.Replace(body, []byte(`4800`), []byte(`480000`), 1), tok)
	s.Observed, s.Reason, s.DecisionID = r.Observed, r.Reason, r.DecisionID
	g.record(s)
}

func gateWrongAudience(ctx context.Context, g *gateEnv) {
	s := Step{Name: "gate: intent signed for logistics sent to vendor-portal", Kind: "attack", Expected: "deny"}
	g.call(ctx, s, "procurement", g.inbound.Addr, poIntent(g.ID("logistics")), RPCMessage("PO-1001", nil))
}

// gateRevokedAgent: demand-planner was revoked earlier; its SVID has not expired yet,
// but every gate refuses it from the trust state.
func gateRevokedAgent(ctx context.Context, g *gateEnv) {
	s := Step{Name: "gate: revoked demand-planner calls vendor-portal with a still-valid SVID", Kind: "attack", Expected: "deny"}
	in := poIntent(g.vendorID)
	in.Action = "purchase_order.read"
	g.call(ctx, s, "demand-planner", g.inbound.Addr, in, RPCMessage("read PO-1001", nil))
}

// erpDirectCall: an agent skips the legacy gate and calls the ERP's plain-HTTP port.
func erpDirectCall(ctx context.Context, g *gateEnv) {
	s := Step{Name: "legacy ERP called directly, bypassing its gate", Kind: "attack", Expected: "deny",
		Command: "curl -s -H 'Content-Type: application/json' --data-binary @body.json " + g.erpURL + "/"}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.erpURL+"/", bytes.NewReader(RPCMessage("book PO-666", nil)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.Observed, s.Reason = "deny", err.Error()
		g.record(s)
		return
	}
	defer res.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(io.LimitReader(res.Body, 1<<16)).Decode(&out)
	if res.StatusCode == http.StatusUnauthorized {
		s.Observed, s.DecisionID = "deny", out["decision_id"]
		s.Reason = out["error"] + ": the ERP's verifier refused a call without a gate-minted credential (status 401; no gate saw it: the decision id is the verifier's, in the ERP's own log)"
	} else {
		s.Observed, s.Reason = "allow", fmt.Sprintf("ERP answered %d", res.StatusCode)
	}
	g.record(s)
}
