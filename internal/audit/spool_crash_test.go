package audit_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/warden-a2a/warden/internal/audit"
)

const spoolChildEnv = "WARDEN_AUDIT_SPOOL_CHILD"

// TestSpoolCrashChild is the child of TestSpoolKill9KeepsSyncedEvents: 16 goroutines
// append with Sync durability and print "ack <id>" after each Append returned.
func TestSpoolCrashChild(t *testing.T) {
	dir := os.Getenv(spoolChildEnv)
	if dir == "" {
		t.Skip("child process of TestSpoolKill9KeepsSyncedEvents")
	}
	sp, err := audit.OpenSpool(audit.SpoolConfig{Dir: dir, SegmentSize: 64 << 10})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	run := fmt.Sprintf("p%d", os.Getpid())
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				ev := decisionEvent(i)
				ev.ID = fmt.Sprintf("%s-w%d-%d", run, w, i)
				if err := sp.Append(context.Background(), ev, audit.Sync); err != nil {
					fmt.Println("error", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Println("ack", ev.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestSpoolKill9KeepsSyncedEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	var acked []string
	for round := 0; round < 2; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), spoolChildEnv+"="+dir)
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		killed := false
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "error") {
				t.Fatalf("child: %s", line)
			}
			if id, ok := strings.CutPrefix(line, "ack "); ok {
				acked = append(acked, id)
			}
			if !killed && len(acked) >= 3000*(round+1) {
				cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		cmd.Wait()
		if !killed {
			t.Fatal("child exited by itself")
		}
	}
	// Reopen like a restarted gate and ship everything: every acknowledged event is there.
	sp, err := audit.OpenSpool(audit.SpoolConfig{Dir: dir, SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	sink := &collectSink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sp.Run(ctx, sink); close(done) }()
	waitFor(t, "spool drained", func() bool { return sp.Depth() == 0 })
	cancel()
	<-done
	have := map[string]bool{}
	for _, p := range sink.got {
		ev, err := audit.ParseEvent(p)
		if err != nil {
			t.Fatalf("spooled event does not parse: %v", err)
		}
		have[ev.ID] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("acknowledged Sync event %s lost after kill -9 (%d acked, %d recovered)", id, len(acked), len(have))
		}
	}
}
