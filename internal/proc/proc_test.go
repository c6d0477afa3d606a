package proc_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/proc"
)

// TestMain makes the test binary a small stand-in for the warden command line when a
// Group starts it, so these tests exercise real child processes.
func TestMain(m *testing.M) {
	if proc.IsChild() {
		os.Exit(fakeCLI(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeCLI(args []string) int {
	switch args[0] {
	case "echo":
		fmt.Println(strings.Join(args[1:], " "))
		fmt.Fprintln(os.Stderr, "to stderr")
		return 0
	case "fail":
		fmt.Fprintln(os.Stderr, "warden: token_used: join token was already used")
		return 3
	case "serve": // a long-running child: says it is ready, then waits for SIGTERM
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		fmt.Println("ready")
		<-sig
		fmt.Println("stopping")
		return 0
	case "stubborn": // ignores SIGTERM
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	case "parent": // starts a grandchild that sleeps, prints its pid, and waits
		c := exec.Command(os.Args[0], "stubborn")
		c.Env = os.Environ()
		if err := c.Start(); err != nil {
			return 1
		}
		fmt.Println("grandchild", c.Process.Pid)
		_ = c.Wait()
		return 0
	case "crash":
		fmt.Println("line 1")
		fmt.Println("fatal: cannot listen")
		return 2
	}
	return 64
}

func newGroup(t *testing.T) *proc.Group {
	t.Helper()
	dir := t.TempDir()
	g, err := proc.New(proc.Config{LogDir: dir + "/logs", Show: func(s string) string { return strings.ReplaceAll(s, dir, "$DIR") }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

func TestRunCapturesOutputAndExitCode(t *testing.T) {
	g := newGroup(t)
	r := g.Run(context.Background(), []string{"echo", "hello world"})
	if r.Code != 0 || r.Err != nil || r.Stdout != "hello world\n" || r.Stderr != "to stderr\n" {
		t.Fatalf("echo: %+v", r)
	}
	if r.Command != "warden echo 'hello world'" {
		t.Errorf("shown as %q", r.Command)
	}
	r = g.Run(context.Background(), []string{"fail"})
	if r.Code != 3 || r.Err == nil || r.Message() != "token_used: join token was already used" {
		t.Fatalf("fail: code %d, err %v, message %q", r.Code, r.Err, r.Message())
	}
}

func TestStartLogsAndStops(t *testing.T) {
	g := newGroup(t)
	p, err := g.Start("server", []string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitLog(context.Background(), 30*time.Second, "ready"); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if exited, err := p.Exited(); !exited || err != nil {
		t.Fatalf("after Stop: exited %v, %v", exited, err)
	}
	if got := p.Tail(5); !strings.Contains(got, "stopping") || !strings.Contains(got, "exited: status 0") {
		t.Errorf("log tail:\n%s", got)
	}
	if len(g.Failed()) != 0 {
		t.Errorf("a stopped child is reported as failed")
	}
	// A restart appends to the same log; Log holds only the new run.
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitLog(context.Background(), 30*time.Second, "ready"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(p.Log(), "stopping") {
		t.Errorf("Log after restart holds the previous run:\n%s", p.Log())
	}
}

// TestWaitFailsFastWhenTheChildExits: a wait on a child that died ends at once with its
// last log lines, not at the timeout.
func TestWaitFailsFastWhenTheChildExits(t *testing.T) {
	g := newGroup(t)
	p, err := g.Start("gate-x", []string{"crash"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = p.WaitLog(context.Background(), time.Hour, "serving")
	if err == nil || !strings.Contains(err.Error(), "fatal: cannot listen") || !strings.Contains(err.Error(), "gate-x exited") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
	if f := g.Failed(); len(f) != 1 || f[0] != p {
		t.Errorf("Failed() = %v", f)
	}
	p.ExpectExit()
	if len(g.Failed()) != 0 {
		t.Errorf("an expected exit is reported as failed")
	}
}

// TestCloseKillsTheWholeProcessGroup: a grandchild that ignores SIGTERM is gone after
// Close (SIGKILL to the group after the grace period).
func TestCloseKillsTheWholeProcessGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the SIGKILL grace period")
	}
	g := newGroup(t)
	p, err := g.Start("parent", []string{"parent"})
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	err = p.WaitFor(context.Background(), 30*time.Second, "the grandchild's pid", func() (bool, error) {
		for _, l := range strings.Split(p.Log(), "\n") {
			if s, ok := strings.CutPrefix(l, "grandchild "); ok {
				pid, _ = strconv.Atoi(s)
			}
		}
		return pid > 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	// Gone, or a zombie waiting for a reaper: either way no longer running.
	if err := proc.WaitFor(context.Background(), 10*time.Second, "the grandchild to go", func() (bool, error) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(b), ") Z "), nil
	}); err != nil {
		t.Fatalf("grandchild %d survived Close", pid)
	}
	if _, err := g.Start("late", []string{"serve"}); err == nil {
		t.Error("Start after Close succeeded")
	}
}
