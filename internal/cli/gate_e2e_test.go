package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/sdk"
)

// TestRunGateWithControlPlane: `warden gate` with a live control plane and no peers:
// list takes the caller's attributes from the signed directory, forwards an allowed call,
// and its decision reaches the control plane's Merkle audit log through the spool, with
// the signed intent and caller chain that `warden audit show --verify-intent` re-verifies.
func TestRunGateWithControlPlane(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, srv, st, admin := startControlPlane(t)
	enrol := func(name, role, class string) *sdk.Source {
		if _, err := admin.CreateEntry(ctx, api.Entry{Name: name, Role: role, Class: class, Zone: "cloud"}); err != nil {
			t.Fatal(err)
		}
		tok, _ := admin.CreateToken(ctx, name, time.Minute)
		svid, bundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: srv.URL(), Token: tok.Token})
		if err != nil {
			t.Fatal(err)
		}
		if name == "vendor-portal" {
			if err := sdk.WriteFiles(filepath.Join(dir, "gate"), svid, bundle); err != nil {
				t.Fatal(err)
			}
		}
		src, _ := sdk.NewSource(sdk.SourceConfig{ServerURL: srv.URL(), SVID: svid, Bundle: bundle})
		return src
	}
	enrol("vendor-portal", "vendor", "transactional")
	buyer := enrol("procurement", "procurement", "transactional")

	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"1","result":{"peer":"` + r.Header.Get("Warden-Peer-Id") + `"}}`))
	})}
	uln, _ := net.Listen("tcp", "127.0.0.1:0")
	go upstream.Serve(uln)
	defer upstream.Close()
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := pl.Addr().String()
	pl.Close()
	f, err := parseGateFile([]byte(strings.NewReplacer("LISTEN", addr, "SVIDDIR", filepath.Join(dir, "gate"), "SERVER", srv.URL(),
		"UPSTREAM", "http://"+uln.Addr().String()).Replace(`mode: inbound
