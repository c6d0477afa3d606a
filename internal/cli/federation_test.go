package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/federation/federationtest"
	"github.com/warden-a2a/warden/sdk"
)

// partnerClient is a partner agent calling a gate over mTLS with its own X509-SVID,
// trusting the gate's trust domain's bundle, over one kept-alive connection.
type partnerClient struct {
	svid   *x509svid.SVID
	gateID spiffeid.ID
	url    string
	http   *http.Client
	dials  atomic.Int32
}

func newPartnerClient(svid *x509svid.SVID, home *x509bundle.Bundle, gateID spiffeid.ID, addr string) *partnerClient {
	p := &partnerClient{svid: svid, gateID: gateID, url: "https://" + addr + "/"}
	tc := tlsconfig.MTLSClientConfig(svid, home, tlsconfig.AuthorizeID(gateID))
	p.http = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		MaxConnsPerHost: 1,
		DialTLSContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			p.dials.Add(1)
			return (&tls.Dialer{Config: tc}).DialContext(ctx, network, a)
		},
	}}
	return p
}

// call sends one A2A SendMessage with an intent for action on resource; it returns the
// HTTP status and body, or the transport error (a refused handshake).
func (p *partnerClient) call(action, resource string) (int, string, error) {
	body := []byte(`{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"role":"ROLE_USER","messageId":"m","parts":[{"text":"x"}]}}}`)
	tok, err := sdk.SignIntent(p.svid.Certificates[0], p.svid.PrivateKey, sdk.Intent{Audience: p.gateID.String(),
		Action: action, Resource: resource, Workflow: "wf-partner"}, body, time.Now())
	if err != nil {
		return 0, "", err
	}
	req, _ := http.NewRequest(http.MethodPost, p.url, bytes.NewReader(body))
	req.Header.Set(sdk.IntentHeader, tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := p.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

// untilRefused calls on the kept-alive connection until the answer contains want and
// returns how long that took after since.
func (p *partnerClient) untilRefused(t *testing.T, since time.Time, want string) time.Duration {
	t.Helper()
	for {
		_, body, err := p.call("shipment.pickup_confirm", "Shipment/SH-7")
		if err == nil && strings.Contains(body, want) {
			return time.Since(since)
		}
		if time.Since(since) > 10*time.Second {
			t.Fatalf("not refused with %s within 10 s: %v %s", want, err, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFederatedPartnerAtGate: a partner trust domain (served the way SPIRE serves its
// bundle) calls through `warden gate` only while `warden federation add` is in force:
// its SVID is refused at the handshake before, its carrier may confirm a pickup (scoped by
// partners.cedar) and not reroute a shipment (partner_not_granted); `warden federation
// remove` and `warden revoke --id spiffe://partner.example/...` are each felt within 1 s,
// on the connection already open and at the next handshake.
func TestFederatedPartnerAtGate(t *testing.T) {
	ctx := context.Background()
	dir, srv, _, admin := startControlPlane(t)
	if _, err := admin.CreateEntry(ctx, api.Entry{Name: "logistics", Role: "shipping", Class: "transactional", Zone: "cloud"}); err != nil {
		t.Fatal(err)
	}
	tok, _ := admin.CreateToken(ctx, "logistics", time.Minute)
	gsvid, home, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: srv.URL(), Token: tok.Token})
	if err != nil {
		t.Fatal(err)
	}
	gateDir := filepath.Join(dir, "gate")
	if err := sdk.WriteFiles(gateDir, gsvid, home); err != nil {
		t.Fatal(err)
	}

	partner := federationtest.New(t, "partner.example")
	endpoint := partner.ServeSPIFFE(t)
	bundleFile := filepath.Join(dir, "partner-bundle.json")
	doc, _ := partner.Bundle().Marshal()
	if err := os.WriteFile(bundleFile, doc, 0o600); err != nil {
		t.Fatal(err)
	}

	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"1","result":{"peer":"` + r.Header.Get("Warden-Peer-Id") + `"}}`))
	}), ReadHeaderTimeout: 5 * time.Second}
	uln, _ := net.Listen("tcp", "127.0.0.1:0")
	go upstream.Serve(uln)
	defer upstream.Close()
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := pl.Addr().String()
	pl.Close()
	f, err := parseGateFile([]byte(strings.NewReplacer("LISTEN", addr, "SVIDDIR", gateDir, "SERVER", srv.URL(),
		"UPSTREAM", "http://"+uln.Addr().String()).Replace(`mode: inbound
listen: LISTEN
self: spiffe://supplychain.example/agent/logistics
svid_dir: SVIDDIR
server: SERVER
upstream: UPSTREAM
zone: cloud
policy:
  dir: ../../policies
`)))
	if err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithCancel(ctx)
	gdone := make(chan error, 1)
	go func() { gdone <- runGate(gctx, f, slog.New(slog.DiscardHandler)) }()
	defer func() { gcancel(); <-gdone }()

	carrier := newPartnerClient(partner.SVID(t, "/agent/carrier", time.Hour), home, gsvid.ID, addr)
	defer carrier.http.CloseIdleConnections()
	for i := 0; ; i++ { // the gate starts
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 500 {
			t.Fatal("gate not listening")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, _, err := carrier.call("shipment.pickup_confirm", "Shipment/SH-7"); err == nil {
		t.Fatal("a partner's SVID was accepted before federation")
	}

	add := []string{"federation", "add", "partner.example", "--data-dir", dir, "--endpoint", endpoint, "--profile", "https_spiffe",
		"--endpoint-spiffe-id", partner.EndpointID.String(), "--bundle", bundleFile, "--role", "carrier", "--class", "transactional", "--zone", "partner"}
	if out, err := runWarden(t, add...); err != nil {
		t.Fatalf("federation add: %v %s", err, out)
	}
	allowed := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body, err := carrier.call("shipment.pickup_confirm", "Shipment/SH-7")
			if err == nil && code == 200 && strings.Contains(body, `"peer":"spiffe://partner.example/agent/carrier"`) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the federated carrier is not let through: %d %v %s", code, err, body)
			}
			carrier.http.CloseIdleConnections() // a handshake refused earlier: dial again
			time.Sleep(20 * time.Millisecond)
		}
	}
	allowed()
	if _, body, err := carrier.call("shipment.reroute", "Shipment/SH-7"); err != nil || !strings.Contains(body, "partner_not_granted") {
		t.Fatalf("an internal-only action by the partner: %v %s", err, body)
	}
	if out, _ := runWarden(t, "federation", "list", "--data-dir", dir); !strings.Contains(out, "partner.example") || !strings.Contains(out, "carrier") {
		t.Errorf("federation list: %s", out)
	}

	dials := carrier.dials.Load()
	start := time.Now()
	if out, err := runWarden(t, "federation", "remove", "partner.example", "--data-dir", dir, "--reason", "contract ended"); err != nil {
		t.Fatalf("federation remove: %v %s", err, out)
	}
	if d := carrier.untilRefused(t, start, "trust_domain_not_federated"); d > time.Second {
		t.Errorf("removal felt on the open connection after %s, want within 1 s", d)
	} else {
		t.Logf("federation remove felt on the kept-alive connection after %s (command included)", d)
	}
	if carrier.dials.Load() != dials {
		t.Error("the connection was not kept alive: the test did not try a kept-alive connection")
	}
	carrier.http.CloseIdleConnections()
	if _, _, err := carrier.call("shipment.pickup_confirm", "Shipment/SH-7"); err == nil {
		t.Fatal("a new handshake was accepted after the federation was removed")
	}

	if out, err := runWarden(t, add...); err != nil {
		t.Fatalf("federation add again: %v %s", err, out)
	}
	allowed()
	start = time.Now()
	if out, err := runWarden(t, "revoke", "--data-dir", dir, "--id", "spiffe://partner.example/agent/carrier", "--reason", "carrier decommissioned"); err != nil {
		t.Fatalf("revoke a partner identity: %v %s", err, out)
	}
	if d := carrier.untilRefused(t, start, "identity_revoked"); d > time.Second {
		t.Errorf("revocation felt after %s, want within 1 s", d)
	} else {
		t.Logf("revocation of the partner identity felt after %s (command included)", d)
	}
}
