// Package proc runs Warden's own commands as child processes — the control plane, gates,
// `warden enroll --watch` and one-shot CLI commands — the way an operator runs them. It
// serves `warden demo` and the process-level end-to-end tests (e2e/).
//
// Every child is the running executable itself (os.Executable) with the environment
// variable EnvChild set: the warden binary ignores it, and a test binary acts as the
// warden binary when its TestMain starts with
//
//	if proc.IsChild() {
//		os.Exit(cli.Main(os.Args[1:]))
//	}
//
// so `go test` needs no prior `go build`. Each child runs in its own process group, so a
// Ctrl-C at the terminal reaches only the parent, which stops every child (SIGTERM to the
// group, SIGKILL after a grace period) when its Group is closed; on Linux a child is also
// killed when the parent dies. A long-running child's stdout and stderr go to
// LogDir/NAME.log (appended across restarts, each start under a header line).
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// EnvChild is set in the environment of every child a Group starts.
const EnvChild = "WARDEN_PROC_CHILD"

// IsChild reports whether this process was started by a Group and must act as the warden
// command line (see the package comment).
func IsChild() bool { return os.Getenv(EnvChild) == "1" }

// StopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const StopGrace = 10 * time.Second

// Config configures a Group.
type Config struct {
	// Exe is the warden executable; default os.Executable().
	Exe string
	// LogDir receives NAME.log for every long-running child (created if absent).
	LogDir string
	// Dir is the children's working directory; default the parent's.
	Dir string
	// Env is added to every child's environment (KEY=VALUE).
	Env []string
	// Show rewrites each argument for the displayed command line (e.g. an absolute data
	// directory to "$DIR"); default: unchanged.
	Show func(arg string) string
}

// Group is a set of child processes started from one executable. Its methods are safe
// for concurrent use.
type Group struct {
	cfg Config

	mu     sync.Mutex
	procs  []*Process
	closed bool
}

// New returns a Group; it starts nothing yet.
func New(cfg Config) (*Group, error) {
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("proc: %w", err)
		}
		cfg.Exe = exe
	}
	if cfg.LogDir == "" {
		return nil, errors.New("proc: Config.LogDir is required")
	}
	if err := os.MkdirAll(cfg.LogDir, 0o700); err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	if cfg.Show == nil {
		cfg.Show = func(s string) string { return s }
	}
	return &Group{cfg: cfg}, nil
}

// Show renders "warden ARGS" as a shell command line, arguments quoted where needed.
func (g *Group) Show(args ...string) string {
	parts := []string{"warden"}
	for _, a := range args {
		parts = append(parts, shellQuote(g.cfg.Show(a)))
	}
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe characters; a
// leading $VAR stays outside the quotes so it still expands.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+$", r)
	}
	if strings.IndexFunc(s, func(r rune) bool { return !safe(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// prepare sets what every child shares: directory, environment, its own process group
// (a terminal's Ctrl-C reaches only the parent) and, on Linux, death with the parent.
func (g *Group) prepare(cmd *exec.Cmd, env []string) *exec.Cmd {
	cmd.Dir = g.cfg.Dir
	cmd.Env = append(append(append(os.Environ(), EnvChild+"=1"), g.cfg.Env...), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// killGroup signals the process group led by pid.
func killGroup(pid int, sig syscall.Signal) error { return syscall.Kill(-pid, sig) }

// Result is what a one-shot command left behind.
type Result struct {
	Command string // as shown: warden ARGS
	Stdout  string
	Stderr  string
	Code    int   // exit status; -1 when it did not run to an exit
	Err     error // nil when Code is 0; names the command and its last stderr line otherwise
}

// Message is the command's own error message: its last non-empty stderr line without the
// "warden: " prefix, or Err's text when it wrote none.
func (r Result) Message() string {
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		return strings.TrimPrefix(last, "warden: ")
	}
	if r.Err != nil {
		return r.Err.Error()
	}
	return ""
}

// Run runs `warden ARGS` to completion (or until ctx ends, which kills it) with env added
// to its environment, and returns its output. env is not shown in Result.Command.
func (g *Group) Run(ctx context.Context, args []string, env ...string) Result {
	res := Result{Command: g.Show(args...), Code: -1}
	cmd := g.prepare(exec.CommandContext(ctx, g.cfg.Exe, args...), env)
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.Code = 0
	case errors.As(err, &ee) && ee.Exited():
		res.Code = ee.ExitCode()
		res.Err = fmt.Errorf("%s: exit status %d: %s", res.Command, res.Code, res.Message())
	default:
		res.Err = fmt.Errorf("%s: %w", res.Command, err)
	}
	return res
}

// Process is a long-running child.
type Process struct {
	Name    string
	Command string // as shown
	g       *Group
	args    []string
	env     []string

	mu       sync.Mutex
	cmd      *exec.Cmd
	logFile  *os.File
	logStart int64 // offset of this start's output in the log
	done     chan struct{}
	waitErr  error
	stopping bool // Stop was called: the exit is ours
	expected bool // ExpectExit: an exit of its own is part of the story
}

// Start starts `warden ARGS` as the long-running child name, output to LogDir/name.log.
func (g *Group) Start(name string, args []string, env ...string) (*Process, error) {
	p := &Process{Name: name, Command: g.Show(args...), g: g, args: args, env: env}
	if err := p.start(); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		_ = p.Stop()
		return nil, errors.New("proc: group closed")
	}
	g.procs = append(g.procs, p)
	return p, nil
}

// LogPath is the child's log file.
func (p *Process) LogPath() string { return filepath.Join(p.g.cfg.LogDir, p.Name+".log") }

func (p *Process) start() error {
	f, err := os.OpenFile(p.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("proc: %w", err)
	}
	off, _ := f.Seek(0, io.SeekEnd)
	fmt.Fprintf(f, "=== %s  $ %s\n", time.Now().UTC().Format(time.RFC3339Nano), p.Command)
	cmd := p.g.prepare(exec.Command(p.g.cfg.Exe, p.args...), p.env)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("proc: start %s: %w", p.Name, err)
	}
	p.mu.Lock()
	p.cmd, p.logFile, p.logStart, p.done, p.waitErr, p.stopping = cmd, f, off, make(chan struct{}), nil, false
	done := p.done
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		fmt.Fprintf(f, "=== %s  exited: %v\n", time.Now().UTC().Format(time.RFC3339Nano), exitText(err))
		f.Close()
		close(done)
	}()
	return nil
}

