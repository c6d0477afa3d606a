package demo

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	_ "modernc.org/sqlite" // driver "sqlite", to copy the log as an attacker would

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/proc"
)

// auditSteps close the story: the whole log is verified with `warden audit verify`, the
// trail of one workflow is shown with `warden audit tail`, the caller's signature of one
// decision is re-verified from the log alone with `warden audit show --verify-intent`,
// and a tampered copy of the log is caught at the edited record.
var auditSteps = []func(context.Context, *env){
	verifyAuditLog,
	oneCallOneTrace,
	reverifyIntent,
	tamperedAuditLog,
	truncatedBehindTheServer, // last: it cuts the live log
}

// witnessFlags are `warden audit verify`'s flags that take the witness's newest
// checkpoint from the witness itself.
func (e *env) witnessFlags() []string {
	return []string{"--witness-key", e.WitnessKey, "--witness-url", e.WitnessURL}
}

// verifyAuditLog waits until the witness has cosigned a checkpoint of the whole log (the
// server checkpoints every 2 s) and verifies it, against the witness's newest checkpoint.
func verifyAuditLog(ctx context.Context, e *env) {
	s := Step{Name: "the audit log verifies: every event, every signed checkpoint, the witness's newest checkpoint", Kind: "workflow", Expected: "allow"}
	var r proc.Result
	err := proc.WaitFor(ctx, 60*time.Second, "a witnessed checkpoint of the whole log", func() (bool, error) {
		r = e.Admin(ctx, append([]string{"audit", "verify"}, e.witnessFlags()...)...)
		if r.Err != nil {
			return false, r.Err
		}
		return strings.Contains(r.Stdout, "; 0 newer events not witnessed yet"), nil
	})
	s.Command = r.Command
	if err != nil {
		s.Observed, s.Reason, _ = outcome(err)
	} else {
		s.Observed, s.Reason = "allow", strings.Join(strings.Fields(r.Stdout), " ")
	}
	e.record(s)
	e.printTrail(ctx, "po-1001")
}

// printTrail prints the decision trail of one workflow: `warden audit tail --workflow`.
func (e *env) printTrail(ctx context.Context, workflow string) {
	r := e.Admin(ctx, "audit", "tail", "--workflow", workflow, "-n", "50")
	fmt.Fprintf(e.out, "\nDecision trail of workflow %s, from the audit log:\n  $ %s\n", workflow, r.Command)
	if r.Err != nil {
		fmt.Fprintf(e.out, "  %v\n\n", r.Err)
		return
	}
	fmt.Fprintf(e.out, "%s\n", indent(strings.TrimRight(r.Stdout, "\n"), "  "))
}

// oneCallOneTrace checks in the audit log that each call of workflow po-1001 is one
// trace across the gates: every call procurement's outbound gate sent was decided by
// vendor-portal's inbound gate under the same trace id (W3C traceparent, gate to gate).
func oneCallOneTrace(ctx context.Context, e *env) {
	s := Step{Name: "each po-1001 call is one trace across both gates (W3C traceparent)", Kind: "workflow", Expected: "allow",
		Command: e.Procs.Show("audit", "tail", "--workflow", "po-1001", "--json", "--data-dir", e.ServerDir())}
	joined, outbound := 0, 0
	// Both gates ship on their own schedule: wait until every outbound call is matched.
	err := proc.WaitFor(ctx, 30*time.Second, "both gates' decisions of po-1001", func() (bool, error) {
		evs, err := e.AuditEvents(ctx)
		if err != nil {
			return false, err
		}
		inbound := map[string]bool{}
		for _, ev := range evs {
			if ev.WorkflowID == "po-1001" && ev.Detail["mode"] == "inbound" && ev.TraceID != "" {
				inbound[ev.TraceID] = true
			}
		}
		joined, outbound = 0, 0
		for _, ev := range evs {
			if ev.WorkflowID == "po-1001" && ev.Detail["mode"] == "outbound" && ev.Decision == audit.DecisionAllow {
				outbound++
				if inbound[ev.TraceID] {
					joined++
				}
			}
		}
		return outbound > 0 && joined == outbound, nil
	})
	s.Observed = "allow"
	if err != nil {
		s.Observed = "deny"
	}
	s.Reason = fmt.Sprintf("%d of %d calls procurement's gate sent are decided by vendor-portal's gate under the same trace id", joined, outbound)
	e.record(s)
}

