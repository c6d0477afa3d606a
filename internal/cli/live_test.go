package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/sdk"
)

// liveGate is a `warden gate` (runGate, as the command runs it) in front of a stub agent,
// with one caller to drive it.
type liveGate struct {
	t      *testing.T
	addr   string
	caller *sdk.Source
	client *http.Client
	stop   func()
}

// startLiveGate enrols vendor-portal (the gate's identity, files in dir/gate) and
// procurement (the caller) and runs vendor-portal's inbound gate until stop.
func startLiveGate(t *testing.T, dir, serverURL string, admin interface {
	CreateEntry(context.Context, api.Entry) (api.Entry, error)
	CreateToken(context.Context, string, time.Duration) (api.TokenResponse, error)
}) *liveGate {
	t.Helper()
	ctx := context.Background()
	enrol := func(name, role string) *sdk.Source {
		if _, err := admin.CreateEntry(ctx, api.Entry{Name: name, Role: role, Class: "transactional", Zone: "cloud"}); err != nil {
			t.Fatal(err)
		}
		tok, _ := admin.CreateToken(ctx, name, time.Minute)
		svid, bundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: serverURL, Token: tok.Token})
		if err != nil {
			t.Fatal(err)
		}
		if name == "vendor-portal" {
			if err := sdk.WriteFiles(filepath.Join(dir, "gate"), svid, bundle); err != nil {
				t.Fatal(err)
			}
		}
		src, _ := sdk.NewSource(sdk.SourceConfig{ServerURL: serverURL, SVID: svid, Bundle: bundle})
		return src
	}
	enrol("vendor-portal", "vendor")
	g := &liveGate{t: t, caller: enrol("procurement", "procurement")}
	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"1","result":{"peer":"` + r.Header.Get("Warden-Peer-Id") + `"}}`))
	})}
	uln, _ := net.Listen("tcp", "127.0.0.1:0")
	go upstream.Serve(uln)
	t.Cleanup(func() { upstream.Close() })
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	g.addr = pl.Addr().String()
	pl.Close()
	g.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.MTLSClientConfig(g.caller, g.caller, tlsconfig.AuthorizeAny())}}
	t.Cleanup(g.client.CloseIdleConnections)
	g.start(dir, serverURL, uln.Addr().String())
	return g
}

func (g *liveGate) start(dir, serverURL, upstream string) {
	f, err := parseGateFile([]byte(strings.NewReplacer("LISTEN", g.addr, "SVIDDIR", filepath.Join(dir, "gate"), "SERVER", serverURL,
		"UPSTREAM", "http://"+upstream).Replace(`mode: inbound
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
		g.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runGate(ctx, f, slog.New(slog.DiscardHandler)) }()
	g.stop = func() { cancel(); <-done; g.client.CloseIdleConnections() }
	g.t.Cleanup(func() { cancel() })
}

// call sends one purchase_order.read and returns the refusal reason, or "" when the call
// reached the agent.
func (g *liveGate) call() string {
	sv, _ := g.caller.GetX509SVID()
	body := []byte(`{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"role":"ROLE_USER","messageId":"m","parts":[{"text":"x"}]}}}`)
	tok, _ := sdk.SignIntent(sv.Certificates[0], sv.PrivateKey, sdk.Intent{Audience: "spiffe://supplychain.example/agent/vendor-portal",
		Action: "purchase_order.read", Resource: "Order/PO-7", Workflow: "wf-live"}, body, time.Now())
	req, _ := http.NewRequest(http.MethodPost, "https://"+g.addr+"/", bytes.NewReader(body))
	req.Header.Set(sdk.IntentHeader, tok)
	res, err := g.client.Do(req)
	if err != nil {
		return "transport: " + err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if strings.Contains(string(b), `"peer":"spiffe://supplychain.example/agent/procurement"`) {
		return ""
	}
	var ans struct {
		Error struct {
			Data []struct {
				Metadata map[string]string `json:"metadata"`
			} `json:"data"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &ans) == nil && len(ans.Error.Data) > 0 {
		return ans.Error.Data[0].Metadata["reason"]
	}
	return "unexpected answer: " + string(b)
}

// until calls until the outcome is want or 10 s pass, and returns how long it took.
func (g *liveGate) until(want string) time.Duration {
	g.t.Helper()
	start := time.Now()
	var got string
	for time.Since(start) < 10*time.Second {
		if got = g.call(); got == want {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	g.t.Fatalf("gate answered %q for 10 s, want %q", got, want)
	return 0
}

// TestKillSwitchCommandsThroughGate: `warden killswitch engage` stops a call at a running
// `warden gate`, `warden status` lists the switch with who and why, release lets the call
// through again; with the control plane gone and the gate restarted from its cached trust
// state, an engaged switch stays engaged.
func TestKillSwitchCommandsThroughGate(t *testing.T) {
	dir, srv, _, admin, stopServer := startStoppableControlPlane(t)
	g := startLiveGate(t, dir, srv.URL(), admin)
	g.until("") // the gate holds the trust state and lets the read through

	out, err := runWarden(t, "killswitch", "engage", "--action", "purchase_order.read", "--reason", "INC-9 order scraping",
		"--operator", "alice", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "engaged on action purchase_order.read") {
		t.Fatalf("engage: %v %s", err, out)
	}
	t.Logf("engage -> first kill_switch refusal at the gate: %s", g.until("kill_switch"))
	if _, err := runWarden(t, "killswitch", "engage", "--action", "purchase_order.read", "--reason", "again", "--data-dir", dir); err == nil {
		t.Error("a second switch on the same action was accepted")
	}
	st, err := runWarden(t, "status", "--data-dir", dir)
	if err != nil || !strings.Contains(st, "kill switches: 1 engaged") || !strings.Contains(st, "purchase_order.read") ||
		!strings.Contains(st, "alice (spiffe://supplychain.example/warden/admin)") || !strings.Contains(st, "INC-9 order scraping") {
		t.Fatalf("status: %v\n%s", err, st)
	}
	if _, err := runWarden(t, "killswitch", "engage", "--reason", "no scope", "--data-dir", dir); err == nil {
		t.Error("engage without a scope was accepted")
	}
	if _, err := runWarden(t, "killswitch", "release", "--action", "purchase_order.read", "--reason", "scraper blocked", "--data-dir", dir); err != nil {
		t.Fatal(err)
	}
	g.until("")

	// Fail closed: engaged while the control plane runs, then the control plane goes and
	// the gate restarts from its cache: the switch is still enforced.
	if _, err := runWarden(t, "killswitch", "engage", "--agent", "procurement", "--reason", "INC-10", "--data-dir", dir); err != nil {
		t.Fatal(err)
	}
	g.until("kill_switch")
	g.stop()
	stopServer()
	g.start(dir, srv.URL(), "127.0.0.1:1")
	if got := g.until("kill_switch"); got > 5*time.Second {
		t.Errorf("restarted gate took %s", got)
	}
}