func exitText(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

// Pid is the child's process id (its process group id too).
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Done is closed when the current run of the child has exited.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Exited reports whether the child has exited, and how (nil: status 0).
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.Done():
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.waitErr
	default:
		return false, nil
	}
}

// ExpectExit marks an exit of the child's own as part of the story (a revoked agent's
// `enroll --watch` exits non-zero): Failed no longer reports it.
func (p *Process) ExpectExit() {
	p.mu.Lock()
	p.expected = true
	p.mu.Unlock()
}

// Signal sends sig to the child's process group.
func (p *Process) Signal(sig syscall.Signal) error {
	return killGroup(p.Pid(), sig)
}

// Stop ends the child: SIGTERM to its process group, SIGKILL after StopGrace; it waits
// for the exit, then SIGKILLs what is left of the group (also when the child had already
// exited).
func (p *Process) Stop() error {
	p.mu.Lock()
	p.stopping = true
	pid, done := p.cmd.Process.Pid, p.done
	p.mu.Unlock()
	select {
	case <-done:
		_ = killGroup(pid, syscall.SIGKILL) // leftovers of a child that exited on its own
		return nil
	default:
	}
	_ = killGroup(pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(StopGrace):
		_ = killGroup(pid, syscall.SIGKILL)
		<-done
	}
	// Whatever the child left in its group (a grandchild that ignored SIGTERM) goes too.
	_ = killGroup(pid, syscall.SIGKILL)
	return nil
}

// Restart stops the child (if running) and starts it again with the same command; the
// log goes on in the same file.
func (p *Process) Restart() error {
	if err := p.Stop(); err != nil {
		return err
	}
	return p.start()
}

// Log returns what the child wrote in its current run.
func (p *Process) Log() string {
	p.mu.Lock()
	start := p.logStart
	p.mu.Unlock()
	b, err := os.ReadFile(p.LogPath())
	if err != nil || int64(len(b)) < start {
		return ""
	}
	return string(b[start:])
}

// Tail returns the last n lines of the child's log (all runs).
func (p *Process) Tail(n int) string { return TailFile(p.LogPath(), n) }

// TailFile returns the last n lines of a file (reading at most its last 64 KiB).
func TailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitLog waits until the child's current run has written substr, and fails when the
// child exits first (with its last log lines) or timeout passes.
func (p *Process) WaitLog(ctx context.Context, timeout time.Duration, substr string) error {
	return p.WaitFor(ctx, timeout, fmt.Sprintf("%s to log %q", p.Name, substr), func() (bool, error) {
		return strings.Contains(p.Log(), substr), nil
	})
}

// WaitFor is the package's WaitFor that also fails, with the child's last log lines, as
// soon as the child exits.
func (p *Process) WaitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	return WaitFor(ctx, timeout, what, func() (bool, error) {
		ok, err := cond()
		if ok || err != nil {
			return ok, err
		}
		if exited, werr := p.Exited(); exited {
			return false, fmt.Errorf("%s exited (%s) while waiting for %s; last lines of %s:\n%s", p.Name, exitText(werr), what, p.LogPath(), p.Tail(15))
		}
		return false, nil
	})
}

// Failed returns the children that exited on their own (not stopped by Stop or Close)
// without ExpectExit, for reporting.
func (g *Group) Failed() []*Process {
	g.mu.Lock()
	procs := append([]*Process(nil), g.procs...)
	g.mu.Unlock()
	var out []*Process
	for _, p := range procs {
		exited, _ := p.Exited()
		p.mu.Lock()
		own := exited && !p.stopping && !p.expected
		p.mu.Unlock()
		if own {
			out = append(out, p)
		}
	}
	return out
}

// Processes returns every long-running child started so far.
func (g *Group) Processes() []*Process {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*Process(nil), g.procs...)
}

// Close stops every child still running, newest first, and refuses new ones.
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	procs := append([]*Process(nil), g.procs...)
	g.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		_ = procs[i].Stop()
	}
}

// WaitFor calls cond every 50 ms (backing off to 500 ms) until it returns true, an
// error, ctx ends or timeout passes; the error then names what was awaited. Use
// generous timeouts: the condition, not the timeout, is what makes a wait short.
func WaitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	interval := 50 * time.Millisecond
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
		interval = min(interval*3/2, 500*time.Millisecond)
	}
}
