package demo

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/proc"
	"github.com/warden-a2a/warden/sdk"
)

// PartnerTrustDomain is the carrier's trust domain in the demo.
const PartnerTrustDomain = "partner.example"

// partnerEnv is what the partner rows share: the partner's own control plane (a second
// `warden server`, trust domain partner.example), its carrier agent serving the SPIFFE
// Workload API, and logistics' inbound gate on our side.
type partnerEnv struct {
	*env
	partner   *Stack
	carrier   *Agent
	socket    string                  // the carrier's Workload API, unix:///...
	src       *workloadapi.X509Source // the carrier's view of its socket (go-spiffe)
	gate      *Gate                   // logistics' inbound gate
	gateID    spiffeid.ID
	client    *http.Client // the carrier's mTLS client: one kept-alive connection to the gate
	started   string
	stopAgent func()
}

// partnerStory: a carrier of another trust domain (its own Warden) reaches logistics'
// gate once the two trust domains federate, within the grant of partners.cedar, and no
// more once the relationship is removed.
func partnerStory(ctx context.Context, e *env) {
	p, err := startPartner(ctx, e)
	defer p.close()
	if err != nil {
		e.record(Step{Name: "start partner.example's control plane and carrier", Kind: "workflow", Expected: "allow", Observed: "deny",
			Reason: err.Error(), Command: p.started})
		return
	}
	for _, step := range []func(context.Context, *partnerEnv){
		partnerFederate, partnerWorkloadAPI, partnerPickup, partnerOutsideGrant, partnerRemoved,
	} {
		step(ctx, p)
	}
}

// startPartner starts partner.example's control plane and its carrier's `warden enroll
// --watch --workload-api`, and logistics' inbound gate in front of an a2a-go agent.
func startPartner(ctx context.Context, e *env) (*partnerEnv, error) {
	p := &partnerEnv{env: e, gateID: e.ID("logistics")}
	var shown []string
	defer func() { p.started = commands(shown...) }()
	fmt.Fprintln(e.out, "\nA partner: partner.example runs its own Warden; its carrier takes its identity from the SPIFFE Workload API.")
	var err error
	if p.partner, err = StartStack(ctx, StackConfig{Dir: filepath.Join(e.Dir, "partner"), Exe: e.cfg.Exe, TrustDomain: PartnerTrustDomain,
		ShowDir: e.Dir, ServerFlags: []string{"--attest-require", "none"}}); err != nil {
		return p, fmt.Errorf("partner control plane: %w", err)
	}
	shown = append(shown, p.partner.Server.Command+" &")
	fmt.Fprintf(e.out, "       $ %s &\n", p.partner.Server.Command)
	p.socket = "unix://" + filepath.Join(p.partner.SockDir, "carrier.sock")
	if p.carrier, err = p.partner.Enrol(ctx, AgentSpec{Name: "partner-carrier", Role: "carrier", Class: "advisory", Zone: "partner",
		EnrollFlags: []string{"--workload-api", p.socket, "--workload-uid", strconv.Itoa(os.Getuid())}}); err != nil {
		shown = append(shown, p.carrier.Commands...)
		return p, fmt.Errorf("enrol partner-carrier: %w", err)
	}
	shown = append(shown, p.carrier.Commands...)
	for _, c := range p.carrier.Commands {
		fmt.Fprintf(e.out, "       $ %s\n", c)
	}
	logistics, err := e.agent("logistics")
	if err != nil {
		return p, err
	}
	upstream, stop, err := ServeA2A(filepath.Join(e.SockDir, "logistics-agent.sock"), OrderAgent{Name: "logistics"})
	if err != nil {
		return p, err
	}
	p.stopAgent = stop
	if p.gate, err = e.StartGate(ctx, GateSpec{Name: "logistics", Mode: "inbound", Self: p.gateID.String(), SVIDDir: logistics.Dir,
		Upstream: upstream, Zone: "cloud"}); err != nil {
		return p, fmt.Errorf("logistics' gate: %w", err)
	}
	shown = append(shown, p.gate.Proc.Command+" &")
	fmt.Fprintf(e.out, "       $ %s &   # inbound gate of logistics\n", p.gate.Proc.Command)
	return p, nil
}

func (p *partnerEnv) close() {
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
	if p.src != nil {
		_ = p.src.Close()
	}
	if p.stopAgent != nil {
		p.stopAgent()
	}
	if p.partner != nil {
		p.partner.Close()
	}
}

