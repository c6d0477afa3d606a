package gate_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"io"
	"iter"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/truststate"
)

var td = spiffeid.RequireTrustDomainFromString("supplychain.example")

func agentID(name string) spiffeid.ID { return spiffeid.RequireFromPath(td, "/agent/"+name) }

// rotSVID is a rotating x509svid.Source for tests.
type rotSVID struct {
	mu sync.RWMutex
	s  *x509svid.SVID
}

func (r *rotSVID) GetX509SVID() (*x509svid.SVID, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.s, nil
}
func (r *rotSVID) set(s *x509svid.SVID) { r.mu.Lock(); r.s = s; r.mu.Unlock() }

type env struct {
	t      testing.TB
	ca     *ca.CA
	srvKey crypto.Signer
	srvCh  []*x509.Certificate
	trust  *truststate.Follower
	policy *policy.Holder
	ver    int64
	peers  map[string]policy.Agent
	events *eventLog
}

type eventLog struct {
	mu  sync.Mutex
	evs []gate.Event
}

func (l *eventLog) Record(_ context.Context, ev gate.Event) error {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
	return nil
}

func (l *eventLog) all() []gate.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

func (l *eventLog) last() gate.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.evs) == 0 {
		return gate.Event{}
	}
	return l.evs[len(l.evs)-1]
}

func newEnv(t testing.TB) *env {
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ca: c, events: &eventLog{}}
	e.srvKey, e.srvCh = e.issue("/warden/server")
	e.trust = truststate.NewFollower(truststate.FollowerConfig{Bundle: c.X509Bundle(), TrustDomain: td})
	eng, err := policy.Load(filepath.Join("..", "..", "policies"), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.policy = policy.NewHolder(eng)
	e.peers = map[string]policy.Agent{
		agentID("procurement").String():     {Role: "procurement", Class: "transactional", Zone: "cloud"},
		agentID("demand-planner").String():  {Role: "forecasting", Class: "advisory", Zone: "cloud"},
		agentID("payment-release").String(): {Role: "payments", Class: "regulated", Zone: "finance"},
	}
	e.publish(func(*truststate.Document) {})
	return e
}

func (e *env) issue(path string) (crypto.Signer, []*x509.Certificate) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert, err := e.ca.SignX509SVID(ca.X509Request{PublicKey: key.Public(), ID: spiffeid.RequireFromPath(td, path)})
	if err != nil {
		e.t.Fatal(err)
	}
	return key, append([]*x509.Certificate{cert}, e.ca.Intermediates()...)
}

func (e *env) svid(path string) *x509svid.SVID {
	key, chain := e.issue(path)
	id, _ := x509svid.IDFromCert(chain[0])
	return &x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}
}

// publish signs the next trust-state version (changed by fn) and hands it to the follower.
// Every agent of e.peers starts with a fresh affirming attestation, the second trust
// signal the default policies ask of transactional and regulated actions; fn may take it
// away.
func (e *env) publish(fn func(*truststate.Document)) {
	e.ver++
	doc := &truststate.Document{TrustDomain: td.Name(), Version: e.ver, IssuedAt: time.Now().UTC(),
		Attestations: map[string]truststate.Attestation{}}
	for id := range e.peers {
		doc.Attestations[id] = truststate.Attestation{Tier: "affirming", At: time.Now().UTC(), ResultID: "test-" + lastPathSegment(id), Action: "allow"}
	}
	fn(doc)
	signed, err := truststate.Sign(doc, e.srvKey, e.srvCh)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.trust.Accept(signed); err != nil {
		e.t.Fatal(err)
	}
}

// agentExecutor answers every message with one agent message, and for streaming calls
// with a task whose status goes to working then completed.
type agentExecutor struct{}

func (agentExecutor) Execute(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		if ec.StoredTask == nil && ec.Message != nil && ec.Message.Metadata["want_task"] == nil {
			yield(a2a.NewMessage(a2a.MessageRoleAgent, a2a.NewTextPart("order received")), nil)
			return
		}
		if !yield(a2a.NewSubmittedTask(ec, ec.Message), nil) {
			return
		}
		if !yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateWorking, nil), nil) {
			return
		}
		ev := a2a.NewStatusUpdateEvent(ec, a2a.TaskStateCompleted, a2a.NewMessage(a2a.MessageRoleAgent, a2a.NewTextPart("done")))
		yield(ev, nil)
	}
}

func (agentExecutor) Cancel(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {}
}

// agent starts an unmodified a2a-go server (JSON-RPC at /, HTTP+JSON under /rest) and
// records the Warden headers it receives.
type agent struct {
	url  string
	mu   sync.Mutex
	seen []http.Header
}

func startAgent(t testing.TB) *agent { return startAgentOn(t, "tcp") }

