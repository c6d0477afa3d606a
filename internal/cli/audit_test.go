package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/audit"
)

// run executes the command line and returns its exit code and standard output.
func runAudit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code := 0
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	} else if err != nil {
		code = 1
	}
	return code, out.String()
}

// makeLog writes n events with checkpoints into dataDir the way the server would.
func makeLog(t *testing.T, dataDir string, n int) *sql.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "warden.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := audit.NewSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := audit.LoadOrCreateKeys(filepath.Join(dataDir, "audit"), audit.NoteName("example.org"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, audit.Config{Storage: st, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < n; i++ {
		ev := audit.Event{V: 1, ID: fmt.Sprintf("d%d", i), Kind: audit.KindDecision,
			Time: time.Unix(1_800_000_000+int64(i), 0), WorkflowID: fmt.Sprintf("wf-%d", i%3),
			Caller: "spiffe://example.org/agent/procurement", Callee: "spiffe://example.org/agent/erp",
			Action: "purchase_order.create", Decision: audit.DecisionAllow, DeterminingPolicies: []string{"p1"}}
		if i%4 == 0 {
			ev.Decision, ev.Reason, ev.DeterminingPolicies = audit.DecisionDeny, "replay", nil
		}
		if _, err := l.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			if _, err := l.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return db
}

func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	db := makeLog(t, dir, 40)
	if code, out := runAudit(t, "audit", "verify", "--data-dir", dir); code != 0 || !strings.HasPrefix(out, "OK: 40 events, 4 checkpoints") {
		t.Fatalf("intact log: exit %d, %q", code, out)
	}
	if _, err := db.Exec("UPDATE audit_records SET data = CAST(REPLACE(CAST(data AS TEXT), 'erp', 'eRp') AS BLOB) WHERE idx = 23"); err != nil {
		t.Fatal(err)
	}
	code, out := runAudit(t, "audit", "verify", "--data-dir", dir)
	if code != 1 || !strings.Contains(out, "first bad index 23") {
		t.Fatalf("tampered log: exit %d, %q", code, out)
	}
}

func TestAuditVerifyWithoutVerifierKeyFailsClosed(t *testing.T) {
	dir := t.TempDir()
	makeLog(t, dir, 3)
	if code, _ := runAudit(t, "audit", "verify", "--data-dir", dir, "--verifier-key", filepath.Join(dir, "nope")); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if code, _ := runAudit(t, "audit", "verify", "--data-dir", t.TempDir()); code != 1 {
		t.Fatalf("missing database: exit %d, want 1", code)
	}
}

func TestAuditProofTailExportCommands(t *testing.T) {
	dir := t.TempDir()
	makeLog(t, dir, 25)
	code, out := runAudit(t, "audit", "proof", "--data-dir", dir, "--id", "d21")
	if code != 0 || !strings.Contains(out, `"index": 21`) || !strings.Contains(out, `"tree_size": 25`) {
		t.Fatalf("proof: exit %d, %s", code, out)
	}
	if code, _ := runAudit(t, "audit", "proof", "--data-dir", dir, "--id", "missing"); code != 1 {
		t.Fatalf("proof of unknown id: exit %d", code)
	}
	code, out = runAudit(t, "audit", "tail", "--data-dir", dir, "--workflow", "wf-0", "--decision", "deny")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// i%3 == 0 and i%4 == 0 for i < 25: 0, 12, 24.
	if code != 0 || len(lines) != 3 || !strings.Contains(lines[2], "id=d24") || !strings.Contains(lines[2], "replay") {
		t.Fatalf("tail: exit %d, %q", code, out)
	}
	code, out = runAudit(t, "audit", "export", "--data-dir", dir, "--format", "jsonl")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 25 || !strings.HasPrefix(lines[0], `{"v":1,"id":"d0"`) {
		t.Fatalf("export: exit %d, %d lines", code, len(lines))
	}
	if code, _ := runAudit(t, "audit", "export", "--data-dir", dir, "--format", "csv"); code != 1 {
		t.Fatal("unsupported format accepted")
	}
}

func TestAuditVerifyCommandOnPostgres(t *testing.T) {
	dsn := os.Getenv("WARDEN_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("WARDEN_TEST_POSTGRES is not set; skipping `audit verify --store`")
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := fmt.Sprintf("audit_cli_test_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec("DROP SCHEMA " + schema + " CASCADE")
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	store := dsn + sep + "search_path=" + schema
	db, err := sql.Open("pgx", store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := audit.NewPostgres(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	signer, _, err := audit.LoadOrCreateKeys(filepath.Join(dir, "audit"), audit.NoteName("example.org"))
	if err != nil {
		t.Fatal(err)
	}
	l, _ := audit.Open(ctx, audit.Config{Storage: st, Signer: signer})
	for i := 0; i < 12; i++ {
		ev := audit.Event{V: 1, ID: fmt.Sprintf("e%d", i), Kind: audit.KindKillSwitch, Time: time.Unix(1_800_000_000, 0),
			Subject: "payments", Actor: "operator:alice", Outcome: "engaged"}
		if _, err := l.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	l.Checkpoint(ctx)
	l.Close()
	if code, out := runAudit(t, "audit", "verify", "--store", store, "--data-dir", dir); code != 0 || !strings.HasPrefix(out, "OK: 12 events") {
		t.Fatalf("exit %d, %q", code, out)
	}
	db.Exec("DELETE FROM audit_records WHERE idx = 5")
	if code, out := runAudit(t, "audit", "verify", "--store", store, "--data-dir", dir); code != 1 || !strings.Contains(out, "first bad index 5") {
		t.Fatalf("after deleting record 5: exit %d, %q", code, out)
	}
}

func TestAuditExportOTLP(t *testing.T) {
	dir := t.TempDir()
	makeLog(t, dir, 10)
	var mu sync.Mutex
	records := 0
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ResourceLogs []struct {
				ScopeLogs []struct {
					LogRecords []json.RawMessage `json:"logRecords"`
				} `json:"scopeLogs"`
			} `json:"resourceLogs"`
		}
		if r.URL.Path != "/v1/logs" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", 400)
			return
		}
		mu.Lock()
		records += len(req.ResourceLogs[0].ScopeLogs[0].LogRecords)
		mu.Unlock()
	}))
	defer col.Close()
	if code, out := runAudit(t, "audit", "export", "--data-dir", dir, "--format", "otlp", "--endpoint", col.URL); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if records != 10 {
		t.Errorf("collector received %d log records, want 10", records)
	}
	if code, _ := runAudit(t, "audit", "export", "--data-dir", dir, "--format", "otlp"); code != 1 {
		t.Error("otlp without an endpoint accepted")
	}
}
