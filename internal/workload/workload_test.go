package workload_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/federation"
	"github.com/warden-a2a/warden/internal/federation/federationtest"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/workload"
	"github.com/warden-a2a/warden/sdk"
)

// A child process started by TestOtherUIDRefused runs as another uid and reports what
// the Workload API answered it.
const childEnv = "WARDEN_TEST_WORKLOAD_CHILD"

func TestMain(m *testing.M) {
	if addr := os.Getenv(childEnv); addr != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := workloadapi.FetchX509SVID(ctx, workloadapi.WithAddr(addr))
		cancel()
		fmt.Printf("uid=%d code=%s\n", os.Getuid(), status.Code(err))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// agent is an enrolled agent serving the Workload API, as `warden enroll --watch
// --workload-api` runs it, against a live control plane.
type agent struct {
	addr  string // unix:///.../agent.sock
	dir   string
	id    spiffeid.ID
	admin *adminclient.Client
	srv   *server.Server
}

func startAgent(t *testing.T, ttl time.Duration, sel func(uid uint32) workload.Selector) *agent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	run := func(fn func()) { wg.Add(1); go func() { defer wg.Done(); fn() }() }

	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := server.New(ctx, server.Config{TrustDomain: "supplychain.example", DataDir: filepath.Join(dir, "cp"), Store: st, SVIDTTL: ttl,
		FederationMinRefresh: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	run(func() { _ = srv.Serve(ctx, ln) })
	for srv.URL() == "" {
		time.Sleep(time.Millisecond)
	}
	admin, err := adminclient.Load(srv.AdminDir(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.HTTP.CloseIdleConnections)
	if _, err := admin.CreateEntry(ctx, api.Entry{Name: "carrier-desk", Role: "shipping", Class: "advisory", Zone: "cloud"}); err != nil {
		t.Fatal(err)
	}
	tok, _ := admin.CreateToken(ctx, "carrier-desk", time.Minute)
	svid, bundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: srv.URL(), Token: tok.Token})
	if err != nil {
		t.Fatal(err)
	}
	changes := &workload.Notifier{}
	src, err := sdk.NewSource(sdk.SourceConfig{ServerURL: srv.URL(), SVID: svid, Bundle: bundle,
		OnRotate: func(*x509svid.SVID) { changes.Notify() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.HTTPClient().CloseIdleConnections)
	as, err := workload.NewAgentSource(workload.AgentConfig{Source: src, ServerURL: srv.URL(), Changes: changes, MinBundleRefresh: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := workload.New(workload.Config{Source: as, Selector: sel(uint32(os.Getuid()))})
	if err != nil {
		t.Fatal(err)
	}
	sockDir := filepath.Join(dir, "run")
	addr := "unix://" + filepath.Join(sockDir, "agent.sock")
	wln, err := workload.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	run(func() { _ = src.Run(ctx) })
	run(func() { as.Run(ctx) })
	run(func() { _ = ws.Serve(ctx, wln) })
	return &agent{addr: addr, dir: dir, id: svid.ID, admin: admin, srv: srv}
}

func byUID(uid uint32) workload.Selector { return workload.Selector{UIDs: []uint32{uid}} }

// TestX509SourceRotatesWithoutFailedHandshake: an unmodified go-spiffe X509Source on
// the Workload API socket follows the agent through at least two rotations (4 s SVIDs,
// renewed at half-life) while a TLS server and client built on it handshake anew every
// 50 ms; not one handshake fails.
func TestX509SourceRotatesWithoutFailedHandshake(t *testing.T) {
	a := startAgent(t, 4*time.Second, byUID)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(a.addr)))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	var mu sync.Mutex
	serials := map[string]bool{}
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		serials[r.TLS.PeerCertificates[0].SerialNumber.String()] = true
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	})}
	hs.TLSConfig = tlsconfig.MTLSServerConfig(src, src, tlsconfig.AuthorizeID(a.id))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	defer hs.Close()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: tlsconfig.MTLSClientConfig(src, src, tlsconfig.AuthorizeID(a.id))}}

	deadline := time.Now().Add(30 * time.Second)
	calls := 0
	for {
		res, err := client.Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatalf("handshake %d failed: %v", calls, err)
		}
		res.Body.Close()
		calls++
		mu.Lock()
		n := len(serials)
		mu.Unlock()
		if n >= 3 {
			t.Logf("%d handshakes over %d SVIDs, none failed", calls, n)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d distinct SVIDs seen in 30 s", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSelectorRefusesOtherProcesses: a caller the selector does not name (another uid,
// another executable) gets PermissionDenied on every RPC, and no SVID.
func TestSelectorRefusesOtherProcesses(t *testing.T) {
	exe, _ := os.Executable()
	for name, sel := range map[string]func(uint32) workload.Selector{
		"another uid":        func(uid uint32) workload.Selector { return workload.Selector{UIDs: []uint32{uid + 1}} },
		"another executable": func(uint32) workload.Selector { return workload.Selector{Paths: []string{"/usr/bin/true"}} },
		"another gid":        func(uint32) workload.Selector { return workload.Selector{GIDs: []uint32{uint32(os.Getgid()) + 1}} },
	} {
		t.Run(name, func(t *testing.T) {
			a := startAgent(t, time.Minute, sel)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if sv, err := workloadapi.FetchX509SVID(ctx, workloadapi.WithAddr(a.addr)); status.Code(err) != codes.PermissionDenied {
				t.Fatalf("FetchX509SVID: %v %v", sv, err)
			}
			if _, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "x"}, workloadapi.WithAddr(a.addr)); status.Code(err) != codes.PermissionDenied {
				t.Fatalf("FetchJWTSVID: %v", err)
			}
			if _, err := workloadapi.FetchX509Bundles(ctx, workloadapi.WithAddr(a.addr)); status.Code(err) != codes.PermissionDenied {
				t.Fatalf("FetchX509Bundles: %v", err)
			}
		})
	}
	t.Run("the right executable", func(t *testing.T) {
		a := startAgent(t, time.Minute, func(uint32) workload.Selector { return workload.Selector{Paths: []string{exe}} })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if sv, err := workloadapi.FetchX509SVID(ctx, workloadapi.WithAddr(a.addr)); err != nil || sv.ID != a.id {
			t.Fatalf("FetchX509SVID: %v %v", sv, err)
		}
	})
}

