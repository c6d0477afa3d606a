package cli

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/proc"
)

// The tests in proc_*_test.go run the product as an operator does: warden commands as
// separate processes (internal/proc: this test binary acts as the warden binary in its
// children, see TestMain) with the flags and YAML files of the docs.

func TestMain(m *testing.M) {
	if proc.IsChild() {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// procs returns the test's process group; every child is stopped at the end of the test
// and, if the test failed, its log is printed.
func procs(t *testing.T) *proc.Group {
	t.Helper()
	g, err := proc.New(proc.Config{LogDir: filepath.Join(t.TempDir(), "logs")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Close()
		if t.Failed() {
			for _, p := range g.Processes() {
				t.Logf("--- %s ($ %s), last lines:\n%s", p.Name, p.Command, p.Tail(40))
			}
		}
	})
	return g
}

// mustWarden runs a short warden command to completion and returns its stdout.
func mustWarden(t *testing.T, g *proc.Group, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := g.Run(ctx, args)
	if r.Err != nil {
		t.Fatalf("%v\n%s", r.Err, r.Stderr)
	}
	return r.Stdout
}

// startWarden starts a long-running warden command.
func startWarden(t *testing.T, g *proc.Group, name string, env []string, args ...string) *proc.Process {
	t.Helper()
	p, err := g.Start(name, args, env...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitLog(t *testing.T, p *proc.Process, substr string, d time.Duration) {
	t.Helper()
	if err := p.WaitLog(context.Background(), d, substr); err != nil {
		t.Fatal(err)
	}
}

// waitExit waits up to d for p to exit on its own and returns its exit code.
func waitExit(t *testing.T, p *proc.Process, d time.Duration) int {
	t.Helper()
	p.ExpectExit()
	select {
	case <-p.Done():
	case <-time.After(d):
		t.Fatalf("%s still running after %s:\n%s", p.Name, d, p.Tail(20))
	}
	_, err := p.Exited()
	if err == nil {
		return 0
	}
	if ee, ok := err.(interface{ ExitCode() int }); ok {
		return ee.ExitCode()
	}
	return -1
}

// freePort returns a loopback address that was free a moment ago (for a process that
// must come back on the same address after a restart).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServerProc starts `warden server` on listen with data dir data and returns it
// with its URL once it serves.
func startServerProc(t *testing.T, g *proc.Group, data, listen string, extra ...string) (*proc.Process, string) {
	t.Helper()
	_ = os.Remove(filepath.Join(data, "admin", "server_url"))
	p := startWarden(t, g, "server", nil, append([]string{"server", "--data-dir", data, "--listen", listen}, extra...)...)
	var url string
	err := p.WaitFor(context.Background(), 60*time.Second, "the server to write server_url", func() (bool, error) {
		b, _ := os.ReadFile(filepath.Join(data, "admin", "server_url"))
		url = strings.TrimSpace(string(b))
		return url != "", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, url
}

// tokenFor creates a join token for entry with the CLI.
func tokenFor(t *testing.T, g *proc.Group, data, entry string) string {
	t.Helper()
	return strings.SplitN(mustWarden(t, g, "token", "create", "--data-dir", data, "--entry", entry), "\n", 2)[0]
}

// auditDecisions reads the decision events of the control plane's audit log with
// `warden audit tail --json`.
func auditDecisions(t *testing.T, g *proc.Group, data string) []audit.Event {
	t.Helper()
	out := mustWarden(t, g, "audit", "tail", "--data-dir", data, "--kind", "decision", "--json", "-n", "100000")
	var evs []audit.Event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev audit.Event
		if line != "" && json.Unmarshal([]byte(line), &ev) == nil {
			evs = append(evs, ev)
		}
	}
	return evs
}
