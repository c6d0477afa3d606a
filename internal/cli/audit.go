package cli

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
	_ "modernc.org/sqlite" // driver "sqlite"

	"github.com/warden-a2a/warden/internal/audit"
)

// auditFlags are shared by the audit subcommands.
type auditFlags struct {
	dataDir      string
	store        string
	verifierKeys []string
}

func (f *auditFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "./warden-data", "data directory (SQLite file warden.db, keys under audit/)")
	cmd.Flags().StringVar(&f.store, "store", "", "PostgreSQL DSN (postgres://...) instead of the SQLite file in --data-dir")
	cmd.Flags().StringArrayVar(&f.verifierKeys, "verifier-key", nil, "checkpoint verifier key file (default DATA_DIR/audit/verifier.key; repeatable: every key is trusted)")
}

// open opens the audit storage read from the flags; the caller closes db.
func (f *auditFlags) open(ctx context.Context) (audit.Storage, *sql.DB, error) {
	if f.store != "" {
		if !strings.HasPrefix(f.store, "postgres://") && !strings.HasPrefix(f.store, "postgresql://") {
			return nil, nil, errors.New("--store must be a postgres:// DSN")
		}
		db, err := sql.Open("pgx", f.store)
		if err != nil {
			return nil, nil, err
		}
		st, err := audit.NewPostgres(ctx, db)
		if err != nil {
			db.Close()
			return nil, nil, err
		}
		return st, db, nil
	}
	path := filepath.Join(f.dataDir, "warden.db")
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("no database at %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, nil, err
	}
	st, err := audit.NewSQLite(ctx, db)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return st, db, nil
}

func (f *auditFlags) verifier() (note.Verifier, error) {
	vs, err := f.verifiers()
	if err != nil {
		return nil, err
	}
	return vs[0], nil
}

// verifiers loads every --verifier-key (default DATA_DIR/audit/verifier.key).
func (f *auditFlags) verifiers() ([]note.Verifier, error) {
	paths := f.verifierKeys
	if len(paths) == 0 {
		paths = []string{filepath.Join(f.dataDir, "audit", audit.VerifierKeyFile)}
	}
	var out []note.Verifier
	for _, p := range paths {
		v, err := audit.LoadVerifier(p)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, prove, show, tail and export the tamper-evident audit log",
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditProofCmd(), newAuditShowCmd(), newAuditTailCmd(), newAuditExportCmd(),
		newAuditKeysCmd(), newAuditSearchCmd())
	return cmd
}

func newAuditProofCmd() *cobra.Command {
	var f auditFlags
	var id string
	cmd := &cobra.Command{
		Use:   "proof --id ID",
		Short: "Print an inclusion proof of one event against the latest signed checkpoint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return exitCode(1, errors.New("--id is required"))
			}
			st, db, err := f.open(cmd.Context())
			if err != nil {
				return exitCode(1, err)
			}
			defer db.Close()
			cfg := audit.Config{Storage: st}
			// With the signer key at hand, sign a checkpoint when none covers the event yet.
			if s, _, err := audit.LoadKeys(filepath.Join(f.dataDir, "audit")); err == nil {
				cfg.Signer = s
			}
			l, err := audit.Open(cmd.Context(), cfg)
			if err != nil {
				return exitCode(1, err)
			}
			defer l.Close()
			p, err := l.Proof(cmd.Context(), id)
			if err != nil {
				return exitCode(1, err)
			}
			if v, err := f.verifier(); err == nil {
				if err := audit.VerifyInclusion(p, v); err != nil {
					return exitCode(1, fmt.Errorf("proof does not verify: %w", err))
				}
			}
			out := struct {
				audit.InclusionProof
				Event json.RawMessage `json:"event"`
			}{p, p.Event}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&id, "id", "", "event (decision) id")
	return cmd
}

