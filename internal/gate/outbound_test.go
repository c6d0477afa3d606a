package gate_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/gate"
)

// TestRemoteCardThroughOutbound: an unmodified a2a-go resolver fetches the remote card
// through the outbound gate, which verified its signature and points it at itself; the
// client built from that card completes SendMessage through both gates.
func TestRemoteCardThroughOutbound(t *testing.T) {
	e := newEnv(t)
	in, _ := e.inbound(startAgent(t).url, nil)
	out := e.outbound("https://"+startGate(t, in, "tcp"), &rotSVID{s: e.svid("/agent/procurement")})
	sock := startGate(t, out, "unix")
	hc := unixClient(sock)
	ctx := context.Background()
	card, err := agentcard.NewResolver(hc).Resolve(ctx, "http://outbound-gate")
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if len(card.SupportedInterfaces) == 0 || !strings.HasPrefix(card.SupportedInterfaces[0].URL, "http://outbound-gate") {
		t.Fatalf("card interfaces %+v", card.SupportedInterfaces)
	}
	client, err := a2aclient.NewFromCard(ctx, card, a2aclient.WithJSONRPCTransport(hc))
	if err != nil {
		t.Fatal(err)
	}
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("po"))
	msg.Metadata = map[string]any{"warden.action": "purchase_order.read", "warden.resource": "Order/PO-1"}
	if _, err := client.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg}); err != nil {
		t.Fatalf("SendMessage from the resolved card: %v", err)
	}
}

// TestRemoteCardWrongSigner: a remote card signed by another identity than the one the
// outbound gate calls is never served.
func TestRemoteCardWrongSigner(t *testing.T) {
	e := newEnv(t)
	in, _ := e.inbound(startAgent(t).url, nil)
	addr := startGate(t, in, "tcp")
	g, err := gate.New(gate.Config{
		Mode: gate.ModeOutbound, Self: agentID("procurement"), SVID: &rotSVID{s: e.svid("/agent/procurement")}, Bundle: e.ca.X509Bundle(),
		Upstream: "https://" + addr, Audience: agentID("vendor-portal").String(), AllowedUIDs: []int{os.Getuid()}, Audit: e.events,
	}) // no UpstreamID: the card must be signed by the audience, but the gate signs as /gate/vendor-portal
	if err != nil {
		t.Fatal(err)
	}
	_, err = agentcard.NewResolver(unixClient(startGate(t, g, "unix"))).Resolve(context.Background(), "http://outbound-gate")
	var st *agentcard.ErrStatusNotOK
	if !errors.As(err, &st) || e.events.last().Reason != gate.ReasonCardUnverified {
		t.Fatalf("err %v, last event %+v", err, e.events.last())
	}
}

// TestLoopbackSecret: on loopback, only a caller presenting the per-process secret may
// use the outbound gate.
func TestLoopbackSecret(t *testing.T) {
	e := newEnv(t)
	in, _ := e.inbound(startAgent(t).url, nil)
	secret := []byte("0123456789abcdef0123456789abcdef")
	g, err := gate.New(gate.Config{
		Mode: gate.ModeOutbound, Self: agentID("procurement"), SVID: &rotSVID{s: e.svid("/agent/procurement")}, Bundle: e.ca.X509Bundle(),
		Upstream: "https://" + startGate(t, in, "tcp"), Audience: agentID("vendor-portal").String(),
		UpstreamID: spiffeid.RequireFromPath(td, "/gate/vendor-portal"), LocalSecret: secret, Audit: e.events,
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := startGate(t, g, "tcp")
	body := rpcBody("purchase_order.read", "Order/PO-1")
	for _, tc := range []struct {
		name, secret string
		want         string
	}{
		{"no secret", "", "no Warden-Local-Secret header"},
		{"wrong secret", "0123456789abcdef0123456789abcdeX", "does not match outbound.secret_file"},
		{"right secret", string(secret), ""},
	} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(string(body)))
		if tc.secret != "" {
			req.Header.Set(gate.HeaderLocalSecret, tc.secret)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := readAll(t, res)
		refused := strings.Contains(string(b), `"error"`)
		if (tc.want != "") != refused || (tc.want != "" && (!strings.Contains(string(b), tc.want) || !strings.Contains(string(b), gate.ReasonLocalAuth))) {
			t.Errorf("%s: %s", tc.name, b)
		}
	}
}

type failingSink struct{}

func (failingSink) Record(context.Context, gate.Event) error { return errors.New("disk full") }

// TestAuditFailureFailsClosed: an allowed call whose audit event cannot be recorded is
// not forwarded.
func TestAuditFailureFailsClosed(t *testing.T) {
	e := newEnv(t)
	ag := startAgent(t)
	g, _ := e.inbound(ag.url, func(c *gate.Config) { c.Audit = failingSink{} })
	c := e.caller(t, startGate(t, g, "tcp"), e.svid("/agent/procurement"))
	body := rpcBody("purchase_order.create", "Order/PO-1")
	_, a := c.do(body, c.sign(poIntent(), body))
	if a.Error == nil || a.Error.reason() != gate.ReasonAuditFailed || len(ag.seen) != 0 {
		t.Fatalf("answer %+v, agent saw %d", a.Error, len(ag.seen))
	}
}
