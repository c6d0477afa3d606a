package gate_test

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/warden-a2a/warden/internal/gate"
)

// agentCard is the card the unmodified a2a-go agent serves itself: both bindings at its
// own (internal) address, a skill, streaming.
func agentCard(skills ...string) *a2a.AgentCard {
	c := &a2a.AgentCard{Name: "vendor-portal", Description: "acknowledges purchase orders", Version: "3.1",
		SupportedInterfaces: []*a2a.AgentInterface{
			a2a.NewAgentInterface("http://10.0.0.7:9000/", a2a.TransportProtocolJSONRPC),
			a2a.NewAgentInterface("http://10.0.0.7:9000/rest", a2a.TransportProtocolHTTPJSON),
		},
		Capabilities:      a2a.AgentCapabilities{Streaming: true},
		DefaultInputModes: []string{"text"}, DefaultOutputModes: []string{"text"}}
	for _, s := range skills {
		c.Skills = append(c.Skills, a2a.AgentSkill{ID: s, Name: s, Description: "the " + s + " skill", Tags: []string{"orders"}})
	}
	return c
}

// startCardAgent serves the a2a-go agent (JSON-RPC at /, HTTP+JSON under /rest) and the
// card *card points to at /.well-known/agent-card.json (nil: no card, 404).
func startCardAgent(t *testing.T, card *atomic.Pointer[a2a.AgentCard]) string {
	return startCardAgentPaths(t, card, nil)
}