func newAuditTailCmd() *cobra.Command {
	var f auditFlags
	var filter audit.Filter
	var kind string
	var follow, asJSON bool
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the newest audit events, optionally filtered",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter.Kind = audit.Kind(kind)
			if filter.Decision != "" && filter.Decision != audit.DecisionAllow && filter.Decision != audit.DecisionDeny {
				return exitCode(1, fmt.Errorf("--decision must be allow or deny"))
			}
			st, db, err := f.open(cmd.Context())
			if err != nil {
				return exitCode(1, err)
			}
			defer db.Close()
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			next := int64(0)
			for {
				recs, err := st.Query(cmd.Context(), filter)
				if err != nil {
					return exitCode(1, err)
				}
				for _, r := range recs {
					printRecord(w, r, asJSON)
					next = r.Index + 1
				}
				w.Flush()
				if !follow {
					return nil
				}
				if next > filter.Since {
					filter.Since = next
				}
				filter.Limit = 10000
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&filter.Workflow, "workflow", "", "only this workflow id")
	cmd.Flags().StringVar(&filter.Agent, "agent", "", "only events with this SPIFFE ID as caller, callee or subject")
	cmd.Flags().StringVar(&filter.Decision, "decision", "", "only allow or deny decisions")
	cmd.Flags().StringVar(&kind, "kind", "", "only this event kind (decision, enrollment, revocation, ...)")
	cmd.Flags().IntVarP(&filter.Limit, "lines", "n", 20, "how many of the newest events")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the canonical event JSON")
	return cmd
}

func printRecord(w io.Writer, r audit.Record, asJSON bool) {
	if asJSON {
		fmt.Fprintf(w, "%s\n", r.Data)
		return
	}
	ev, err := audit.ParseEvent(r.Data)
	if err != nil {
		fmt.Fprintf(w, "%8d  %s  (unreadable event: %v)\n", r.Index, r.ID, err)
		return
	}
	ts := ev.Time.Format("2006-01-02T15:04:05.000Z")
	if ev.Kind == audit.KindDecision {
		reason := ev.Reason
		if reason == "" && len(ev.DeterminingPolicies) > 0 {
			reason = "policy " + strings.Join(ev.DeterminingPolicies, ",")
		}
		fmt.Fprintf(w, "%8d  %s  %-5s %-24s %s -> %s  %s %s  wf=%s id=%s\n", r.Index, ts, ev.Decision, reason,
			ev.Caller, ev.Callee, ev.Action, ev.Resource, ev.WorkflowID, ev.ID)
		return
	}
	fmt.Fprintf(w, "%8d  %s  %-13s %s %s %s by %s id=%s\n", r.Index, ts, ev.Kind, ev.Subject, ev.Outcome, ev.Reason, ev.Actor, ev.ID)
}

func newAuditExportCmd() *cobra.Command {
	var f auditFlags
	var format string
	var since int64
	var endpoint string
	cmd := &cobra.Command{
		Use:   "export --format jsonl|otlp [--endpoint URL]",
		Short: "Export every audit event: JSON lines (canonical bytes) on stdout, or OTLP/HTTP log records to a collector",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if endpoint == "" {
				endpoint = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
			}
			switch {
			case format == "otlp" && endpoint == "":
				return exitCode(1, fmt.Errorf("--format otlp needs --endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT)"))
			case format != "jsonl" && format != "otlp":
				return exitCode(1, fmt.Errorf("--format %q: jsonl or otlp", format))
			}
			st, db, err := f.open(cmd.Context())
			if err != nil {
				return exitCode(1, err)
			}
			defer db.Close()
			size, err := st.Size(cmd.Context())
			if err != nil {
				return exitCode(1, err)
			}
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			for start := since; start < size; start += 8192 {
				recs, err := st.Records(cmd.Context(), start, min(start+8192, size))
				if err != nil {
					return exitCode(1, err)
				}
				if format == "otlp" {
					if err := (audit.OTLPExporter{Endpoint: endpoint}).Export(cmd.Context(), recs); err != nil {
						return exitCode(1, err)
					}
					continue
				}
				for _, r := range recs {
					w.Write(r.Data)
					w.WriteByte('\n')
				}
			}
			if err := w.Flush(); err != nil {
				return exitCode(1, err)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&format, "format", "jsonl", "jsonl (stdout) or otlp (OTLP/HTTP JSON log records)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (default $OTEL_EXPORTER_OTLP_ENDPOINT)")
	cmd.Flags().Int64Var(&since, "since", 0, "first record index to export")
	return cmd
}
