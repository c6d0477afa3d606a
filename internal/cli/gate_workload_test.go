package cli

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/federation/federationtest"
)

// TestOutboundGateOnWorkloadAPIToPartner: an outbound gate takes the agent's SVID from
// the agent's Workload API socket (identity.source: workload_api; it renews nothing) and
// calls a partner's gate of another trust domain (outbound.upstream_id in
// partner.example): refused while that trust domain is not federated — the partner's
// certificate does not verify — and let through once `warden federation add` put the
// partner's bundle in the trust state the gate follows.
func TestOutboundGateOnWorkloadAPIToPartner(t *testing.T) {
	dir, srv, _, admin := startControlPlane(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := admin.CreateEntry(ctx, api.Entry{Name: "procurement", Role: "procurement", Class: "advisory", Zone: "cloud"}); err != nil {
		t.Fatal(err)
	}
	tok, _ := admin.CreateToken(ctx, "procurement", time.Minute)
	sock := "unix://" + filepath.Join(dir, "run", "agent.sock")
	runEnrollWatch(t, ctx, []string{"enroll", "--server", srv.URL(), "--token", tok.Token, "--out", filepath.Join(dir, "agent"), "--watch",
		"--workload-api", sock, "--workload-uid", strconv.Itoa(os.Getuid())})

	// The partner's gate: presents a partner.example SVID and wants ours.
	partner := federationtest.New(t, "partner.example")
	carrierID := spiffeid.RequireFromPath(partner.TD, "/agent/carrier-desk")
	home := srv.CA().X509Bundle()
	partnerGate := &http.Server{ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":"1","result":{"peer":"`+id.String()+`"}}`)
	})}
	partnerGate.TLSConfig = tlsconfig.MTLSServerConfig(staticSVIDSource{partner.SVID(t, carrierID.Path(), time.Hour)}, home, tlsconfig.AuthorizeAny())
	pln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = partnerGate.ServeTLS(pln, "", "") }()
	defer partnerGate.Close()

	out := filepath.Join(dir, "run", "out.sock")
	f, err := parseGateFile([]byte(strings.NewReplacer("LISTEN", "unix:"+out, "SVIDDIR", filepath.Join(dir, "outbound"), "SERVER", srv.URL(),
		"UPSTREAM", "https://"+pln.Addr().String(), "SOCK", sock, "UID", strconv.Itoa(os.Getuid()), "CARRIER", carrierID.String()).Replace(`mode: outbound
listen: LISTEN
self: spiffe://supplychain.example/agent/procurement
svid_dir: SVIDDIR
server: SERVER
upstream: UPSTREAM
identity:
  source: workload_api
  workload_api: SOCK
outbound:
  audience: CARRIER
  upstream_id: CARRIER
  allowed_uids: [UID]
  defaults:
    SendMessage: {action: shipment.status, resource: Shipment/SH-7}
`)))
	if err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithCancel(ctx)
	gdone := make(chan error, 1)
	go func() { gdone <- runGate(gctx, f, slog.New(slog.DiscardHandler)) }()
	defer func() { gcancel(); <-gdone }()

	local := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", out)
		}}}
	call := func() (int, string) {
		body := `{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"role":"ROLE_USER","messageId":"m","parts":[{"text":"where is SH-7?"}]}}}`
		res, err := local.Post("http://gate/", "application/json", strings.NewReader(body))
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for { // the agent enrols, serves its socket, the gate takes the SVID from it
		code, body := call()
		if code != 0 {
			if !strings.Contains(body, "upstream_tls_failed") || !strings.Contains(body, "not federated") {
				t.Fatalf("before federation: want upstream_tls_failed (partner.example not federated), got %d %s", code, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbound gate not serving: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	doc, _ := partner.Bundle().Marshal()
	bundleFile := filepath.Join(dir, "partner.bundle")
	_ = os.WriteFile(bundleFile, doc, 0o600)
	if o, err := runWarden(t, "federation", "add", "partner.example", "--data-dir", dir, "--endpoint", partner.ServeSPIFFE(t),
		"--profile", "https_spiffe", "--endpoint-spiffe-id", partner.EndpointID.String(), "--bundle", bundleFile); err != nil {
		t.Fatalf("federation add: %v %s", err, o)
	}
	for {
		code, body := call()
		if code == 200 && strings.Contains(body, `"peer":"spiffe://supplychain.example/agent/procurement"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the federated partner's gate not reached: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type staticSVIDSource struct{ s *x509svid.SVID }

func (s staticSVIDSource) GetX509SVID() (*x509svid.SVID, error) { return s.s, nil }

// TestGateIdentityWorkloadAPIConfig: workload_api goes with source: workload_api and a
// unix socket, and takes no tpm.
func TestGateIdentityWorkloadAPIConfig(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"identity:\n  source: workload_api\n", "workload_api"},
		{"identity:\n  workload_api: unix:///run/a.sock\n", "workload_api"},
		{"identity:\n  source: workload_api\n  workload_api: /run/a.sock\n", "unix"},
		{"identity:\n  source: workload_api\n  workload_api: unix:///run/a.sock\n  tpm: {device: sim}\n", "tpm"},
	} {
		if _, err := parseGateFile([]byte(sampleGateYAML + c.yaml)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v", c.yaml, err)
		}
	}
	if _, err := parseGateFile([]byte(sampleGateYAML + "identity:\n  source: workload_api\n  workload_api: unix:///run/a.sock\n")); err != nil {
		t.Errorf("valid: %v", err)
	}
}
