package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// TestRunGateFromCacheWithControlPlaneDown: `warden gate` started with no reachable
// control plane enforces the trust state cached on disk: a revoked caller is refused,
// another caller passes to the upstream.
func TestRunGateFromCacheWithControlPlaneDown(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("supplychain.example")
	dir := t.TempDir()
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: filepath.Join(dir, "ca")})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(path string) *x509svid.SVID {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		cert, err := c.SignX509SVID(ca.X509Request{PublicKey: key.Public(), ID: spiffeid.RequireFromPath(td, path)})
		if err != nil {
			t.Fatal(err)
		}
		return &x509svid.SVID{ID: spiffeid.RequireFromPath(td, path), Certificates: append([]*x509.Certificate{cert}, c.Intermediates()...), PrivateKey: key}
	}
	svidDir := filepath.Join(dir, "gate")
	if err := sdk.WriteFiles(svidDir, issue("/gate/vendor-portal"), c.X509Bundle()); err != nil {
		t.Fatal(err)
	}
	srv := issue("/warden/server")
	doc := &truststate.Document{TrustDomain: td.Name(), Version: 4, IssuedAt: time.Now(),
		RevokedIDs: map[string]truststate.Revocation{"spiffe://supplychain.example/agent/demand-planner": {Reason: "test"}}}
	signed, err := truststate.Sign(doc, srv.PrivateKey, srv.Certificates)
	if err != nil {
		t.Fatal(err)
	}
	cache, _ := json.Marshal(map[string]any{"signed": string(signed), "verified_at": time.Now()})
	if err := os.WriteFile(filepath.Join(svidDir, "trust-state.json"), cache, 0o600); err != nil {
		t.Fatal(err)
	}
	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"1","result":{"ok":"` + r.Header.Get("Warden-Peer-Id") + `"}}`))
	})}
	uln, _ := net.Listen("tcp", "127.0.0.1:0")
	go upstream.Serve(uln)
	defer upstream.Close()
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := pl.Addr().String()
	pl.Close()

	yml := strings.NewReplacer("LISTEN", addr, "SVIDDIR", svidDir, "UPSTREAM", "http://"+uln.Addr().String()).Replace(`mode: inbound
listen: LISTEN
self: spiffe://supplychain.example/agent/vendor-portal
svid_dir: SVIDDIR
server: https://127.0.0.1:1
upstream: UPSTREAM
zone: cloud
policy:
  dir: ../../policies
peers:
  - {spiffe_id: spiffe://supplychain.example/agent/procurement, role: procurement, class: transactional, zone: cloud}
  - {spiffe_id: spiffe://supplychain.example/agent/demand-planner, role: forecasting, class: advisory, zone: cloud}
`)
	f, err := parseGateFile([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runGate(ctx, f, slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-done }()

	call := func(svid *x509svid.SVID, action string) string {
		tc := tlsconfig.MTLSClientConfig(x509svidSource{svid}, c.X509Bundle(), tlsconfig.AuthorizeAny())
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
		body := []byte(`{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"role":"ROLE_USER","messageId":"m","parts":[{"text":"x"}]}}}`)
		tok, err := sdk.SignIntent(svid.Certificates[0], svid.PrivateKey, sdk.Intent{Audience: "spiffe://supplychain.example/agent/vendor-portal", Action: action, Resource: "Order/PO-1"}, body, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var res *http.Response
		for i := 0; i < 100; i++ { // the gate is starting
			req, _ := http.NewRequest(http.MethodPost, "https://"+addr+"/", bytes.NewReader(body))
			req.Header.Set(sdk.IntentHeader, tok)
			if res, err = client.Do(req); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if got := call(issue("/agent/procurement"), "purchase_order.read"); !strings.Contains(got, `"ok":"spiffe://supplychain.example/agent/procurement"`) {
		t.Errorf("procurement: %s", got)
	}
	if got := call(issue("/agent/demand-planner"), "purchase_order.read"); !strings.Contains(got, "identity_revoked") {
		t.Errorf("revoked demand-planner: %s", got)
	}
}

type x509svidSource struct{ s *x509svid.SVID }

func (s x509svidSource) GetX509SVID() (*x509svid.SVID, error) { return s.s, nil }
