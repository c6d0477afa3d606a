// Package gate benchmarks `warden gate` (internal/gate) against a bare
// httputil.ReverseProxy with the same mTLS and keep-alive. The proxy under test runs in
// a child process (this test binary re-executed), so its CPU time is read from
// /proc/<pid>/stat apart from the client's and the upstream's, which stay in the parent.
package gate

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

var td = spiffeid.RequireTrustDomainFromString("supplychain.example")

const (
	envChild    = "WARDEN_BENCH_CHILD"    // "gate" | "bare"
	envDir      = "WARDEN_BENCH_DIR"      // CA directory shared with the parent
	envUpstream = "WARDEN_BENCH_UPSTREAM" // the parent's upstream URL
	envReplay   = "WARDEN_BENCH_REPLAY"   // replay entries to preload (gate)
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envChild); mode != "" {
		if err := child(mode); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func issue(c *ca.CA, path string, key crypto.Signer) *x509svid.SVID {
	cert, err := c.SignX509SVID(ca.X509Request{PublicKey: key.Public(), ID: spiffeid.RequireFromPath(td, path), TTL: time.Hour})
	if err != nil {
		panic(err)
	}
	return &x509svid.SVID{ID: spiffeid.RequireFromPath(td, path), Certificates: append([]*x509.Certificate{cert}, c.Intermediates()...), PrivateKey: key}
}

type static struct{ s *x509svid.SVID }

func (s static) GetX509SVID() (*x509svid.SVID, error) { return s.s, nil }

// child serves the proxy under test on loopback, prints "ADDR host:port" and runs until
// stdin closes.
func child(mode string) error {
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: os.Getenv(envDir)})
	if err != nil {
		return err
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	svid := issue(c, "/gate/vendor-portal", key)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	if out := os.Getenv("WARDEN_BENCH_CPUPROFILE"); out != "" { // profile the child
		f, err := os.Create(out + "." + mode)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	upstream := os.Getenv(envUpstream)
	switch mode {
	case "bare":
		u, _ := url.Parse(upstream)
		p := &httputil.ReverseProxy{
			Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
			Transport:     &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
			FlushInterval: -1,
		}
		tc := tlsconfig.MTLSServerConfig(static{svid}, c.X509Bundle(), tlsconfig.AuthorizeMemberOf(td))
		tc.MinVersion = tls.VersionTLS13
		srv := &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
		fmt.Printf("ADDR %s\n", ln.Addr())
		go func() { <-ctx.Done(); srv.Close() }()
		_ = srv.Serve(tls.NewListener(ln, tc))
		return nil
	case "gate":
		skey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ssvid := issue(c, "/warden/server", skey)
		signed, err := truststate.Sign(&truststate.Document{TrustDomain: td.Name(), Version: 1, IssuedAt: time.Now()}, skey, ssvid.Certificates)
		if err != nil {
			return err
		}
		f := truststate.NewFollower(truststate.FollowerConfig{Bundle: c.X509Bundle(), TrustDomain: td})
		if _, err := f.Accept(signed); err != nil {
			return err
		}
		eng, err := policy.Load(filepath.Join("..", "..", "policies"), policy.Options{})
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(os.Getenv(envReplay))
		replay := intent.NewMemoryCache(max(n+n/4, 1<<16))
		until := time.Now().Add(time.Hour)
		for i := 0; i < n; i++ {
			_ = replay.CheckAndInsert(ctx, "spiffe://supplychain.example/agent/preload", strconv.Itoa(i), time.Now(), until)
		}
		g, err := gate.New(gate.Config{
			Mode: gate.ModeInbound, Self: spiffeid.RequireFromPath(td, "/agent/vendor-portal"),
			SVID: static{svid}, Bundle: c.X509Bundle(), Upstream: upstream,
			Peers:  map[string]policy.Agent{"spiffe://supplychain.example/agent/procurement": {Role: "procurement", Class: "transactional", Zone: "cloud"}},
			Policy: policy.NewHolder(eng), Trust: f, Zone: "cloud", Replay: replay,
			Limits: gate.Limits{MaxConnsPerPeer: 1024},
		})
		if err != nil {
			return err
		}
		fmt.Printf("ADDR %s\n", ln.Addr())
		return g.Serve(ctx, ln)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// proc is a running child.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

func startChild(b testing.TB, mode, dir, upstream string, replay int) *proc {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+mode, envDir+"="+dir, envUpstream+"="+upstream, envReplay+"="+strconv.Itoa(replay))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("child %s: %v", mode, err)
	}
	p := &proc{cmd: cmd, stdin: stdin, addr: strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	return p
}

// cpu returns the child's user+system CPU time (/proc/<pid>/stat fields 14 and 15).
func (p *proc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

// rssKiB returns the child's VmHWM (peak resident set) in KiB.
func (p *proc) rssKiB() int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// setup is the CA, the upstream and the client identity shared by the runs.
type setup struct {
	dir      string
	ca       *ca.CA
	upstream string
	client   *x509svid.SVID // Ed25519: the gate's intent check is one Ed25519 verify
	body     []byte
}

func newSetup(b testing.TB) *setup {
	dir := b.TempDir()
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	_, ekey, _ := ed25519.GenerateKey(rand.Reader)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	answer := []byte(`{"jsonrpc":"2.0","id":"1","result":{"message":{"role":"ROLE_AGENT","messageId":"m","parts":[{"text":"ok"}]}}}`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	body := []byte(`{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"role":"ROLE_USER","messageId":"m1","parts":[{"text":"purchase order PO-1001"}],"metadata":{"warden.action":"purchase_order.read","warden.resource":"Order/PO-1001"}}}}`)
	return &setup{dir: dir, ca: c, upstream: "http://" + ln.Addr().String(), client: issue(c, "/agent/procurement", ekey), body: body}
}

func (s *setup) httpClient(conns int) *http.Client {
	tc := tlsconfig.MTLSClientConfig(static{s.client}, s.ca.X509Bundle(), tlsconfig.AuthorizeMemberOf(td))
	tc.MinVersion = tls.VersionTLS13
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
}

// tokens pre-signs n intents (distinct jti), so the client's signing stays out of the
// measured loop. purchase_order.read: the default bundle rate-limits create to 10/s.
func (s *setup) tokens(b testing.TB, n int) []string {
	out := make([]string, n)
	in := sdk.Intent{Audience: "spiffe://supplychain.example/agent/vendor-portal", Action: "purchase_order.read", Resource: "Order/PO-1001", TTL: 60 * time.Second}
	now := time.Now()
	for i := range out {
		tok, err := sdk.SignIntent(s.client.Certificates[0], s.client.PrivateKey, in, s.body, now)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = tok
	}
	return out
}

func (s *setup) call(c *http.Client, addr, tok string) error {
	req, _ := http.NewRequest(http.MethodPost, "https://"+addr+"/", bytes.NewReader(s.body))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set(intent.HeaderName, tok)
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || bytes.Contains(b, []byte(`"error"`)) {
		return fmt.Errorf("status %d: %s", res.StatusCode, b)
	}
	return nil
}

// run sends n calls with conc concurrent workers and returns wall time.
func (s *setup) run(b testing.TB, c *http.Client, addr string, toks []string, conc int) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(toks) {
					return
				}
				if err := s.call(c, addr, toks[i]); err != nil {
					failed.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatalf("call failed: %v", err)
	}
	return time.Since(start)
}

// BenchmarkProxyCPU reports the child's CPU per request (cpu-µs/req) and throughput for
// the gate's whole inbound pipeline and for a bare ReverseProxy with the same mTLS,
// keep-alive and 16 concurrent connections; the client and upstream are in the parent.
func BenchmarkProxyCPU(b *testing.B) {
	s := newSetup(b)
	for _, mode := range []string{"bare", "gate"} {
		b.Run(mode, func(b *testing.B) {
			p := startChild(b, mode, s.dir, s.upstream, 0)
			c := s.httpClient(16)
			toks := make([]string, 256)
			if mode == "gate" {
				toks = s.tokens(b, 256)
			}
			s.run(b, c, p.addr, toks, 16) // warm up: connections, caches
			if mode == "gate" {
				toks = s.tokens(b, b.N)
			} else {
				toks = make([]string, b.N)
			}
			b.ResetTimer()
			cpu0 := p.cpu()
			wall := s.run(b, c, p.addr, toks, 16)
			cpu := p.cpu() - cpu0
			b.StopTimer()
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/req")
			b.ReportMetric(float64(b.N)/wall.Seconds(), "req/s")
			b.ReportMetric(float64(p.rssKiB())/1024, "peak-RSS-MiB")
		})
	}
}

// BenchmarkEd25519Verify is the "one Ed25519 verify" of the CPU target.
func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 400)
	sig := ed25519.Sign(priv, msg)
	var r0, r1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify")
		}
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(b.N), "cpu-µs/op")
}