// startCardAgentPaths is startCardAgent that also sends the path of every A2A call to
// paths.
func startCardAgentPaths(t *testing.T, card *atomic.Pointer[a2a.AgentCard], paths chan<- string) string {
	h := a2asrv.NewHandler(agentExecutor{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+a2asrv.WellKnownAgentCardPath, func(w http.ResponseWriter, r *http.Request) {
		c := card.Load()
		if c == nil {
			http.NotFound(w, r)
			return
		}
		a2asrv.NewStaticAgentCardHandler(c).ServeHTTP(w, r)
	})
	mux.Handle("/rest/", http.StripPrefix("/rest", a2asrv.NewRESTHandler(h)))
	mux.Handle("/", a2asrv.NewJSONRPCHandler(h))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if paths != nil && r.URL.Path != a2asrv.WellKnownAgentCardPath {
			select {
			case paths <- r.URL.Path:
			default:
			}
		}
		mux.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestCardSurvivesTheGate: the inbound gate serves the agent's own card — skills,
// capabilities and both interfaces kept, interface URLs moved to the gate, signed by the
// gate — and an unmodified a2a-go client that resolves it (through an outbound gate)
// completes SendMessage on each binding. A changed card is re-signed after the refresh;
// an agent without a card gets a refusal naming why.
func TestCardSurvivesTheGate(t *testing.T) {
	e := newEnv(t)
	var card atomic.Pointer[a2a.AgentCard]
	card.Store(agentCard("acknowledge-po"))
	paths := make(chan string, 16)
	agentURL := startCardAgentPaths(t, &card, paths)
	in, _ := e.inbound(agentURL, func(c *gate.Config) {
		c.Card = nil
		c.CardUpstream = &gate.CardUpstream{PublicURL: "https://vendor-portal.example:8443", Refresh: 200 * time.Millisecond}
		c.Routes = gate.Routes{JSONRPCPath: "/", RESTPath: "/rest"}
	})
	inAddr := startGate(t, in, "tcp")
	caller := e.svid("/agent/procurement")
	direct := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.MTLSClientConfig(&rotSVID{s: caller}, e.ca.X509Bundle(), tlsconfig.AuthorizeAny())}}
	fetchSigned := func() *a2a.AgentCard {
		t.Helper()
		res, err := direct.Get("https://" + inAddr + "/.well-known/agent-card.json")
		if err != nil {
			t.Fatal(err)
		}
		raw := readAll(t, res)
		c, err := gate.VerifyCard(raw, e.ca.X509Bundle(), spiffeid.RequireFromPath(td, "/gate/vendor-portal"))
		if err != nil {
			t.Fatalf("the gate's card does not verify: %v\n%s", err, raw)
		}
		return c
	}

	signed := fetchSigned()
	var urls []string
	for _, in := range signed.SupportedInterfaces {
		urls = append(urls, string(in.ProtocolBinding)+" "+in.URL)
	}
	if want := []string{"JSONRPC https://vendor-portal.example:8443/", "HTTP+JSON https://vendor-portal.example:8443/rest"}; !slices.Equal(urls, want) {
		t.Errorf("interfaces %v, want %v", urls, want)
	}
	if len(signed.Skills) != 1 || signed.Skills[0].ID != "acknowledge-po" || !signed.Capabilities.Streaming || signed.Version != "3.1" {
		t.Errorf("skills %+v, capabilities %+v, version %q: the agent's card did not survive", signed.Skills, signed.Capabilities, signed.Version)
	}
	if _, ok := signed.SecuritySchemes["mtls"]; !ok || !slices.ContainsFunc(signed.Capabilities.Extensions, func(x a2a.AgentExtension) bool { return x.URI == gate.IntentExtensionURI }) {
		t.Errorf("card lacks the mtls scheme or the intent extension: %+v", signed)
	}

	// An unmodified a2a-go client resolves the card through the outbound gate and calls
	// each binding it declares.
	out := e.outbound("https://"+inAddr, &rotSVID{s: caller})
	hc := unixClient(startGate(t, out, "unix"))
	ctx := context.Background()
	resolved, err := agentcard.NewResolver(hc).Resolve(ctx, "http://outbound-gate")
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	for _, binding := range []a2a.TransportProtocol{a2a.TransportProtocolJSONRPC, a2a.TransportProtocolHTTPJSON} {
		client, err := a2aclient.NewFromCard(ctx, resolved, a2aclient.WithJSONRPCTransport(hc), a2aclient.WithRESTTransport(hc),
			a2aclient.WithConfig(a2aclient.Config{PreferredTransports: []a2a.TransportProtocol{binding}}))
		if err != nil {
			t.Fatalf("%s: %v", binding, err)
		}
		msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("po"))
		msg.Metadata = map[string]any{"warden.action": "purchase_order.read", "warden.resource": "Order/PO-1"}
		if _, err := client.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg}); err != nil {
			t.Errorf("%s: SendMessage through the card's interface: %v (last event %+v)", binding, err, e.events.last().Reason)
		}
		if ev := e.events.last(); ev.Method != gate.MethodSendMessage || !ev.Allow {
			t.Errorf("%s: the inbound gate's last decision: %s %s %v", binding, ev.Method, ev.Reason, ev.Allow)
		}
		want := map[a2a.TransportProtocol]string{a2a.TransportProtocolJSONRPC: "/", a2a.TransportProtocolHTTPJSON: "/rest/message:send"}[binding]
		select {
		case p := <-paths:
			if p != want {
				t.Errorf("%s: the agent was called at %s, want %s", binding, p, want)
			}
		default:
			t.Errorf("%s: the agent saw no call", binding)
		}
	}

	// The agent changes its card: after the refresh the gate serves the new one, signed.
	card.Store(agentCard("acknowledge-po", "submit-invoice"))
	deadline := time.Now().Add(5 * time.Second)
	for len(fetchSigned().Skills) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the agent's new card was not served after the refresh")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// An agent that serves no card: the refusal says so.
	var none atomic.Pointer[a2a.AgentCard]
	bare, _ := e.inbound(startCardAgent(t, &none), func(c *gate.Config) {
		c.Card, c.CardUpstream = nil, &gate.CardUpstream{PublicURL: "https://vendor-portal.example:8443"}
	})
	res, err := direct.Get("https://" + startGate(t, bare, "tcp") + "/.well-known/agent-card.json")
	if err != nil {
		t.Fatal(err)
	}
	if b := string(readAll(t, res)); res.StatusCode != http.StatusBadGateway || !strings.Contains(b, "serves no card") {
		t.Errorf("agent without a card: %d %s", res.StatusCode, b)
	}
}
