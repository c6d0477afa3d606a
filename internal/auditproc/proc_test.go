package auditproc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/cli"
	"github.com/warden-a2a/warden/internal/proc"
	"github.com/warden-a2a/warden/internal/store/storetest"
)

// TestMain runs the warden command line when the test binary is started as a child.
func TestMain(m *testing.M) {
	if proc.IsChild() {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// group returns the test's process group (children stopped when the test ends).
func group(t *testing.T) *proc.Group {
	t.Helper()
	g, err := proc.New(proc.Config{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// warden runs one warden command to completion and returns its exit code and output.
func warden(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := group(t).Run(ctx, args)
	if r.Code < 0 {
		t.Fatalf("warden %s: %v", strings.Join(args, " "), r.Err)
	}
	return r.Code, r.Stdout, r.Stderr
}

// start starts a long-running warden child (server, witness).
func start(t *testing.T, name string, args ...string) *proc.Process {
	t.Helper()
	p, err := group(t).Start(name, args)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stop stops a child gracefully (SIGTERM) and fails the test when it does not exit.
func stop(t *testing.T, p *proc.Process) {
	t.Helper()
	if err := p.Stop(); err != nil {
		t.Fatalf("stop %s: %v\n%s", p.Name, err, p.Tail(20))
	}
}

// kill9 kills a child with SIGKILL (no chance to write anything more) and waits.
func kill9(t *testing.T, p *proc.Process) {
	t.Helper()
	p.ExpectExit()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
}

// exited waits for a child to exit by itself and returns its exit code.
func exited(p *proc.Process, within time.Duration) (int, bool) {
	p.ExpectExit()
	select {
	case <-p.Done():
		_, err := p.Exited()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), true
		}
		return 0, true
	case <-time.After(within):
		return 0, false
	}
}

// waitFor polls cond for up to 60 s (a loaded 2-core machine starts processes slowly);
// a child of procs that exits meanwhile fails it at once with its log.
func waitFor(t *testing.T, what string, cond func() bool, procs ...*proc.Process) {
	t.Helper()
	ctx := context.Background()
	check := func() (bool, error) {
		for _, p := range procs {
			if done, err := p.Exited(); done {
				return false, fmt.Errorf("%s exited (%v):\n%s", p.Name, err, p.Tail(20))
			}
		}
		return cond(), nil
	}
	if err := proc.WaitFor(ctx, 60*time.Second, what, check); err != nil {
		var logs strings.Builder
		for _, p := range procs {
			fmt.Fprintf(&logs, "--- %s:\n%s\n", p.Name, p.Tail(30))
		}
		t.Fatalf("%v\n%s", err, logs.String())
	}
}

func readTrimmed(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// backend is the store a test's server uses: the SQLite file in its data dir, or a fresh
// PostgreSQL schema.
type backend struct {
	name  string
	store string // --store value ("" for the SQLite file in DATA_DIR)
	open  func(t *testing.T, dataDir string) *sql.DB
}

func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, backend{name: "sqlite", open: func(t *testing.T, dataDir string) *sql.DB {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "warden.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}})
	})
	t.Run("postgres", func(t *testing.T) {
		store := storetest.PostgresDSN(t)
		f(t, backend{name: "postgres", store: store, open: func(t *testing.T, _ string) *sql.DB {
			db, err := sql.Open("pgx", store)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}})
	})
}

// storeArgs are the --store flags of b for a command that takes them.
func (b backend) storeArgs() []string {
	if b.store == "" {
		return nil
	}
	return []string{"--store", b.store}
}

// appendEvents appends n lifecycle events to the log in b's database from this process,
// as a second writer beside the server (gates' shipped events take the same path).
func appendEvents(t *testing.T, db *sql.DB, b backend, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	var st audit.Storage
	var err error
	if b.name == "postgres" {
		st, err = audit.NewPostgres(ctx, db)
	} else {
		st, err = audit.NewSQLite(ctx, db)
	}
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, audit.Config{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	evs := make([]audit.Event, n)
	for i := range evs {
		evs[i] = audit.Event{V: 1, ID: fmt.Sprintf("%s-%d", prefix, i), Kind: audit.KindDecision, Time: time.Now(),
			WorkflowID: "wf-" + prefix, Caller: "spiffe://supplychain.example/agent/procurement",
			Callee: "spiffe://supplychain.example/agent/vendor-portal", Action: "purchase_order.create",
			Decision: audit.DecisionDeny, Reason: "replay", GateID: "spiffe://supplychain.example/gate/vendor-portal"}
	}
	if _, err := l.AppendAll(ctx, evs); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