listen: LISTEN
self: spiffe://supplychain.example/agent/vendor-portal
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

	sv, _ := buyer.GetX509SVID()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.MTLSClientConfig(buyer, buyer, tlsconfig.AuthorizeAny())}}
	defer client.CloseIdleConnections()
	body := []byte(`{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"role":"ROLE_USER","messageId":"m","parts":[{"text":"x"}]}}}`)
	var got string
	for i := 0; i < 150; i++ { // the gate starts and fetches its first trust state
		tok, _ := sdk.SignIntent(sv.Certificates[0], sv.PrivateKey, sdk.Intent{Audience: "spiffe://supplychain.example/agent/vendor-portal",
			Action: "purchase_order.read", Resource: "Order/PO-7", Workflow: "wf-e2e"}, body, time.Now())
		req, _ := http.NewRequest(http.MethodPost, "https://"+addr+"/", bytes.NewReader(body))
		req.Header.Set(sdk.IntentHeader, tok)
		if res, err := client.Do(req); err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if got = string(b); strings.Contains(got, `"peer":"spiffe://supplychain.example/agent/procurement"`) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(got, `"peer":"spiffe://supplychain.example/agent/procurement"`) {
		t.Fatalf("the call did not reach the agent: %s", got)
	}
	storage, _ := audit.NewSQLite(ctx, st.DB())
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, _ := storage.Size(ctx)
		recs, _ := storage.Records(ctx, 0, n)
		for _, r := range recs {
			if ev, err := audit.ParseEvent(r.Data); err == nil && ev.Kind == audit.KindDecision && ev.WorkflowID == "wf-e2e" &&
				ev.Decision == audit.DecisionAllow && ev.GateID == "spiffe://supplychain.example/agent/vendor-portal" {
				// The decision carries its evidence, and a third party re-verifies the
				// caller's signature from the log alone.
				if ev.Intent == "" || len(ev.CallerChain) == 0 || ev.PolicyRevision == "" {
					t.Fatalf("decision without its evidence: intent %q, chain %d, policy revision %q", ev.Intent, len(ev.CallerChain), ev.PolicyRevision)
				}
				code, out := runAudit(t, "audit", "show", ev.ID, "--verify-intent", "--data-dir", dir)
				if code != 0 || !strings.Contains(out, "OK: spiffe://supplychain.example/agent/procurement signed purchase_order.read on Order/PO-7") {
					t.Fatalf("audit show --verify-intent: exit %d\n%s", code, out)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the gate's decision did not reach the control plane's audit log within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startControlPlane runs a control plane with an audit log in a temporary data dir.
func startControlPlane(t *testing.T) (string, *server.Server, *sqlite.Store, *adminclient.Client) {
	t.Helper()
	dir, srv, st, admin, _ := startStoppableControlPlane(t)
	return dir, srv, st, admin
}

// startStoppableControlPlane is startControlPlane with a function that stops the server
// before the test ends (the store stays open).
func startStoppableControlPlane(t *testing.T) (string, *server.Server, *sqlite.Store, *adminclient.Client, func()) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	lg, err := server.OpenAudit(ctx, st, dir, "supplychain.example", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	srv, err := server.New(ctx, server.Config{TrustDomain: "supplychain.example", DataDir: dir, Store: st, Audit: lg})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sdone := make(chan struct{})
	sctx, scancel := context.WithCancel(ctx)
	go func() { defer close(sdone); _ = srv.Serve(sctx, ln) }()
	stop := func() { scancel(); <-sdone }
	t.Cleanup(stop)
	for srv.URL() == "" {
		time.Sleep(time.Millisecond)
	}
	admin, err := adminclient.Load(srv.AdminDir(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.HTTP.CloseIdleConnections)
	return dir, srv, st, admin, stop
}

// TestTrustStateCommand: `warden trust-state` prints the verified document, directory
// included, as a gate sees it.
func TestTrustStateCommand(t *testing.T) {
	dir, _, _, admin := startControlPlane(t)
	if _, err := admin.CreateEntry(context.Background(), api.Entry{Name: "logistics", Role: "shipping", Class: "transactional", Zone: "cloud"}); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"trust-state", "--data-dir", dir})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"spiffe://supplychain.example/agent/logistics": {`) || !strings.Contains(out.String(), `"role": "shipping"`) {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestCARotateCommand: `warden ca rotate` replaces the intermediate, refuses without a
// reason, and an agent enrolled afterwards chains through the new intermediate to the
// unchanged root.
func TestCARotateCommand(t *testing.T) {
	dir, srv, _, admin := startControlPlane(t)
	before := srv.CA().Intermediates()[0]
	if _, err := runWarden(t, "ca", "rotate", "--data-dir", dir); err == nil {
		t.Fatal("rotated without a reason")
	}
	out, err := runWarden(t, "ca", "rotate", "--data-dir", dir, "--reason", "INC-7 intermediate key on a lost laptop")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	after := srv.CA().Intermediates()[0]
	if after.Equal(before) || !strings.Contains(out, ca.SerialHex(after)) || !strings.Contains(out, ca.SerialHex(before)) {
		t.Fatalf("output %q; rotated %v", out, !after.Equal(before))
	}
	if _, err := admin.CreateEntry(context.Background(), api.Entry{Name: "logistics", Role: "shipping", Class: "advisory", Zone: "cloud"}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(context.Background(), "logistics", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	svid, bundle, err := sdk.Enroll(context.Background(), sdk.EnrollConfig{ServerURL: srv.URL(), Token: tok.Token})
	if err != nil {
		t.Fatal(err)
	}
	if !svid.Certificates[1].Equal(after) {
		t.Error("the new SVID is not signed by the new intermediate")
	}
	if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
		t.Errorf("the new SVID does not verify against the bundle: %v", err)
	}
}
