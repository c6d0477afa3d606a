package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/proc"
	"github.com/warden-a2a/warden/sdk"
)

// TestProcessGatesBesideAttestedAgent runs the deployed path of docs/deploy.md as
// separate processes: `warden server` (SVIDs of 8 s), a TPM-attested transactional agent
// whose identity `warden enroll --watch --tpm sim` keeps in a directory, and two
// `warden gate --config` in front of it — one presenting the agent's SVID files, one
// with its own /gate/ identity kept by a second `enroll --watch --tpm`. For three SVID
// lifetimes a caller calls through both gates:
//
//   - no call is refused (the gates reload the rotated files and keep serving past the
//     first lifetime, each presenting at least three certificates);
//   - the attested agent is never renewed without evidence (no gate renews it): it stays
//     active, never in review, and its enroll --watch keeps running;
//   - the /gate/ identity's audit shipments are accepted: its decisions reach the control
//     plane's log with gate_id = the gate and callee = the agent;
//   - kill -HUP reloads (policy and SVID files) and the gate keeps serving; a policy
//     changed on disk takes effect at the SIGHUP.
func TestProcessGatesBesideAttestedAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("process test (about 40 s)")
	}
	t.Parallel()
	dir := t.TempDir()
	pg := procs(t)
	p := func(n string) string { return filepath.Join(dir, n) }
	data := p("data")
	_, url := startServerProc(t, pg, data, "127.0.0.1:0", "--svid-ttl", "8s")

	for _, b := range []string{"vendor-agent", "vendor-gate"} {
		if err := os.WriteFile(p(b), []byte("#!"+b+" build 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		mustWarden(t, pg, "attest", "refs", "--binary", p(b), "-o", p(b+".refs.yaml"))
	}
	mustWarden(t, pg, "entry", "create", "--data-dir", data, "--name", "vendor-portal", "--role", "vendor", "--class", "transactional",
		"--zone", "cloud", "--refs", p("vendor-agent.refs.yaml"))
	mustWarden(t, pg, "entry", "create", "--data-dir", data, "--kind", "gate", "--name", "vendor-portal-gate", "--guards", "vendor-portal",
		"--refs", p("vendor-gate.refs.yaml"))
	mustWarden(t, pg, "entry", "create", "--data-dir", data, "--name", "forecaster", "--role", "forecasting", "--class", "advisory", "--zone", "cloud")

	agentWatch := startWarden(t, pg, "enroll vendor-portal", []string{"WARDEN_JOIN_TOKEN=" + tokenFor(t, pg, data, "vendor-portal")},
		"enroll", "--watch", "--server", url, "--out", p("vp"), "--tpm", "sim", "--tpm-seed", "1", "--binary", p("vendor-agent"))
	gateWatch := startWarden(t, pg, "enroll vendor-portal-gate", []string{"WARDEN_JOIN_TOKEN=" + tokenFor(t, pg, data, "vendor-portal-gate")},
		"enroll", "--watch", "--server", url, "--out", p("gw"), "--tpm", "sim", "--tpm-seed", "2", "--binary", p("vendor-gate"))
	waitLog(t, agentWatch, "enrolled spiffe://supplychain.example/agent/vendor-portal", 60*time.Second)
	waitLog(t, gateWatch, "enrolled spiffe://supplychain.example/gate/vendor-portal-gate", 60*time.Second)

	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"1","result":{"peer":"` + r.Header.Get("Warden-Peer-Id") + `"}}`))
	})}
	uln, _ := net.Listen("tcp", "127.0.0.1:0")
	go upstream.Serve(uln)
	defer upstream.Close()

	// Gate A presents the agent's files; its policy is a copy it reloads on SIGHUP.
	if err := os.CopyFS(p("policies"), os.DirFS("../../policies")); err != nil {
		t.Fatal(err)
	}
	type gateProcT struct {
		name, addr, metrics string
		p                   *proc.Process
	}
	gates := []*gateProcT{{name: "gate-agent-files"}, {name: "gate-own-identity"}}
	for i, g := range gates {
		g.addr, g.metrics = freePort(t), freePort(t)
		svidDir, policyDir := p("vp"), p("policies")
		if i == 1 {
			svidDir, policyDir = p("gw"), "../../policies"
		}
		yml := fmt.Sprintf(`mode: inbound
listen: %s
self: spiffe://supplychain.example/agent/vendor-portal
svid_dir: %s
identity:
  source: files
server: %s
upstream: http://%s
zone: cloud
policy:
  dir: %s
audit:
  spool_dir: %s
trust_cache: %s
metrics_listen: %s
`, g.addr, svidDir, url, uln.Addr(), policyDir, p(g.name+"-spool"), p(g.name+"-trust.json"), g.metrics)
		if err := os.WriteFile(p(g.name+".yaml"), []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		g.p = startWarden(t, pg, g.name, nil, "gate", "--config", p(g.name+".yaml"), "--log-format", "json")
	}

	// The caller: an advisory agent renewing in this process.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tok := tokenFor(t, pg, data, "forecaster")
	csvid, cbundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: url, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	caller, _ := sdk.NewSource(sdk.SourceConfig{ServerURL: url, SVID: csvid, Bundle: cbundle})
	go caller.Run(ctx)
	// One client per caller SVID, presenting exactly that SVID, as an outbound gate does
	// (the intent is bound to the certificate on the connection: cnf).
	var client *http.Client
	lastSerial := ""
	defer func() {
		if client != nil {
			client.CloseIdleConnections()
		}
	}()
	call := func(addr string) (string, string, error) { // answer body, served serial
		body := []byte(`{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"role":"ROLE_USER","messageId":"m","parts":[{"text":"x"}]}}}`)
		sv, _ := caller.GetX509SVID()
		if s := sv.Certificates[0].SerialNumber.String(); s != lastSerial {
			lastSerial = s
			if client != nil {
				client.CloseIdleConnections()
			}
			client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: tlsconfig.MTLSClientConfig(staticSVIDSource{sv}, caller, tlsconfig.AuthorizeAny())}}
		}
		tok, _ := sdk.SignIntent(sv.Certificates[0], sv.PrivateKey, sdk.Intent{Audience: "spiffe://supplychain.example/agent/vendor-portal",
			Action: "purchase_order.read", Resource: "Order/PO-7", Workflow: "wf-proc"}, body, time.Now())
		req, _ := http.NewRequest(http.MethodPost, "https://"+addr+"/", bytes.NewReader(body))
		req.Header.Set(sdk.IntentHeader, tok)
		res, err := client.Do(req)
		if err != nil {
			return "", "", err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b), res.TLS.PeerCertificates[0].SerialNumber.String(), nil
	}
	allowed := func(b string) bool {
		return strings.Contains(b, `"peer":"spiffe://supplychain.example/agent/forecaster"`)
	}
	for _, g := range gates { // up: first trust state fetched
		deadline := time.Now().Add(60 * time.Second)
		for {
			if b, _, err := call(g.addr); err == nil && allowed(b) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never let the first call through", g.name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	serials := map[string]map[string]bool{}
	var failures []string
	var mu sync.Mutex
	end := time.Now().Add(26 * time.Second) // three lifetimes of 8 s, and a bit
	hupAt := time.Now().Add(12 * time.Second)
	hupped := false
	for time.Now().Before(end) {
		if !hupped && time.Now().After(hupAt) {
			hupped = true
			if err := gates[0].p.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
		for _, g := range gates {
			b, serial, err := call(g.addr)
			mu.Lock()
			if serials[g.name] == nil {
				serials[g.name] = map[string]bool{}
			}
			if err != nil || !allowed(b) {
				failures = append(failures, fmt.Sprintf("%s at %s: %v %s", g.name, time.Now().Format("15:04:05.000"), err, b))
			} else {
				serials[g.name][serial] = true
			}
			mu.Unlock()
		}
		if time.Now().Second()%4 == 0 {
			client.CloseIdleConnections() // fresh handshakes too, not only kept-alive ones
		}
		time.Sleep(300 * time.Millisecond)
	}
	if len(failures) > 0 {
		t.Fatalf("%d calls refused or failed, first: %s", len(failures), failures[0])
	}
	for _, g := range gates {
		if n := len(serials[g.name]); n < 3 {
			t.Errorf("%s presented %d certificates over three SVID lifetimes: it did not follow the rotated files", g.name, n)
		}
		if done, err := g.p.Exited(); done {
			t.Fatalf("%s exited: %v", g.name, err)
		}
		res, err := http.Get("http://" + g.metrics + "/readyz")
		if err != nil || res.StatusCode != http.StatusOK {
			t.Errorf("%s /readyz: %v %v", g.name, err, res)
		} else {
			res.Body.Close()
		}
	}
	waitLog(t, gates[0].p, `"msg":"gate: reloaded"`, 5*time.Second)
	// Every metric of docs/telemetry.md that a gate sets is set, with the runtime ones.
	res, err := http.Get("http://" + gates[1].metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, m := range []string{`warden_decisions_total{reason="policy_allow",result="allow"}`, `warden_decision_stage_seconds_count{stage="decide"}`,
		`warden_decision_stage_seconds_count{stage="total"}`, "warden_trust_state_version ", "warden_trust_state_age_seconds ",
		"warden_replay_cache_entries ", "warden_audit_spool_depth ", "warden_svid_expiry_timestamp_seconds ", "go_goroutines ",
		"process_resident_memory_bytes "} {
		i := strings.Index(string(scrape), m)
		if i < 0 {
			t.Errorf("/metrics has no %s", m)
			continue
		}
		if line := strings.SplitN(string(scrape)[i+len(m):], "\n", 2)[0]; strings.TrimSpace(line) == "0" && !strings.HasPrefix(m, "warden_audit_spool_depth") {
			t.Errorf("%s is 0: never set", m)
		}
	}
	for _, w := range []*proc.Process{agentWatch, gateWatch} {
		if done, err := w.Exited(); done {
			t.Fatalf("%s exited: %v", w.Name, err)
		}
	}
	var entries []api.Entry
	if err := json.Unmarshal([]byte(mustWarden(t, pg, "entry", "list", "--data-dir", data, "--json")), &entries); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Status != "active" {
			t.Errorf("%s is %s: an identity was renewed without its evidence", e.SPIFFEID, e.Status)
		}
	}

	// The /gate/ identity's decisions are in the control plane's log, shipped by it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		own, agents := 0, 0
		for _, ev := range auditDecisions(t, pg, data) {
			if ev.WorkflowID != "wf-proc" || ev.Callee != "spiffe://supplychain.example/agent/vendor-portal" {
				continue
			}
			switch ev.GateID {
			case "spiffe://supplychain.example/gate/vendor-portal-gate":
				own++
			case "spiffe://supplychain.example/agent/vendor-portal":
				agents++
			}
		}
		if own > 0 && agents > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("decisions in the control plane's log: %d from the /gate/ identity, %d from the agent-files gate", own, agents)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if strings.Contains(gates[1].p.Log(), "audit shipping failed") {
		t.Errorf("the /gate/ identity's shipments were refused:\n%s", gates[1].p.Log())
	}

	// A policy change on disk takes effect at SIGHUP; the gate answers throughout.
	roles := p("policies/roles.cedar")
	b, _ := os.ReadFile(roles)
	edited := strings.Replace(string(b), `action in [Action::"inventory_feed.read", Action::"purchase_order.read", Action::"forecast.publish"]`,
		`action in [Action::"inventory_feed.read", Action::"forecast.publish"]`, 1)
	if edited == string(b) {
		t.Fatal("the policy edit did not apply: roles.cedar changed")
	}
	if err := os.WriteFile(roles, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := gates[0].p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		body, _, err := call(gates[0].addr)
		if err == nil && strings.Contains(body, "default_deny") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reloaded policy is not in force: %v %s", err, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if done, err := gates[0].p.Exited(); done {
		t.Fatalf("the gate exited after SIGHUP: %v", err)
	}
}
