package demo

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/warden-a2a/warden/internal/audit"
)

// auditSteps close the story (issue 7): the control plane signs a checkpoint, the whole
// log is verified, the trail of one agent is shown, and a tampered copy of the log is
// caught at the edited record.
var auditSteps = []func(context.Context, *env){
	verifyAuditLog,
	tamperedAuditLog,
}

func (e *env) auditStorage(ctx context.Context, db *sql.DB) (audit.Storage, error) {
	return audit.NewSQLite(ctx, db)
}

func verifyAuditLog(ctx context.Context, e *env) {
	s := Step{Name: "the audit log verifies: every event, every signed checkpoint", Kind: "workflow", Expected: "allow"}
	rep, err := func() (audit.VerifyReport, error) {
		if _, err := e.audit.Checkpoint(ctx); err != nil {
			return audit.VerifyReport{}, err
		}
		st, err := e.auditStorage(ctx, e.store.DB())
		if err != nil {
			return audit.VerifyReport{}, err
		}
		_, v, err := audit.LoadKeys(filepath.Join(e.cfg.DataDir, "audit"))
		if err != nil {
			return audit.VerifyReport{}, err
		}
		return audit.Verify(ctx, st, v)
	}()
	if err != nil {
		s.Observed, s.Reason, _ = outcome(err)
	} else {
		s.Observed = "allow"
		s.Reason = fmt.Sprintf("%d events, %d signed checkpoint(s), root %x…", rep.Size, rep.Checkpoints, rep.Root[:6])
	}
	e.record(s)
	e.printTrail(ctx, "po-1001")
}

// printTrail prints the decision trail of one workflow from the audit log: every gate
// decision with its workflow id, who called whom, what was decided and why.
func (e *env) printTrail(ctx context.Context, workflow string) {
	st, err := e.auditStorage(ctx, e.store.DB())
	if err != nil {
		return
	}
	n, _ := st.Size(ctx)
	recs, err := st.Records(ctx, 0, n)
	if err != nil {
		return
	}
	short := func(id string) string { return strings.TrimPrefix(id, "spiffe://"+TrustDomain+"/agent/") }
	fmt.Fprintf(e.cfg.Out, "Decision trail of workflow %s, from the audit log (`warden audit tail --workflow %s`):\n", workflow, workflow)
	for _, r := range recs {
		ev, err := audit.ParseEvent(r.Data)
		if err != nil || ev.WorkflowID != workflow {
			continue
		}
		if ev.Kind == audit.KindAnomaly {
			fmt.Fprintf(e.cfg.Out, "  #%-3d %s  anomaly  %s about %s\n", r.Index, ev.Time.Format("15:04:05.000"), ev.Reason, short(ev.Subject))
			continue
		}
		why := ev.Reason
		if len(ev.DeterminingPolicies) > 0 {
			why += " [" + strings.Join(ev.DeterminingPolicies, ",") + "]"
		}
		fmt.Fprintf(e.cfg.Out, "  #%-3d %s  %-8s %-16s -> %-15s %-22s %-5s %s\n", r.Index, ev.Time.Format("15:04:05.000"),
			ev.Detail["mode"], short(ev.Caller), short(ev.Callee), ev.Action, ev.Decision, why)
	}
	fmt.Fprintln(e.cfg.Out)
}

// tamperedAuditLog copies the database, changes one byte of one stored event in the copy,
// and expects verification to name that record.
func tamperedAuditLog(ctx context.Context, e *env) {
	s := Step{Name: "edit one byte of a stored audit event (in a copy of the log)", Kind: "attack", Expected: "deny"}
	err := func() error {
		cp := filepath.Join(e.cfg.DataDir, "tampered-copy.db")
		if _, err := e.store.DB().ExecContext(ctx, "VACUUM INTO ?", cp); err != nil {
			return err
		}
		db, err := sql.Open("sqlite", "file:"+cp)
		if err != nil {
			return err
		}
		defer db.Close()
		// Turn the first "granted" into "grantee": a quiet one-byte edit of one record.
		res, err := db.ExecContext(ctx, `UPDATE audit_records SET data = CAST(REPLACE(CAST(data AS TEXT), '"granted"', '"grantee"') AS BLOB)
			WHERE idx = (SELECT MIN(idx) FROM audit_records WHERE CAST(data AS TEXT) LIKE '%"granted"%')`)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("no record to tamper with")
		}
		st, err := e.auditStorage(ctx, db)
		if err != nil {
			return err
		}
		_, v, err := audit.LoadKeys(filepath.Join(e.cfg.DataDir, "audit"))
		if err != nil {
			return err
		}
		_, err = audit.Verify(ctx, st, v)
		return err
	}()
	if f, ok := audit.IsFault(err); ok {
		s.Observed, s.Reason = "deny", fmt.Sprintf("audit_tampered: verify names index %d (%s)", f.Index, strings.TrimSpace(f.Reason))
	} else if err != nil {
		s.Observed, s.Reason = "allow", "could not run the check: "+err.Error()
	} else {
		s.Observed, s.Reason = "allow", "the edited log still verified"
	}
	e.record(s)
}
