// Package gate benchmarks `warden gate` (internal/gate) against a bare
// httputil.ReverseProxy with the same mTLS and keep-alive. The proxy under test and the
// upstream agent run in child processes (this test binary re-executed), so the proxy's
// CPU time is read from /proc/<pid>/stat apart from the client's (the parent) and the
// upstream's.
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
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
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
	envChild    = "WARDEN_BENCH_CHILD"    // "gate" | "bare" | "bare-pooled" | "upstream"
	envDir      = "WARDEN_BENCH_DIR"      // CA directory shared with the parent
	envUpstream = "WARDEN_BENCH_UPSTREAM" // the upstream agent's URL (another child)
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

// child serves the proxy under test (or, mode "upstream", the agent) on loopback, prints
// "ADDR host:port" (the agent: its plain, mTLS and unix-socket addresses) and runs until
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
	defer printRuntimeStats(mode)
	upstream := os.Getenv(envUpstream)
	switch mode {
	case "upstream":
		// The agent: a trivial A2A answer on plain HTTP (behind the proxies) and on mTLS
		// with the same settings as the proxies (the direct-with-TLS path).
		answer := []byte(`{"jsonrpc":"2.0","id":"1","result":{"message":{"role":"ROLE_AGENT","messageId":"m","parts":[{"text":"ok"}]}}}`)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(answer)
		})
		tln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		tc := tlsconfig.MTLSServerConfig(static{svid}, c.X509Bundle(), tlsconfig.AuthorizeMemberOf(td))
		tc.MinVersion = tls.VersionTLS13
		plain, secure := &http.Server{Handler: h}, &http.Server{Handler: h}
		sock := filepath.Join(os.Getenv(envDir), "agent.sock")
		uln, err := net.Listen("unix", sock)
		if err != nil {
			return err
		}
		local := &http.Server{Handler: h}
		fmt.Printf("ADDR %s %s %s\n", ln.Addr(), tln.Addr(), sock)
		go func() { <-ctx.Done(); plain.Close(); secure.Close(); local.Close() }()
		go func() { _ = secure.Serve(tls.NewListener(tln, tc)) }()
		go func() { _ = local.Serve(uln) }()
		_ = plain.Serve(ln)
		return nil
	case "bare", "bare-pooled":
		// httputil.ReverseProxy as it comes ("bare"), and with a copy-buffer pool as the
		// gate has ("bare-pooled": the stricter baseline).
		u, _ := url.Parse(upstream)
		p := &httputil.ReverseProxy{
			Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
			Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
		}
		if mode == "bare-pooled" {
			p.BufferPool = &bufferPool{}
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
	if extra := os.Getenv("WARDEN_BENCH_CHILD_ENV_" + strings.ToUpper(mode)); extra != "" {
		cmd.Env = append(cmd.Env, strings.Fields(extra)...)
	}
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
	dir string
	ca  *ca.CA
	up  *proc
	// upstreamSock is the same agent on a unix socket (unix:// URL): the sidecar layout
	upstreamSock string
	upstream     string // plain HTTP URL of the upstream agent
	// upstreamTLS is the same agent's mTLS address (host:port)
	upstreamTLS string
	client      *x509svid.SVID // Ed25519: the gate's intent check is one Ed25519 verify
	body        []byte
}