// TestLatencyAtHalfSaturation (WARDEN_BENCH_LATENCY=1): measures each proxy's saturating
// rate with 16 connections, then sends at half of the gate's rate, open loop, for 5 s,
// and reports p50/p99 through the gate, through the bare proxy, and direct to the
// upstream; then the gate's peak RSS with 1,000,000 live replay entries after the run.
func TestLatencyAtHalfSaturation(t *testing.T) {
	if os.Getenv("WARDEN_BENCH_LATENCY") == "" {
		t.Skip("set WARDEN_BENCH_LATENCY=1 (takes ~40 s; a benchmark, not a unit test)")
	}
	s := newSetup(t)
	gp := startChild(t, "gate", s.dir, s.upstream, 1_000_000)
	bp := startChild(t, "bare", s.dir, s.upstream, 0)
	c := s.httpClient(16)
	satToks := s.tokens(t, 20000)
	s.run(t, c, gp.addr, satToks[:2000], 16)
	wall := s.run(t, c, gp.addr, satToks[2000:], 16)
	sat := float64(len(satToks)-2000) / wall.Seconds()
	rate := sat / 2
	t.Logf("gate saturation: %.0f req/s with 16 connections; open-loop rate %.0f req/s", sat, rate)

	measure := func(name, addr string, signed bool) (p50, p99 time.Duration) {
		n := int(rate * 5)
		var toks []string
		if signed {
			toks = s.tokens(t, n)
		} else {
			toks = make([]string, n)
		}
		lat := make([]time.Duration, n)
		var wg sync.WaitGroup
		interval := time.Duration(float64(time.Second) / rate)
		start := time.Now()
		for i := 0; i < n; i++ {
			due := start.Add(time.Duration(i) * interval)
			time.Sleep(time.Until(due))
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				t0 := time.Now()
				if err := s.call(c, addr, toks[i]); err != nil {
					t.Errorf("%s: %v", name, err)
				}
				lat[i] = time.Since(t0)
			}(i)
		}
		wg.Wait()
		slices.Sort(lat)
		return lat[n/2], lat[n*99/100]
	}
	g50, g99 := measure("gate", gp.addr, true)
	b50, b99 := measure("bare", bp.addr, false)
	dc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	u := strings.TrimPrefix(s.upstream, "http://")
	n := int(rate * 5)
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			t0 := time.Now()
			res, err := dc.Post("http://"+u+"/", "application/json", bytes.NewReader(s.body))
			if err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			lat[i] = time.Since(t0)
		}(i)
	}
	wg.Wait()
	slices.Sort(lat)
	d50, d99 := lat[n/2], lat[n*99/100]
	t.Logf("p50/p99 gate %v/%v, bare proxy %v/%v, direct %v/%v", g50, g99, b50, b99, d50, d99)
	t.Logf("added by the gate at p99: %v vs direct, %v vs the bare proxy", g99-d99, g99-b99)
	t.Logf("gate peak RSS with 1,000,000 live replay entries after the runs: %.1f MiB", float64(gp.rssKiB())/1024)
}