// startAgentOn starts the agent on loopback TCP or, with "unix", on a unix socket only
// (the sidecar layout: no network path to the agent around its gate).
func startAgentOn(t testing.TB, network string) *agent {
	h := a2asrv.NewHandler(agentExecutor{})
	a := &agent{}
	mux := http.NewServeMux()
	mux.Handle("/rest/", http.StripPrefix("/rest", a2asrv.NewRESTHandler(h)))
	mux.Handle("/", a2asrv.NewJSONRPCHandler(h))
	var ln net.Listener
	var err error
	if network == "unix" {
		ln, err = net.Listen("unix", filepath.Join(shortTemp(t), "agent.sock"))
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, r.Header.Clone())
		a.mu.Unlock()
		mux.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	a.url = "http://" + ln.Addr().String()
	if network == "unix" {
		a.url = "unix://" + ln.Addr().String()
	}
	return a
}

func (a *agent) lastHeader() http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		return nil
	}
	return a.seen[len(a.seen)-1]
}

// startGate runs g on a fresh listener and returns its address.
func startGate(t testing.TB, g *gate.Gate, network string) string {
	var ln net.Listener
	var err error
	if network == "unix" {
		ln, err = net.Listen("unix", filepath.Join(shortTemp(t), "g.sock"))
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = g.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func shortTemp(t testing.TB) string {
	d, err := os.MkdirTemp("", "gt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// inbound builds an inbound gate for the vendor-portal agent in front of upstream.
func (e *env) inbound(upstream string, mut func(*gate.Config)) (*gate.Gate, *rotSVID) {
	src := &rotSVID{s: e.svid("/gate/vendor-portal")}
	cfg := gate.Config{
		Mode: gate.ModeInbound, Self: agentID("vendor-portal"), SVID: src, Bundle: e.ca.X509Bundle(),
		Upstream: upstream, Routes: gate.Routes{RESTPath: "/rest"}, Peers: e.peers, Policy: e.policy, Trust: e.trust, Zone: "cloud",
		Replay: intent.NewMemoryCache(1 << 16), Audit: e.events,
		Card: &a2a.AgentCard{Name: "vendor-portal", Description: "vendor portal", Version: "1",
			SupportedInterfaces: []*a2a.AgentInterface{a2a.NewAgentInterface("https://vendor-portal.example", a2a.TransportProtocolJSONRPC)},
			DefaultInputModes:   []string{"text"}, DefaultOutputModes: []string{"text"}},
	}
	if mut != nil {
		mut(&cfg)
	}
	g, err := gate.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return g, src
}

// outbound builds an outbound gate for the procurement agent towards remote (an https URL).
func (e *env) outbound(remote string, src *rotSVID) *gate.Gate {
	g, err := gate.New(gate.Config{
		Mode: gate.ModeOutbound, Self: agentID("procurement"), SVID: src, Bundle: e.ca.X509Bundle(),
		Upstream: remote, Routes: gate.Routes{RESTPath: "/rest"}, Audience: agentID("vendor-portal").String(),
		UpstreamID:  spiffeid.RequireFromPath(td, "/gate/vendor-portal"),
		AllowedUIDs: []int{os.Getuid()}, Audit: e.events,
		Defaults: map[string]gate.ActionDefault{
			gate.MethodGetTask:   {Action: "purchase_order.read", Resource: "Order/PO-1"},
			gate.MethodListTasks: {Action: "purchase_order.read", Resource: "Order/PO-1"},
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return g
}

// unixClient is an HTTP client that dials the unix socket sock whatever the URL says.
func unixClient(sock string) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// a2aClient is an unmodified a2a-go client talking to the outbound gate on sock.
func a2aClient(t testing.TB, sock string, binding a2a.TransportProtocol, path string) *a2aclient.Client {
	hc := unixClient(sock)
	c, err := a2aclient.NewFromEndpoints(context.Background(),
		[]*a2a.AgentInterface{a2a.NewAgentInterface("http://outbound-gate"+path, binding)},
		a2aclient.WithJSONRPCTransport(hc), a2aclient.WithRESTTransport(hc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readFile(t testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, p string, b []byte) {
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readAll(t testing.TB, res *http.Response) []byte {
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func itoa(n int) string { return strconv.Itoa(n) }

var cardFixture = a2a.AgentCard{Name: "vendor-portal", Description: "vendor portal", Version: "1",
	SupportedInterfaces: []*a2a.AgentInterface{a2a.NewAgentInterface("https://vendor-portal.example", a2a.TransportProtocolJSONRPC)},
	DefaultInputModes:   []string{"text"}, DefaultOutputModes: []string{"text"}, Skills: []a2a.AgentSkill{}}

func lastPathSegment(id string) string { return id[strings.LastIndexByte(id, '/')+1:] }
