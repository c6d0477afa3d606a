package sdk_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/sdk"
)

var td = spiffeid.RequireTrustDomainFromString("supplychain.example")

// controlPlane starts a real control plane on loopback.
func controlPlane(t *testing.T, ttl time.Duration) (*server.Server, *adminclient.Client) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), server.Config{TrustDomain: td.Name(), DataDir: dir, Store: st, SVIDTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	for srv.URL() == "" {
		time.Sleep(time.Millisecond)
	}
	admin, err := adminclient.Load(srv.AdminDir(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	return srv, admin
}

func enrol(t *testing.T, srv *server.Server, admin *adminclient.Client, name, dir string) *sdk.Source {
	t.Helper()
	ctx := context.Background()
	if _, err := admin.CreateEntry(ctx, api.Entry{Name: name, Role: "r", Class: "transactional", Zone: "cloud"}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, name, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	svid, bundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: srv.URL(), Token: tok.Token})
	if err != nil {
		t.Fatal(err)
	}
	src, err := sdk.NewSource(sdk.SourceConfig{ServerURL: srv.URL(), SVID: svid, Bundle: bundle, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestRotationUnderLoad: both ends of an mTLS service rotate their SVIDs several times
// while clients keep calling, over kept-alive and fresh connections; no call fails.
func TestRotationUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ~7s")
	}
	srv, admin := controlPlane(t, 4*time.Second) // renewals every ~2 s leave ~2 s of slack on a loaded machine
	serverDir := t.TempDir()
	vendor := enrol(t, srv, admin, "vendor-portal", serverDir)
	buyer := enrol(t, srv, admin, "procurement", "")
	var rotations atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var bg sync.WaitGroup
	for _, s := range []*sdk.Source{vendor, buyer} {
		bg.Add(1)
		go func() { defer bg.Done(); _ = s.Run(ctx) }()
	}
	defer bg.Wait()
	defer cancel()

	ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsconfig.MTLSServerConfig(vendor, vendor, tlsconfig.AuthorizeMemberOf(td)))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // calls in flight while a rotation happens
		fmt.Fprint(w, "ok")
	})}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	seen := map[string]bool{}
	var seenMu sync.Mutex
	conf := tlsconfig.MTLSClientConfig(buyer, buyer, tlsconfig.AuthorizeID(spiffeid.RequireFromPath(td, "/agent/vendor-portal")))
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		seenMu.Lock()
		seen[cs.PeerCertificates[0].SerialNumber.String()] = true
		seenMu.Unlock()
		return nil
	}
	keepAlive := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
	fresh := &http.Client{Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}}
	deadline := time.Now().Add(6 * time.Second)
	var calls, failures atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		c := keepAlive
		if i%2 == 1 {
			c = fresh
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				res, err := c.Get("https://" + ln.Addr().String())
				calls.Add(1)
				if err != nil {
					failures.Add(1)
					t.Errorf("call failed during rotation: %v", err)
					continue
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if string(b) != "ok" {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	keepAlive.CloseIdleConnections()
	_ = rotations.Load()
	seenMu.Lock()
	n := len(seen)
	seenMu.Unlock()
	t.Logf("%d calls, %d failures, %d distinct server certificates seen", calls.Load(), failures.Load(), n)
	if n < 3 {
		t.Errorf("the server rotated only %d times during the test", n-1)
	}
	// Stop rotating, then check that the files on disk are the current SVID.
	cancel()
	bg.Wait()
	disk, err := x509svid.Load(filepath.Join(serverDir, sdk.SVIDFile), filepath.Join(serverDir, sdk.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := vendor.GetX509SVID()
	if !disk.Certificates[0].Equal(cur.Certificates[0]) {
		t.Error("svid.pem is not the current SVID")
	}
	if info, _ := os.Stat(filepath.Join(serverDir, sdk.KeyFile)); info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", info.Mode().Perm())
	}
}

// TestEnrollRefusesWrongServer: a join token pins the root CA; a server with another root
// (a man in the middle) is refused before the token is sent.
func TestEnrollRefusesWrongServer(t *testing.T) {
	srv, admin := controlPlane(t, 0)
	impostor, _ := controlPlane(t, 0)
	ctx := context.Background()
	if _, err := admin.CreateEntry(ctx, api.Entry{Name: "a", Role: "r", Class: "advisory", Zone: "z"}); err != nil {
		t.Fatal(err)
	}
	tok, _ := admin.CreateToken(ctx, "a", time.Minute)
	if _, _, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: impostor.URL(), Token: tok.Token}); err == nil {
		t.Fatal("enrolled with a server whose root does not match the token's pin")
	}
	// The token was not consumed by the impostor attempt: the real server still takes it.
	if _, _, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: srv.URL(), Token: tok.Token, KeyType: sdk.KeyEd25519}); err != nil {
		t.Fatal(err)
	}
}

func TestRunStopsOnRefusal(t *testing.T) {
	srv, admin := controlPlane(t, 2*time.Second)
	src := enrol(t, srv, admin, "payment-release", "")
	if _, err := admin.ChangeTrust(context.Background(), "revoke", api.TrustChange{ID: "spiffe://supplychain.example/agent/payment-release", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := src.Run(ctx)
	if sdk.Reason(err) != api.ReasonIdentityRevoked {
		t.Fatalf("Run returned %v", err)
	}
}

// TestRetryDelayAgainstNotAfter: retries after a failed renewal come faster as expiry nears and never
// sleep past NotAfter; once expired, every few seconds.
func TestRetryDelayAgainstNotAfter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name       string
		prev, left time.Duration
		want       time.Duration
	}{
		{"first failure, plenty of time", 0, 10 * time.Minute, time.Second},
		{"doubling", 8 * time.Second, 10 * time.Minute, 16 * time.Second},
		{"capped at a minute", time.Minute, time.Hour, time.Minute},
		{"a third of the time left", 32 * time.Second, 30 * time.Second, 10 * time.Second},
		{"floor of 250 ms near expiry", 4 * time.Second, 600 * time.Millisecond, 250 * time.Millisecond},
		{"never past NotAfter", 4 * time.Second, 100 * time.Millisecond, 100 * time.Millisecond},
		{"expired: doubling up to 15 s", 8 * time.Second, -time.Minute, 15 * time.Second},
		{"expired: first retry", 0, -time.Second, time.Second},
	} {
		if got := sdk.RetryDelay(tc.prev, now.Add(tc.left), now); got != tc.want {
			t.Errorf("%s: retryDelay(%s, left %s) = %s, want %s", tc.name, tc.prev, tc.left, got, tc.want)
		}
	}
}

// TestRunStopsWhenExpiredWithoutTPM: an SVID that expired while the control plane was
// away, on an agent without a TPM, stops Run with ErrExpiredNoTPM (whose message names
// warden token create), instead of retrying a handshake the server refuses forever.
func TestRunStopsWhenExpiredWithoutTPM(t *testing.T) {
	srv, admin := controlPlane(t, 2*time.Second)
	src := enrol(t, srv, admin, "vendor-portal", "")
	sdk.SetRenewGrace(t, time.Second)
	svid, _ := src.GetX509SVID()
	time.Sleep(time.Until(svid.Certificates[0].NotAfter.Add(1100 * time.Millisecond))) // past the renewal grace
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := src.Run(ctx)
	if !errors.Is(err, sdk.ErrExpiredNoTPM) || !strings.Contains(err.Error(), "warden token create") {
		t.Fatalf("Run = %v, want ErrExpiredNoTPM naming warden token create", err)
	}
}
