package gate_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/sdk"
)

// identityAttacks are request headers with which a caller tries to remove or forge the
// identity the gate asserts to the agent (issue 13 item 3). Each is sent byte for byte
// on a raw TLS connection: net/http's client would refuse or canonicalize some.
var identityAttacks = []struct{ name, headers string }{
	{"Connection names Warden-Peer-Id", "Connection: Warden-Peer-Id"},
	{"Connection names every identity header", "Connection: keep-alive, Warden-Peer-Id, Warden-Decision-Id, traceparent, Authorization"},
	{"Warden_Peer_Id", "Warden_Peer_Id: spiffe://supplychain.example/agent/payment-release"},
	{"warden_peer_id lower case", "warden_peer_id: spiffe://supplychain.example/agent/payment-release"},
	{"Warden-Peer-Id forged", "Warden-Peer-Id: spiffe://supplychain.example/agent/payment-release"},
	{"WARDEN-PEER-ID upper case", "WARDEN-PEER-ID: spiffe://supplychain.example/agent/payment-release"},
	{"Warden_Decision_Id", "Warden_Decision_Id: dec_forged"},
	{"X-Warden anything", "X-Warden-Role: payments\r\nx_warden_action: payment.release"},
	{"Warden-Intent spelt with underscores", "Warden_Intent: forged"},
}

// wardenHeaders lists the header keys of h that a CGI/WSGI server would read as
// HTTP_WARDEN_* or HTTP_X_WARDEN_*.
func wardenHeaders(h http.Header) []string {
	var out []string
	for k := range h {
		n := strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
		if strings.HasPrefix(n, "WARDEN_") || strings.HasPrefix(n, "X_WARDEN_") {
			out = append(out, k)
		}
	}
	return out
}

// TestIdentityHeadersCannotBeRemovedOrForged: through a real gate with the unmodified
// a2a-go agent behind it, whatever the caller sends, the agent receives exactly one
// Warden-Peer-Id (the verified caller) and one Warden-Decision-Id (the one audited),
// no other Warden-* spelling, and sdk.VerifiedCaller returns the verified caller.
func TestIdentityHeadersCannotBeRemovedOrForged(t *testing.T) {
	e := newEnv(t)
	ag := startAgent(t)
	in, _ := e.inbound(ag.url, nil)
	addr := startGate(t, in, "tcp")
	proc := e.svid("/agent/procurement")
	c := e.caller(t, addr, proc)
	for _, tc := range identityAttacks {
		t.Run(tc.name, func(t *testing.T) {
			body := rpcBody("purchase_order.create", "Order/PO-1")
			a := rawRequest(t, e, addr, proc, signedHead(c, "POST", "/", body, tc.headers), body)
			if a.status != 200 || a.reason != "" {
				t.Fatalf("answer %d %s", a.status, a.body)
			}
			ev := e.events.last()
			h := ag.lastHeader()
			if got := wardenHeaders(h); len(got) != 2 {
				t.Errorf("the agent saw Warden headers %v", got)
			}
			if v := h.Values(gate.HeaderPeerID); len(v) != 1 || v[0] != proc.ID.String() {
				t.Errorf("Warden-Peer-Id %q", v)
			}
			if v := h.Values(gate.HeaderDecisionID); len(v) != 1 || v[0] != ev.DecisionID || !ev.Allow {
				t.Errorf("Warden-Decision-Id %q, audited %s allow=%v", v, ev.DecisionID, ev.Allow)
			}
			r := &http.Request{Header: h}
			if id, err := sdk.VerifiedCaller(r); err != nil || id != proc.ID {
				t.Errorf("sdk.VerifiedCaller: %v %v", id, err)
			}
		})
	}
}

// TestLegacyIdentityHeaders: the same attacks through a legacy gate; the legacy system
// receives its one-call JWT (a Connection header cannot remove it) and the verified
// caller only.
func TestLegacyIdentityHeaders(t *testing.T) {
	e := newEnv(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sys := startERP(t, &key.PublicKey)
	g, _ := e.inbound(sys.url, func(c *gate.Config) {
		c.Mode, c.LegacyKey, c.LegacyAudience, c.Card = gate.ModeLegacy, key, "erp", nil
	})
	addr := startGate(t, g, "tcp")
	proc := e.svid("/agent/procurement")
	c := e.caller(t, addr, proc)
	for _, tc := range identityAttacks {
		t.Run(tc.name, func(t *testing.T) {
			sys.mu.Lock()
			before := len(sys.calls)
			sys.mu.Unlock()
			body := rpcBody("purchase_order.create", "Order/PO-1")
			a := rawRequest(t, e, addr, proc, signedHead(c, "POST", "/", body, tc.headers), body)
			if a.status != 200 || a.reason != "" {
				t.Fatalf("answer %d %s", a.status, a.body)
			}
			sys.mu.Lock()
			defer sys.mu.Unlock()
			if len(sys.calls) != before+1 || sys.calls[before].Subject != proc.ID.String() {
				t.Fatalf("the legacy system let through %d calls", len(sys.calls)-before)
			}
			h := sys.headers[before]
			if got := wardenHeaders(h); len(got) != 2 || h.Get(gate.HeaderPeerID) != proc.ID.String() {
				t.Errorf("the legacy system saw %v, peer %q", got, h.Get(gate.HeaderPeerID))
			}
		})
	}
}