func newSetup(b testing.TB) *setup {
	dir := b.TempDir()
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	_, ekey, _ := ed25519.GenerateKey(rand.Reader)
	// The upstream agent is a process of its own, as it is in a deployment: without the
	// gate, a call still crosses from one process to another.
	up := startChild(b, "upstream", dir, "", 0)
	addrs := strings.Fields(up.addr)
	body := []byte(`{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"role":"ROLE_USER","messageId":"m1","parts":[{"text":"purchase order PO-1001"}],"metadata":{"warden.action":"purchase_order.read","warden.resource":"Order/PO-1001"}}}}`)
	return &setup{upstreamSock: "unix://" + addrs[2], up: up, dir: dir, ca: c, upstream: "http://" + addrs[0], upstreamTLS: addrs[1], client: issue(c, "/agent/procurement", ekey), body: body}
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
// the gate's whole inbound pipeline and for a bare ReverseProxy (as it comes, and with a
// buffer pool) with the same mTLS, keep-alive and 16 concurrent connections; the client
// is the parent, the upstream another child.
func BenchmarkProxyCPU(b *testing.B) {
	s := newSetup(b)
	for _, mode := range []string{"bare", "bare-pooled", "gate"} {
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

// TestLatencyAtHalfSaturation (WARDEN_BENCH_LATENCY=1): measures the gate's saturating
// rate with 16 connections, then sends at half of it, open loop, through the gate, through
// the bare proxy and direct to the upstream, interleaved in rounds so that all three paths
// see the same machine, and reports p50/p99/p99.9 per path; then the gate's peak RSS with
// 1,000,000 live replay entries after the runs.
//
// The generator is kept light so that it disturbs the 2 cores it shares with the proxies as
// little as it can: pre-dialled keep-alive connections, requests serialised once before the
// run, one goroutine per connection, no http.Client. A request's latency counts from the
// time it was due, not from when a connection took it, so a request that waited for a free
// connection or for a late pacer is charged for the wait (no coordinated omission).
func TestLatencyAtHalfSaturation(t *testing.T) {
	if os.Getenv("WARDEN_BENCH_LATENCY") == "" {
		t.Skip("set WARDEN_BENCH_LATENCY=1 (takes ~60 s; a benchmark, not a unit test)")
	}
	hiccups(t, 3*time.Second) // the machine's own stalls, before any load
	s := newSetup(t)
	gateUp := s.upstream
	if os.Getenv("WARDEN_BENCH_UNIX") != "" {
		gateUp = s.upstreamSock
	}
	gp := startChild(t, "gate", s.dir, gateUp, 1_000_000)
	bp := startChild(t, "bare-pooled", s.dir, s.upstream, 0)
	tc := tlsconfig.MTLSClientConfig(static{s.client}, s.ca.X509Bundle(), tlsconfig.AuthorizeMemberOf(td))
	tc.MinVersion = tls.VersionTLS13
	const conns = 32
	paths := []*lgPath{
		{name: "gate", conns: dialPool(t, gp.addr, tc, conns), signed: true},
		{name: "bare proxy", conns: dialPool(t, bp.addr, tc, conns)},
		{name: "direct", conns: dialPool(t, strings.TrimPrefix(s.upstream, "http://"), nil, conns)},
		{name: "direct mTLS", conns: dialPool(t, s.upstreamTLS, tc, conns)},
	}
	gatePath := paths[0]

	// Saturation: closed loop, 16 connections, back to back.
	satReqs := s.rawRequests(t, 20000, true)
	closedLoop(t, gatePath.conns[:16], satReqs[:2000])
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	g0, u0 := gp.cpu(), s.up.cpu()
	wall := closedLoop(t, gatePath.conns[:16], satReqs[2000:])
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	nsat := float64(len(satReqs) - 2000)
	t.Logf("CPU per request at saturation: gate %.0f µs, upstream %.0f µs, generator %.0f µs",
		float64((gp.cpu()-g0).Microseconds())/nsat, float64((s.up.cpu()-u0).Microseconds())/nsat,
		float64(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano())/1e3/nsat)
	sat := float64(len(satReqs)-2000) / wall.Seconds()
	t.Logf("gate saturation: %.0f req/s with 16 connections", sat)

	// Warm every connection of every path.
	for _, p := range paths {
		closedLoop(t, p.conns, s.rawRequests(t, 4*conns, p.signed))
	}
	fractions := []float64{0.5}
	if v := os.Getenv("WARDEN_BENCH_RATE_FRACTIONS"); v != "" { // other points of the curve
		fractions = nil
		for _, f := range strings.Split(v, ",") {
			x, err := strconv.ParseFloat(f, 64)
			if err != nil || x <= 0 || x >= 1 {
				t.Fatalf("WARDEN_BENCH_RATE_FRACTIONS: %q is not a fraction", f)
			}
			fractions = append(fractions, x)
		}
	}
	// measure sends at rate through each path, 8 rounds of 1 s per path, interleaved,
	// and returns p50/p99/p99.9 per path name.
	measure := func(paths []*lgPath, rate float64) map[string][3]time.Duration {
		const rounds, roundDur = 8, time.Second
		perRound := int(rate * roundDur.Seconds())
		for _, p := range paths {
			p.lat = p.lat[:0]
		}
		for r := 0; r < rounds; r++ {
			for k := range paths {
				p := paths[(r+k)%len(paths)] // rotate the order: no path always goes first
				p.lat = append(p.lat, openLoop(t, p.conns, s.rawRequests(t, perRound, p.signed), rate)...)
			}
		}
		q := map[string][3]time.Duration{}
		for _, p := range paths {
			slices.Sort(p.lat)
			n := len(p.lat)
			q[p.name] = [3]time.Duration{p.lat[n/2], p.lat[n*99/100], p.lat[n*999/1000]}
			t.Logf("  %-11s n=%d p50 %v  p99 %v  p99.9 %v", p.name, n, q[p.name][0], q[p.name][1], q[p.name][2])
		}
		return q
	}
	for _, f := range fractions {
		rate := sat * f
		t.Logf("open-loop rate %.0f req/s (%.2f of the gate's saturation), 8 rounds of 1 s per path, interleaved", rate, f)
		q := measure(paths, rate)
		t.Logf("  added by the gate at p99: %v vs direct, %v vs direct mTLS, %v vs the bare proxy",
			q["gate"][1]-q["direct"][1], q["gate"][1]-q["direct mTLS"][1], q["gate"][1]-q["bare proxy"][1])
		t.Logf("  added by the gate at p50: %v vs direct, %v vs direct mTLS, %v vs the bare proxy",
			q["gate"][0]-q["direct"][0], q["gate"][0]-q["direct mTLS"][0], q["gate"][0]-q["bare proxy"][0])
	}

	// Control: the bare proxy at half of its own saturating rate. If it too adds more than
	// 2 ms at p99 there, the limit is the machine at that load, not the gate's pipeline.
	bareSatReqs := s.rawRequests(t, 30000, false)
	bwall := closedLoop(t, paths[1].conns[:16], bareSatReqs)
	bsat := float64(len(bareSatReqs)) / bwall.Seconds()
	t.Logf("control: bare proxy saturation %.0f req/s with 16 connections; open-loop rate %.0f req/s (0.50 of it)", bsat, bsat/2)
	q := measure(paths[1:], bsat/2)
	t.Logf("  added by the bare proxy at p99: %v vs direct, %v vs direct mTLS",
		q["bare proxy"][1]-q["direct"][1], q["bare proxy"][1]-q["direct mTLS"][1])
	t.Logf("gate peak RSS with 1,000,000 live replay entries after the runs: %.1f MiB", float64(gp.rssKiB())/1024)
	printRuntimeStats("parent (generator)")
}

// lgPath is one path of the latency run and its measured latencies.
type lgPath struct {
	name   string
	conns  []*lgConn
	signed bool
	lat    []time.Duration
}

type lgConn struct {
	c net.Conn
	r *bufio.Reader
}

// dialPool opens n keep-alive connections to addr, TLS when tc is set, handshakes done.
func dialPool(t testing.TB, addr string, tc *tls.Config, n int) []*lgConn {
	out := make([]*lgConn, n)
	for i := range out {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if tc != nil {
			tlc := tls.Client(c, tc.Clone())
			if err := tlc.Handshake(); err != nil {
				t.Fatal(err)
			}
			c = tlc
		}
		t.Cleanup(func() { c.Close() })
		out[i] = &lgConn{c: c, r: bufio.NewReaderSize(c, 4096)}
	}
	return out
}

// rawRequests serialises n HTTP/1.1 requests, each with its own signed intent if signed.
func (s *setup) rawRequests(t testing.TB, n int, signed bool) [][]byte {
	var toks []string
	if signed {
		toks = s.tokens(t, n)
	}
	out := make([][]byte, n)
	for i := range out {
		var b bytes.Buffer
		fmt.Fprintf(&b, "POST / HTTP/1.1\r\nHost: upstream\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", len(s.body))
		if signed {
			fmt.Fprintf(&b, "%s: %s\r\n", intent.HeaderName, toks[i])
		}
		b.WriteString("\r\n")
		b.Write(s.body)
		out[i] = b.Bytes()
	}
	return out
}

// roundTrip writes one request and reads its whole response.
func (c *lgConn) roundTrip(req []byte) error {
	if _, err := c.c.Write(req); err != nil {
		return err
	}
	res, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", res.StatusCode)
	}
	return err
}

// closedLoop sends reqs back to back, one worker per connection, and returns the wall time.
func closedLoop(t testing.TB, conns []*lgConn, reqs [][]byte) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(reqs); i = int(next.Add(1)) - 1 {
				if err := c.roundTrip(reqs[i]); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("closed loop: %v", err)
	}
	return time.Since(start)
}

// openLoop sends reqs at rate per second on a fixed schedule and returns each request's
// latency from the time it was due to the end of its response.
func openLoop(t testing.TB, conns []*lgConn, reqs [][]byte, rate float64) []time.Duration {
	interval := time.Duration(float64(time.Second) / rate)
	lat := make([]time.Duration, len(reqs))
	due := make(chan int, len(reqs))
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range due {
				if err := c.roundTrip(reqs[i]); err != nil {
					failed.CompareAndSwap(nil, err)
				}
				lat[i] = time.Since(start.Add(time.Duration(i) * interval))
			}
		}()
	}
	// The pacer sleeps in nanosleep(2) on its own thread: time.Sleep under 1 ms rounds up
	// to the netpoller's millisecond and would send the requests in bursts.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for i := range reqs {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			ts := syscall.NsecToTimespec(int64(d))
			_ = syscall.Nanosleep(&ts, nil)
		}
		due <- i
	}
	close(due)
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("open loop: %v", err)
	}
	return lat
}