// TestOtherUIDRefused: run as root, a child process with another uid (nobody) connects
// to the socket — which it may: mode 0666 — and is refused PermissionDenied by the
// selector, while this process (uid 0) gets its SVID.
func TestOtherUIDRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to start a process with another uid; TestSelectorRefusesOtherProcesses covers the selector")
	}
	a := startAgent(t, time.Minute, byUID)
	// The child must reach the socket and its own binary.
	for d := filepath.Join(a.dir, "run"); d != filepath.Dir(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	self, _ := os.Executable()
	bin := filepath.Join(a.dir, "run", "child.test")
	b, _ := os.ReadFile(self)
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+a.addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
	if !strings.Contains(string(out), "uid=65534 code=PermissionDenied") {
		t.Fatalf("the other uid was not refused: %s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := workloadapi.FetchX509SVID(ctx, workloadapi.WithAddr(a.addr)); err != nil {
		t.Fatalf("the selected uid: %v", err)
	}
}

// TestSecurityHeaderRequired: a call without "workload.spiffe.io: true" is
// InvalidArgument (SPIFFE Workload Endpoint §6), before the caller is even looked at.
func TestSecurityHeaderRequired(t *testing.T) {
	a := startAgent(t, time.Minute, byUID)
	conn, err := grpc.NewClient(a.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewSpiffeWorkloadAPIClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, md := range map[string]metadata.MD{"missing": nil, "false": metadata.Pairs("workload.spiffe.io", "false"),
		"twice": metadata.Pairs("workload.spiffe.io", "true", "workload.spiffe.io", "true")} {
		cctx := metadata.NewOutgoingContext(ctx, md)
		if _, err := c.FetchJWTSVID(cctx, &pb.JWTSVIDRequest{Audience: []string{"x"}}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("header %s, FetchJWTSVID: %v", name, err)
		}
		s, err := c.FetchX509SVID(cctx, &pb.X509SVIDRequest{})
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("header %s, FetchX509SVID: %v", name, err)
		}
	}
	cctx := metadata.NewOutgoingContext(ctx, metadata.Pairs("workload.spiffe.io", "true"))
	if _, err := c.FetchJWTSVID(cctx, &pb.JWTSVIDRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("no audience: %v", err)
	}
	if _, err := c.FetchJWTSVID(cctx, &pb.JWTSVIDRequest{Audience: []string{"x"}, SpiffeId: "spiffe://supplychain.example/agent/other"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("another identity: %v", err)
	}
}

// TestJWTProfile: a JWT-SVID from the Workload API (minted by the control plane) verifies
// with the JWT bundles the Workload API streams, and ValidateJWTSVID accepts it for its
// audience only.
func TestJWTProfile(t *testing.T) {
	a := startAgent(t, time.Minute, byUID)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, err := workloadapi.New(ctx, workloadapi.WithAddr(a.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const aud = "spiffe://partner.example/agent/carrier"
	sv, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: aud})
	if err != nil || sv.ID != a.id {
		t.Fatalf("FetchJWTSVID: %v %v", sv, err)
	}
	again, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: aud})
	if err != nil || again.Marshal() != sv.Marshal() {
		t.Errorf("a fresh JWT-SVID for the same audience is not reused: %v", err)
	}
	set, err := client.FetchJWTBundles(ctx)
	for err == nil && !set.Has(a.id.TrustDomain()) { // the control plane's bundle is fetched once the agent runs
		time.Sleep(50 * time.Millisecond)
		set, err = client.FetchJWTBundles(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwtsvid.ParseAndValidate(sv.Marshal(), set, []string{aud}); err != nil {
		t.Fatalf("the JWT-SVID does not verify with the streamed bundles: %v", err)
	}
	if got, err := client.ValidateJWTSVID(ctx, sv.Marshal(), aud); err != nil || got.ID != a.id {
		t.Fatalf("ValidateJWTSVID: %v %v", got, err)
	}
	if _, err := client.ValidateJWTSVID(ctx, sv.Marshal(), "other"); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("ValidateJWTSVID for another audience: %v", err)
	}
}

// TestFederatedBundlesStreamed: a trust domain federated at the control plane appears in
// the X.509 and JWT bundles a go-spiffe X509Source and JWT bundle watch receive, and
// disappears when the federation is removed.
func TestFederatedBundlesStreamed(t *testing.T) {
	a := startAgent(t, time.Minute, byUID)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(a.addr)))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	jwts, err := workloadapi.NewJWTSource(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(a.addr)))
	if err != nil {
		t.Fatal(err)
	}
	defer jwts.Close()
	partner := federationtest.New(t, "partner.example")
	doc, _ := partner.Bundle().Marshal()
	if _, err := a.admin.AddFederation(ctx, api.FederationRequest{TrustDomain: "partner.example", EndpointURL: partner.ServeSPIFFE(t),
		Profile: federation.ProfileSPIFFE, EndpointSPIFFEID: partner.EndpointID.String(), Bundle: doc}); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "partner bundles streamed", func() bool {
		xb, err1 := src.GetX509BundleForTrustDomain(partner.TD)
		jb, err2 := jwts.GetJWTBundleForTrustDomain(partner.TD)
		return err1 == nil && err2 == nil && xb.Equal(partner.X509Bundle()) && jb.Equal(partner.Bundle().JWTBundle())
	})
	// A partner agent's SVID now verifies with what the Workload API handed out.
	carrier := partner.SVID(t, "/agent/carrier", time.Hour)
	if _, _, err := x509svid.Verify(carrier.Certificates, src); err != nil {
		t.Fatalf("a partner SVID does not verify with the streamed bundles: %v", err)
	}
	if _, err := a.admin.RemoveFederation(ctx, "partner.example", ""); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "partner bundles withdrawn", func() bool {
		_, err := src.GetX509BundleForTrustDomain(partner.TD)
		return err != nil
	})
}

func within(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
