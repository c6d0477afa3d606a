package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/audit"
)

// The tests in proc_*_test.go run the product as an operator does: the warden binary,
// built once per test run, started as separate processes with the flags and YAML files
// of the docs.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// wardenBinary builds ./cmd/warden once into a temporary directory.
func wardenBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "warden-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "warden")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/warden-a2a/warden/cmd/warden").CombinedOutput()
		if err != nil {
			binErr = &buildError{out: string(out), err: err}
		}
	})
	if binErr != nil {
		t.Fatalf("building warden: %v", binErr)
	}
	return binPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// proc is one warden process started by a test.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error // after done
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startWarden starts `warden args...` with extra environment; it is killed (SIGTERM,
// then SIGKILL) at the end of the test, and its output is logged if the test failed.
func startWarden(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(wardenBinary(t), args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- output of %s (%s):\n%s", name, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// stop ends the process (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has ended, and its exit code.
func (p *proc) exited() (bool, int) {
	select {
	case <-p.done:
		return true, p.cmd.ProcessState.ExitCode()
	default:
		return false, 0
	}
}

// waitExit waits up to d for the process to end and returns its exit code.
func (p *proc) waitExit(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		p.t.Fatalf("%s still running after %s:\n%s", p.name, d, p.out.String())
		return 0
	}
}

// waitOutput waits up to d for the output to contain s.
func (p *proc) waitOutput(s string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.out.String(), s) {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not print %q within %s:\n%s", p.name, s, d, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runWardenProc runs a short warden command to completion and returns its output.
func runWardenProc(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, wardenBinary(t), args...).CombinedOutput()
	return string(out), err
}

func mustWarden(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runWardenProc(t, args...)
	if err != nil {
		t.Fatalf("warden %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
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
func startServerProc(t *testing.T, data, listen string, extra ...string) (*proc, string) {
	t.Helper()
	_ = os.Remove(filepath.Join(data, "admin", "server_url"))
	args := append([]string{"server", "--data-dir", data, "--listen", listen}, extra...)
	p := startWarden(t, "server", nil, args...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(data, "admin", "server_url"))
		if u := strings.TrimSpace(string(b)); u != "" {
			return p, u
		}
		if done, code := p.exited(); done {
			t.Fatalf("server exited with %d:\n%s", code, p.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tokenFor creates a join token for entry with the CLI.
func tokenFor(t *testing.T, data, entry string) string {
	t.Helper()
	return strings.SplitN(mustWarden(t, "token", "create", "--data-dir", data, "--entry", entry), "\n", 2)[0]
}

// auditDecisions reads the decision events of the control plane's audit log with
// `warden audit tail --json`.
func auditDecisions(t *testing.T, data string) []audit.Event {
	t.Helper()
	out := mustWarden(t, "audit", "tail", "--data-dir", data, "--kind", "decision", "--json", "-n", "100000")
	var evs []audit.Event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var ev audit.Event
		if err := json.Unmarshal([]byte(line), &ev); err == nil {
			evs = append(evs, ev)
		}
	}
	return evs
}
