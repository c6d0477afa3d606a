package demo_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/proc"
)

// TestInterruptStopsEveryChild: `warden demo` interrupted as a terminal's Ctrl-C does it
// (SIGINT to the demo's process group, which its children are not in) stops every child
// it started and exits; no process mentioning its directory is left.
func TestInterruptStopsEveryChild(t *testing.T) {
	dir := t.TempDir()
	g, err := proc.New(proc.Config{LogDir: filepath.Join(dir, "outer")})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	data := filepath.Join(dir, "demo")
	p, err := g.Start("demo", []string{"demo", "--data-dir", data})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Interrupt once agents are enrolling: the server and some enroll --watch run.
	if err := p.WaitFor(ctx, 2*time.Minute, "the demo to start its agents", func() (bool, error) {
		_, err := os.Stat(filepath.Join(data, "logs", "enroll-procurement.log"))
		return err == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(processesMentioning(data)) == 0 {
		t.Fatal("no child of the demo found running")
	}
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(time.Minute):
		t.Fatalf("the demo did not exit after SIGINT:\n%s", p.Tail(20))
	}
	if exited, err := p.Exited(); !exited || err == nil {
		t.Errorf("interrupted demo exited with %v, want a non-zero status", err)
	}
	if left := processesMentioning(data); len(left) > 0 {
		t.Fatalf("children left running after the demo exited: %v", left)
	}
}

// processesMentioning lists the running (not zombie) processes whose command line
// contains s.
func processesMentioning(s string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte(s)) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join(d, "stat")); err == nil && strings.Contains(string(stat), ") Z ") {
			continue
		}
		out = append(out, filepath.Base(d)+": "+strings.ReplaceAll(string(cmd), "\x00", " "))
	}
	return out
}