// partnerFederate: each control plane federates with the other over https_spiffe,
// bootstrapped with the other's bundle handed over out of band.
func partnerFederate(ctx context.Context, p *partnerEnv) {
	s := Step{Name: "supplychain.example and partner.example federate (https_spiffe both ways, bundles exchanged out of band)",
		Kind: "workflow", Expected: "allow"}
	ours, theirs := filepath.Join(p.Dir, "supplychain.bundle"), filepath.Join(p.partner.Dir, "partner.bundle")
	var cmds []string
	steps := []func() proc.Result{
		func() proc.Result { return p.Admin(ctx, "federation", "bundle", "--out", ours) },
		func() proc.Result { return p.partner.Admin(ctx, "federation", "bundle", "--out", theirs) },
		func() proc.Result {
			return p.Admin(ctx, "federation", "add", PartnerTrustDomain, "--endpoint", p.partner.URL+api.PathBundle, "--profile", "https_spiffe",
				"--endpoint-spiffe-id", "spiffe://"+PartnerTrustDomain+"/warden/server", "--bundle", theirs,
				"--role", "carrier", "--class", "transactional", "--zone", "partner", "--reason", "carrier contract 2027")
		},
		func() proc.Result {
			return p.partner.Admin(ctx, "federation", "add", TrustDomain, "--endpoint", p.URL+api.PathBundle, "--profile", "https_spiffe",
				"--endpoint-spiffe-id", "spiffe://"+TrustDomain+"/warden/server", "--bundle", ours)
		},
	}
	var said []string
	s.Observed = "allow"
	for _, step := range steps {
		r := step()
		cmds = append(cmds, r.Command)
		if r.Err != nil {
			s.Observed, s.Reason = "deny", r.Message()
			break
		}
		if out := strings.TrimSpace(r.Stdout); strings.HasPrefix(out, "federated") {
			said = append(said, out)
		}
	}
	if s.Observed == "allow" {
		s.Reason = strings.Join(said, "; ")
	}
	p.finish(s, cmds)
}

func (p *partnerEnv) finish(s Step, cmds []string) {
	s.Command = commands(cmds...)
	p.record(s)
}

// partnerWorkloadAPI: the carrier process asks its socket with go-spiffe's unmodified
// X509Source: it gets its SVID, and supplychain.example's bundle as a federated bundle.
func partnerWorkloadAPI(ctx context.Context, p *partnerEnv) {
	s := Step{Name: "partner-carrier gets its SVID and supplychain.example's bundle from the Workload API (go-spiffe X509Source)",
		Kind: "workflow", Expected: "allow", Observed: "deny",
		Command: "# in process: workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(\"" + p.show(p.socket) + "\")))\n" +
			p.Procs.Show("jwt-svid", "--aud", p.gateID.String(), "--workload-api", p.socket, "--format", "text")}
	defer func() { p.record(s) }()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	src, err := workloadapi.NewX509Source(wctx, workloadapi.WithClientOptions(workloadapi.WithAddr(p.socket)))
	if err != nil {
		s.Reason = "workload api: " + err.Error()
		return
	}
	p.src = src
	home := spiffeid.RequireTrustDomainFromString(TrustDomain)
	for { // the partner's trust state carries our bundle once its federation is added
		if _, err := src.GetX509BundleForTrustDomain(home); err == nil {
			break
		}
		select {
		case <-wctx.Done():
			s.Reason = "supplychain.example's bundle never came over the Workload API"
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	sv, err := src.GetX509SVID()
	if err != nil {
		s.Reason = err.Error()
		return
	}
	jwt := p.Warden(ctx, "jwt-svid", "--aud", p.gateID.String(), "--workload-api", p.socket, "--format", "text")
	if jwt.Err != nil {
		s.Reason = "warden jwt-svid over the Workload API: " + jwt.Message()
		return
	}
	s.Observed = "allow"
	s.Reason = fmt.Sprintf("SVID %s (serial %x) and bundles for %s and %s from %s; warden jwt-svid got a JWT-SVID there too",
		sv.ID, sv.Certificates[0].SerialNumber, PartnerTrustDomain, TrustDomain, p.show(p.socket))
	p.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.MTLSClientConfig(src, src, tlsconfig.AuthorizeID(p.gateID)), MaxConnsPerHost: 1}}
}

