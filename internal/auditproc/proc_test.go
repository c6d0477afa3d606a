package auditproc

import (
	"bytes"
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
)

const childEnv = "WARDEN_AUDITPROC_CHILD"

// TestMain runs the warden command line when the test binary is started as a child.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// warden runs one warden command to completion and returns its exit code and output.
func warden(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("warden %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errOut.String()
}

// proc is a long-running warden child process (server, witness).
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  string // file with its stderr
	done chan error
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p := &proc{t: t, name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.kill() })
	return p
}

// stop sends SIGTERM and waits for a graceful exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		p.done <- nil // for kill in cleanup
	case <-time.After(60 * time.Second):
		p.t.Fatalf("%s did not stop within 60 s:\n%s", p.name, p.output())
	}
}

// kill sends SIGKILL (no chance to write anything more) and waits.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil
}

// exited waits for the process to exit by itself and returns its exit code.
func (p *proc) exited(within time.Duration) (int, bool) {
	select {
	case err := <-p.done:
		p.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), true
		}
		return 0, true
	case <-time.After(within):
		return 0, false
	}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// waitFor polls cond every 50 ms for up to 60 s (a loaded 2-core machine starts
// processes slowly).
func waitFor(t *testing.T, what string, cond func() bool, procs ...*proc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, p := range procs {
				fmt.Fprintf(&logs, "--- %s:\n%s\n", p.name, p.output())
			}
			t.Fatalf("timed out waiting for %s\n%s", what, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
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
		dsn := os.Getenv("WARDEN_TEST_POSTGRES")
		if dsn == "" {
			t.Skip("WARDEN_TEST_POSTGRES is not set; skipping the PostgreSQL backend")
		}
		admin, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		schema := fmt.Sprintf("auditproc_%d", time.Now().UnixNano())
		if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if a, err := sql.Open("pgx", dsn); err == nil {
				a.Exec("DROP SCHEMA " + schema + " CASCADE")
				a.Close()
			}
		})
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		store := dsn + sep + "search_path=" + schema
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