// printRuntimeStats writes the child's scheduling-latency and GC-pause quantiles to
// stderr when it exits (WARDEN_BENCH_RUNTIME_STATS=1): where a tail comes from.
func printRuntimeStats(mode string) {
	if os.Getenv("WARDEN_BENCH_RUNTIME_STATS") == "" {
		return
	}
	samples := []metrics.Sample{{Name: "/sched/latencies:seconds"}, {Name: "/sched/pauses/total/gc:seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(samples)
	q := func(h *metrics.Float64Histogram, p float64) time.Duration {
		var total uint64
		for _, c := range h.Counts {
			total += c
		}
		want := uint64(float64(total) * p)
		var acc uint64
		for i, c := range h.Counts {
			acc += c
			if acc > want {
				if math.IsInf(h.Buckets[i+1], 1) {
					return time.Duration(h.Buckets[i] * 1e9)
				}
				return time.Duration(h.Buckets[i+1] * 1e9) // the bucket's upper bound
			}
		}
		return 0
	}
	sl, gp := samples[0].Value.Float64Histogram(), samples[1].Value.Float64Histogram()
	fmt.Fprintf(os.Stderr, "%s: goroutine scheduling latency p50 %v p99 %v p99.9 %v (whole life); stop-the-world GC pauses p99 %v p99.9 %v; GC cycles %d\n",
		mode, q(sl, .5), q(sl, .99), q(sl, .999), q(gp, .99), q(gp, .999), samples[2].Value.Uint64())
}

// hiccups spins one locked thread per CPU for d on the idle machine and logs the gaps in
// which a thread that wanted a CPU did not get one (other tasks, interrupts, the
// hypervisor): the floor under any tail latency measured on this machine.
func hiccups(t testing.TB, d time.Duration) {
	type result struct {
		lost, max time.Duration
		over1ms   int
	}
	n := runtime.NumCPU()
	res := make([]result, n)
	var wg sync.WaitGroup
	for c := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			end := time.Now().Add(d)
			r := &res[c]
			for prev := time.Now(); prev.Before(end); {
				now := time.Now()
				if g := now.Sub(prev); g > 100*time.Microsecond {
					r.lost += g
					r.max = max(r.max, g)
					if g > time.Millisecond {
						r.over1ms++
					}
				}
				prev = now
			}
		}()
	}
	wg.Wait()
	for c, r := range res {
		t.Logf("hiccups, spinning thread %d of %d on the idle machine: %d gaps over 1 ms in %v, longest %v, %.2f%% of the time lost in gaps over 100 µs",
			c+1, n, r.over1ms, d, r.max.Round(10*time.Microsecond), 100*r.lost.Seconds()/d.Seconds())
	}
}

// bufferPool is the bare proxy's copy-buffer pool, the same as the gate's.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