// call sends one A2A call for action on SH-4711 through logistics' gate, signed with
// the SVID the Workload API holds now, on the carrier's kept-alive connection.
func (p *partnerEnv) call(ctx context.Context, action string) CallResult {
	if p.client == nil {
		return CallResult{Observed: "deny", Reason: "demo: the carrier has no identity"}
	}
	sv, err := p.src.GetX509SVID()
	if err != nil {
		return CallResult{Observed: "deny", Reason: "demo: " + err.Error()}
	}
	body := RPCMessage("SH-4711: "+action, nil)
	tok, err := sdk.SignIntent(sv.Certificates[0], sv.PrivateKey, sdk.Intent{Audience: p.gateID.String(), Action: action,
		Resource: "Shipment/SH-4711", Workflow: "wf-ship-4711", Purpose: "carrier update"}, body, time.Now())
	if err != nil {
		return CallResult{Observed: "deny", Reason: "demo: sign: " + err.Error()}
	}
	return CallGateWith(ctx, p.client, p.gate.Addr, body, tok)
}

func (p *partnerEnv) callCommand(action string) string {
	return "# in process: the carrier signs an intent (act " + action + ", res Shipment/SH-4711, aud " + p.gateID.String() +
		") with the SVID from its Workload API and calls https://" + p.gate.Addr + "/ with it"
}

// partnerPickup: the carrier confirms a pickup, an action partners.cedar grants the
// partner.example carrier.
func partnerPickup(ctx context.Context, p *partnerEnv) {
	s := Step{Name: "partner-carrier confirms the pickup of SH-4711 through logistics' gate (partners.cedar grant)",
		Kind: "workflow", Expected: "allow", Command: p.callCommand("shipment.pickup_confirm")}
	r := p.call(ctx, "shipment.pickup_confirm")
	s.Observed, s.Reason, s.DecisionID = r.Observed, r.Reason, r.DecisionID
	p.record(s)
}

// partnerOutsideGrant: an internal-only action is refused, naming the partner scope.
func partnerOutsideGrant(ctx context.Context, p *partnerEnv) {
	s := Step{Name: "partner-carrier tries to reroute SH-4711 (internal-only action)", Kind: "attack", Expected: "deny",
		Command: p.callCommand("shipment.reroute")}
	r := p.call(ctx, "shipment.reroute")
	s.Observed, s.Reason, s.DecisionID = r.Observed, r.Reason, r.DecisionID
	if r.Observed == "deny" && r.Code != "partner_not_granted" {
		s.Observed, s.Reason = "allow", "refused, but not for the partner scope: "+r.Reason
	}
	p.record(s)
}

// partnerRemoved: the carrier is decommissioned by ending the relationship; its next
// call on the connection it already holds is refused within a second, and so is a new
// handshake.
func partnerRemoved(ctx context.Context, p *partnerEnv) {
	s := Step{Name: "partner.example decommissioned (warden federation remove): the carrier is refused within 1s, on its open connection",
		Kind: "attack", Expected: "deny"}
	r := p.Admin(ctx, "federation", "remove", PartnerTrustDomain, "--reason", "carrier contract ended")
	s.Command = commands(r.Command, p.callCommand("shipment.pickup_confirm"))
	start := time.Now()
	if r.Err != nil {
		s.Observed, s.Reason = "allow", "federation remove failed: "+r.Message()
		p.record(s)
		return
	}
	for {
		res := p.call(ctx, "shipment.pickup_confirm")
		if res.Observed == "deny" {
			took := time.Since(start)
			s.Observed, s.Reason, s.DecisionID = "deny", fmt.Sprintf("%s (%d ms after the command returned)", res.Reason, took.Milliseconds()), res.DecisionID
			if took > time.Second || res.Code != "trust_domain_not_federated" {
				s.Observed = "allow" // too late, or for another reason: the row fails
			}
			break
		}
		if time.Since(start) > 5*time.Second {
			s.Observed, s.Reason = "allow", "still allowed 5 s after the relationship was removed"
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.Observed == "deny" {
		p.client.CloseIdleConnections()
		if res := p.call(ctx, "shipment.pickup_confirm"); res.Code != "untrusted_certificate" {
			s.Observed, s.Reason = "allow", "a new handshake after the removal: "+res.Reason
		} else {
			s.Reason += "; a new handshake: " + res.Reason
		}
	}
	p.record(s)
}