// reverifyIntent takes one allowed po-1001 decision of vendor-portal's gate from the log
// and re-verifies, offline and from the log alone, that procurement signed what the
// event says: `warden audit show ID --verify-intent` checks the recorded chain against
// the trust bundle at the decision's time, the intent's signature and binding, and the
// event's callee, jti, action, resource and workflow against the signed claims.
func reverifyIntent(ctx context.Context, e *env) {
	s := Step{Name: "re-verify procurement's signature of a po-1001 decision from the audit log alone", Kind: "workflow", Expected: "allow"}
	var id string
	err := proc.WaitFor(ctx, 30*time.Second, "an inbound po-1001 decision with its intent", func() (bool, error) {
		evs, err := e.AuditEvents(ctx)
		if err != nil {
			return false, err
		}
		for _, ev := range evs {
			if ev.WorkflowID == "po-1001" && ev.Detail["mode"] == "inbound" && ev.Decision == audit.DecisionAllow && ev.Intent != "" {
				id = ev.ID
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		s.Command = e.Procs.Show("audit", "show", "ID", "--verify-intent", "--data-dir", e.ServerDir())
		s.Observed, s.Reason, _ = outcome(err)
		e.record(s)
		return
	}
	r := e.Admin(ctx, "audit", "show", id, "--verify-intent")
	s.Command, s.DecisionID = r.Command, id
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	last := lines[len(lines)-1]
	switch {
	case r.Code == 0 && strings.HasPrefix(last, "OK: "):
		s.Observed, s.Reason = "allow", last
	default:
		s.Observed, s.Reason = "deny", strings.TrimSpace(last+" "+r.Message())
	}
	e.record(s)
}

// faultIndex reads the record index `warden audit verify` names.
var faultIndex = regexp.MustCompile(`first bad index (\d+)`)

// tamperedAuditLog copies the database, changes one byte of one stored event in the copy,
// and expects `warden audit verify` on the copy to name that record.
func tamperedAuditLog(ctx context.Context, e *env) {
	s := Step{Name: "edit one byte of a stored audit event (in a copy of the log)", Kind: "attack", Expected: "deny"}
	copyDir := filepath.Join(e.Dir, "tampered-copy")
	cp := filepath.Join(copyDir, "warden.db")
	const edit = `UPDATE audit_records SET data = CAST(REPLACE(CAST(data AS TEXT), '"granted"', '"grantee"') AS BLOB)
			WHERE idx = (SELECT MIN(idx) FROM audit_records WHERE CAST(data AS TEXT) LIKE '%"granted"%')`
	s.Command = commands(fmt.Sprintf(`sqlite3 $DIR/server/warden.db "VACUUM INTO '%s'"`, e.show(cp)),
		`sqlite3 `+e.show(cp)+` "UPDATE audit_records SET data = REPLACE(data, '\"granted\"', '\"grantee\"') WHERE idx = (SELECT MIN(idx) ...)"`)
	err := func() error {
		_ = os.RemoveAll(copyDir)
		if err := os.MkdirAll(copyDir, 0o700); err != nil {
			return err
		}
		src, err := sql.Open("sqlite", "file:"+filepath.Join(e.ServerDir(), "warden.db")+"?mode=ro&_pragma=busy_timeout(10000)")
		if err != nil {
			return err
		}
		defer src.Close()
		if _, err := src.ExecContext(ctx, "VACUUM INTO ?", cp); err != nil {
			return err
		}
		db, err := sql.Open("sqlite", "file:"+cp)
		if err != nil {
			return err
		}
		defer db.Close()
		// Turn the first "granted" into "grantee": a quiet one-byte edit of one record.
		res, err := db.ExecContext(ctx, edit)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("no record to tamper with")
		}
		return nil
	}()
	if err != nil {
		s.Observed, s.Reason = "allow", "could not run the check: "+err.Error()
		e.record(s)
		return
	}
	r := e.Warden(ctx, "audit", "verify", "--data-dir", copyDir, "--verifier-key", filepath.Join(e.ServerDir(), "audit", audit.VerifierKeyFile))
	s.Command = commands(s.Command, r.Command)
	switch m := faultIndex.FindStringSubmatch(r.Stdout); {
	case r.Code == 1 && m != nil:
		s.Observed, s.Reason = "deny", fmt.Sprintf("audit_tampered: verify names index %s (%s)", m[1], strings.TrimSpace(r.Stdout))
	case r.Code == 0:
		s.Observed, s.Reason = "allow", "the edited log still verified: "+strings.TrimSpace(r.Stdout)
	default:
		s.Observed, s.Reason = "allow", "could not run the check: "+r.Message()+strings.TrimSpace(r.Stdout)
	}
	e.record(s)
}

// truncatedBehindTheServer is an insider with write access to the control plane's
// database: once the witness has cosigned the whole log, the last events are deleted
// together with every checkpoint (and cosignature) that covered them, behind the running
// server's back. The database alone still verifies; `warden audit verify` with the
// witness's key, which reads the witness's newest checkpoint from the witness, names the
// truncation. (Gates still shipping may append after the cut: then the log's root at
// the witnessed size differs, named rolled_back.)
func truncatedBehindTheServer(ctx context.Context, e *env) {
	s := Step{Name: "an insider cuts the last audit events and their checkpoints out of the live database; verify with the witness's key names it",
		Kind: "attack", Expected: "deny"}
	verify := append([]string{"audit", "verify"}, e.witnessFlags()...)
	var r proc.Result
	err := proc.WaitFor(ctx, 60*time.Second, "the witness to cosign the whole log", func() (bool, error) {
		r = e.Admin(ctx, verify...)
		return r.Err == nil && strings.Contains(r.Stdout, "; 0 newer events not witnessed yet"), nil
	})
	if err != nil {
		s.Command, s.Observed, s.Reason = r.Command, "allow", "could not run the check: "+err.Error()
		e.record(s)
		return
	}
	const cut = 5
	var size int64
	err = func() error {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(e.ServerDir(), "warden.db")+"?_pragma=busy_timeout(10000)")
		if err != nil {
			return err
		}
		defer db.Close()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(idx)+1, 0) FROM audit_records").Scan(&size); err != nil {
			return err
		}
		keep := size - cut
		for _, q := range []string{"DELETE FROM audit_records WHERE idx >= ?", "DELETE FROM audit_checkpoints WHERE size > ?", "DELETE FROM audit_cosignatures WHERE size > ?"} {
			if _, err := tx.ExecContext(ctx, q, keep); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	keep := size - cut
	s.Command = fmt.Sprintf(`sqlite3 $DIR/server/warden.db "DELETE FROM audit_records WHERE idx >= %d; DELETE FROM audit_checkpoints WHERE size > %d; DELETE FROM audit_cosignatures WHERE size > %d"`, keep, keep, keep)
	if err != nil {
		s.Observed, s.Reason = "allow", "could not cut the log: "+err.Error()
		e.record(s)
		return
	}
	dbOnly := e.Admin(ctx, "audit", "verify")
	r = e.Admin(ctx, verify...)
	s.Command = commands(s.Command, dbOnly.Command+"   # the database alone: "+firstLine(dbOnly.Stdout), r.Command)
	switch out := strings.TrimSpace(r.Stdout); {
	case r.Code == 1 && (strings.Contains(out, ": truncated: ") || strings.Contains(out, ": rolled_back: ")):
		s.Observed, s.Reason = "deny", out
	case r.Code == 0:
		s.Observed, s.Reason = "allow", "the cut log still verified with the witness: "+out
	default:
		s.Observed, s.Reason = "allow", "could not run the check: "+r.Message()+" "+out
	}
	e.record(s)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if i := strings.Index(line, ", root "); i > 0 {
		line = line[:i]
	}
	return line
}
