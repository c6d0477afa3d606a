package audit_test

import (
	"bufio"
	"context"
	"fmt"
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

const crashChildEnv = "WARDEN_AUDIT_CRASH_CHILD"

// TestCrashChild is the child process of TestKill9LosesNoAcknowledgedEvent: it appends
// from many goroutines and prints "ack <id>" after each Append returned, until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("child process of TestKill9LosesNoAcknowledgedEvent")
	}
	ctx := context.Background()
	db := openSQLiteDB(t, filepath.Join(dir, "warden.db"))
	st, err := audit.NewSQLite(ctx, db)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	signer, _, err := audit.LoadOrCreateKeys(filepath.Join(dir, "audit"), audit.NoteName("example.org"))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	l, err := audit.Open(ctx, audit.Config{Storage: st, Signer: signer, CheckpointInterval: 20 * time.Millisecond})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := os.Stdout
	run := fmt.Sprintf("p%d", os.Getpid())
	fmt.Fprintln(out, "ready")
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				ev := decisionEvent(i)
				ev.ID = fmt.Sprintf("%s-w%d-%d", run, w, i)
				if _, err := l.Append(ctx, ev); err != nil {
					fmt.Fprintln(out, "error", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintln(out, "ack", ev.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestKill9LosesNoAcknowledgedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	var acked []string
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		got := 0
		deadline := time.Now().Add(20 * time.Second)
		killed := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "ack "):
				acked = append(acked, strings.TrimPrefix(line, "ack "))
				got++
			case strings.HasPrefix(line, "error"):
				t.Fatalf("child: %s", line)
			}
			// Kill in the middle of heavy appending, at a different point each round.
			if !killed && (got >= 2000+1500*round || time.Now().After(deadline)) {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true // keep reading: lines already written were acknowledged
			}
		}
		cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child exited by itself after %d acks", round, got)
		}
		t.Logf("round %d: %d acknowledged appends before SIGKILL", round, got)

		// Reopen like a restarted server: every acknowledged event is there, log verifies.
		ctx := context.Background()
		db := openSQLiteDB(t, filepath.Join(dir, "warden.db"))
		st, err := audit.NewSQLite(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range acked {
			if _, err := st.Lookup(ctx, id); err != nil {
				t.Fatalf("round %d: acknowledged event %s lost: %v", round, id, err)
			}
		}
		v, err := audit.LoadVerifier(filepath.Join(dir, "audit", audit.VerifierKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(ctx, st, v)
		if err != nil {
			t.Fatalf("round %d: verify after kill -9: %v", round, err)
		}
		if rep.Size < int64(len(acked)) || rep.Checkpoints == 0 {
			t.Fatalf("round %d: %d records, %d checkpoints; %d acknowledged", round, rep.Size, rep.Checkpoints, len(acked))
		}
		db.Close()
	}
}
