package cli

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
)

func newAuditSearchCmd() *cobra.Command {
	var (
		dataDir, credential, server, verifierKey string
		witnessKeys                              []string
		from, to, agent, action, decision        string
		reason, workflow, kind                   string
		limit                                    int
		before                                   int64
		proof, asJSON                            bool
	)
	cmd := &cobra.Command{
		Use:   "search",
		Short: "Search the audit log over the server's API (admin or auditor credential)",
		Long: `Search the control plane's audit log through its API (GET /v1/audit/search), for
auditors who must not read the database: with the admin credential (DATA_DIR/admin) or an
auditor credential ('warden auditor create', --credential DIR). Filters: time range
(--from/--to, RFC 3339), --agent (caller, callee or subject), --action, --decision,
--reason, --workflow, --kind. Prints the newest -n events, oldest first, each with its
log index; --before INDEX pages back. --proof asks for an inclusion proof of each event
against one checkpoint; with --verifier-key (the log's key) every proof is checked here,
and with --witness-key the checkpoint must carry each witness's valid cosignature.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"from": from, "to": to, "agent": agent, "action": action, "decision": decision,
				"reason": reason, "workflow": workflow, "kind": kind} {
				if v != "" {
					q.Set(k, v)
				}
			}
			q.Set("limit", strconv.Itoa(limit))
			if before > 0 {
				q.Set("before", strconv.FormatInt(before, 10))
			}
			if proof {
				q.Set("proof", "true")
			}
			if verifierKey != "" && !proof {
				return exitCode(1, errors.New("--verifier-key checks proofs: add --proof"))
			}
			c, err := searchClient(dataDir, credential, server)
			if err != nil {
				return exitCode(1, err)
			}
			res, err := c.SearchAudit(cmd.Context(), q)
			if err != nil {
				return exitCode(1, err)
			}
			checked := ""
			if verifierKey != "" {
				if checked, err = checkSearchProofs(res, verifierKey, witnessKeys); err != nil {
					return exitCode(1, fmt.Errorf("proofs do not verify: %w", err))
				}
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			for _, e := range res.Events {
				printRecord(w, audit.Record{Index: e.Index, Entry: audit.Entry{ID: e.ID, Data: e.Event}}, false)
			}
			if res.Before > 0 {
				fmt.Fprintf(w, "(more before index %d: --before %d)\n", res.Before, res.Before)
			}
			if proof && len(res.Events) > 0 {
				fmt.Fprintf(w, "inclusion proofs against the checkpoint of size %d%s\n", res.TreeSize, checked)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", defaultDataDir(), "data directory of the server (its admin/ holds the admin credential)")
	f.StringVar(&credential, "credential", "", "credential directory: an auditor's (auditor.pem, from warden auditor create) or the admin's (default DATA_DIR/admin)")
	f.StringVar(&server, "server", os.Getenv("WARDEN_SERVER"), "server URL (default: CREDENTIAL/server_url)")
	f.StringVar(&from, "from", "", "only events at or after this time (RFC 3339)")
	f.StringVar(&to, "to", "", "only events before this time (RFC 3339)")
	f.StringVar(&agent, "agent", "", "only events with this SPIFFE ID as caller, callee or subject")
	f.StringVar(&action, "action", "", "only this action (e.g. purchase_order.create)")
	f.StringVar(&decision, "decision", "", "only allow or deny decisions")
	f.StringVar(&reason, "reason", "", "only this reason code (e.g. replay)")
	f.StringVar(&workflow, "workflow", "", "only this workflow id")
	f.StringVar(&kind, "kind", "", "only this event kind")
	f.IntVarP(&limit, "lines", "n", 20, "how many of the newest matching events (at most 1000; 100 with --proof)")
	f.Int64Var(&before, "before", 0, "only events with a log index below this (the previous page)")
	f.BoolVar(&proof, "proof", false, "include an inclusion proof of each event")
	f.StringVar(&verifierKey, "verifier-key", "", "the log's checkpoint verifier key: check every proof here")
	f.StringArrayVar(&witnessKeys, "witness-key", nil, "a witness's verifier key: the proofs' checkpoint must carry its cosignature (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
	return cmd
}

// searchClient loads the auditor or admin credential.
func searchClient(dataDir, dir, server string) (*adminclient.Client, error) {
	if dir == "" {
		dir = filepath.Join(dataDir, "admin")
	}
	if _, err := os.Stat(filepath.Join(dir, "auditor.pem")); err == nil {
		return adminclient.LoadCredential(dir, "auditor", server)
	}
	return adminclient.LoadCredential(dir, "admin", server)
}

// checkSearchProofs checks every event's inclusion proof against the answer's checkpoint,
// signed by the log's key and cosigned by every given witness.
func checkSearchProofs(res api.AuditSearchResponse, verifierKey string, witnessKeys []string) (string, error) {
	if len(res.Events) == 0 {
		return "", nil
	}
	v, err := audit.LoadVerifier(verifierKey)
	if err != nil {
		return "", err
	}
	ws, err := loadWitnessKeys(witnessKeys)
	if err != nil {
		return "", err
	}
	size, root, err := audit.OpenCheckpoint([]byte(res.Checkpoint), v)
	if err != nil {
		return "", err
	}
	if size != res.TreeSize {
		return "", fmt.Errorf("checkpoint is of size %d, answer says %d", size, res.TreeSize)
	}
	var names []string
	for _, w := range ws {
		n, err := note.Open([]byte(res.Checkpoint), note.VerifierList(w))
		if err != nil {
			return "", fmt.Errorf("checkpoint has no valid cosignature of witness %s: %w", w.Name(), err)
		}
		t, _ := audit.CosignatureTime(n.Sigs[0])
		names = append(names, fmt.Sprintf("%s at %s", w.Name(), t.Format(time.RFC3339)))
	}
	for _, e := range res.Events {
		var p tlog.RecordProof
		for _, h := range e.Proof {
			b, err := base64.StdEncoding.DecodeString(h)
			if err != nil || len(b) != tlog.HashSize {
				return "", fmt.Errorf("event %d: malformed proof hash", e.Index)
			}
			p = append(p, tlog.Hash(b))
		}
		if err := tlog.CheckRecord(p, size, root, e.Index, tlog.RecordHash(e.Event)); err != nil {
			return "", fmt.Errorf("event %d (%s): %w", e.Index, e.ID, err)
		}
	}
	out := fmt.Sprintf(": %d verified with %s", len(res.Events), v.Name())
	if len(names) > 0 {
		out += ", cosigned by " + strings.Join(names, ", ")
	}
	return out, nil
}

// loadWitnessKeys reads witness verifier key files (C2SP vkeys, type 0x04).
func loadWitnessKeys(paths []string) ([]note.Verifier, error) {
	var out []note.Verifier
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("witness key: %w", err)
		}
		w, err := audit.NewCosignatureVerifier(string(b))
		if err != nil {
			return nil, fmt.Errorf("witness key %s: %w", p, err)
		}
		out = append(out, w)
	}
	return out, nil
}
