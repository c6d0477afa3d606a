package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/witness"
)

func newAuditVerifyCmd() *cobra.Command {
	var (
		f                                   auditFlags
		witnessKeys, witnessURLs, witnessCP []string
		quorum                              int
		maxUnwitnessed                      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the Merkle tree, check every checkpoint signature, their consistency and the witnesses' newest checkpoint",
		Long: `Recompute the RFC 6962 tree from every stored event, compare it with the stored hashes,
with every filter column and with every signed checkpoint, and check consistency between
checkpoints. Exits 1 on any fault and names it: the first bad record index where there is
one, and a code (record_changed, column_mismatch, truncated, rolled_back,
checkpoint_deleted, unwitnessed, no_checkpoint, quorum, ...).

The database alone cannot show what was cut off its end together with the checkpoints
that covered it. With --witness-key (repeatable) verify also takes each witness's newest
cosigned checkpoint from outside the database — from the witness itself (--witness-url)
or from a file (--witness-checkpoint) — and fails when the log is shorter than one
(truncated), differs from one at its size (rolled back, forked), lacks one in its
checkpoints table (checkpoint deleted), when fewer than --witness-quorum witnesses vouch,
or when records no witness has seen are older than --max-unwitnessed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			vs, err := f.verifiers()
			if err != nil {
				return exitCode(1, err)
			}
			opts := audit.VerifyOptions{Verifiers: vs, Quorum: quorum, MaxUnwitnessed: maxUnwitnessed}
			if opts.Witnesses, err = loadWitnessKeys(witnessKeys); err != nil {
				return exitCode(1, err)
			}
			if len(opts.Witnesses) == 0 && (len(witnessURLs) > 0 || len(witnessCP) > 0) {
				return exitCode(1, errors.New("--witness-url and --witness-checkpoint need --witness-key: the keys decide whom to trust"))
			}
			if len(opts.Witnesses) > 0 && len(witnessURLs)+len(witnessCP) == 0 {
				return exitCode(1, errors.New("--witness-key needs --witness-url or --witness-checkpoint: the newest witnessed checkpoint must come from outside the database"))
			}
			if quorum > len(opts.Witnesses) {
				return exitCode(1, fmt.Errorf("--witness-quorum %d is more than the %d witness keys given", quorum, len(opts.Witnesses)))
			}
			// The anchors are read before the database: the log only grows after them.
			origin := vs[0].Name()
			for _, u := range witnessURLs {
				b, err := witness.FetchLatest(ctx, nil, u, origin)
				if err != nil {
					// One witness down does not stop verify: the quorum decides.
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", err)
					continue
				}
				opts.Anchors = append(opts.Anchors, audit.Anchor{Source: u, Note: b})
			}
			for _, p := range witnessCP {
				b, err := os.ReadFile(p)
				if err != nil {
					return exitCode(1, fmt.Errorf("witnessed checkpoint: %w", err))
				}
				opts.Anchors = append(opts.Anchors, audit.Anchor{Source: p, Note: b})
			}
			st, db, err := f.open(ctx)
			if err != nil {
				return exitCode(1, err)
			}
			defer db.Close()
			start := time.Now()
			rep, err := audit.VerifyWith(ctx, st, opts)
			if fe, ok := audit.IsFault(err); ok {
				if fe.Index >= 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "FAIL: first bad index %d: %s: %s\n", fe.Index, fe.Code, fe.Reason)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "FAIL: %s: %s\n", fe.Code, fe.Reason)
				}
				return exitCode(1, nil)
			}
			if err != nil {
				return exitCode(1, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK: %d events, %d checkpoints signed by %s, root %s (%.1fs)\n",
				rep.Size, rep.Checkpoints, keyNames(vs), rep.Root, time.Since(start).Seconds())
			if len(opts.Witnesses) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "witnessed: size %d by %s, newest cosignature %s; %d newer events not witnessed yet\n",
					rep.Witnessed, strings.Join(rep.Witnesses, ", "), rep.WitnessTime.Format(time.RFC3339), rep.Uncovered)
			} else {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: no --witness-key: a log cut off at its end together with its checkpoints would verify too")
				if rep.Checkpoints == 0 && rep.Size > 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning: no signed checkpoint yet; the log is self-consistent but not anchored")
				}
			}
			return nil
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringArrayVar(&witnessKeys, "witness-key", nil, "verifier key file of a trusted witness (repeatable)")
	fl.StringArrayVar(&witnessURLs, "witness-url", nil, "witness URL to ask for its newest cosigned checkpoint of this log (repeatable)")
	fl.StringArrayVar(&witnessCP, "witness-checkpoint", nil, "file with a witness's newest cosigned checkpoint (repeatable)")
	fl.IntVar(&quorum, "witness-quorum", 0, "how many of the witness keys must vouch (default: all)")
	fl.DurationVar(&maxUnwitnessed, "max-unwitnessed", audit.DefaultMaxUnwitnessed, "fail when records no witness has cosigned are older than this (without witnesses: events this old and no checkpoint at all)")
	return cmd
}

func keyNames(vs []note.Verifier) string {
	seen := map[string]bool{}
	var out []string
	for _, v := range vs {
		if !seen[v.Name()] {
			seen[v.Name()] = true
			out = append(out, v.Name())
		}
	}
	return strings.Join(out, ", ")
}

func newAuditKeysCmd() *cobra.Command {
	var dataDir, td string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create the audit checkpoint key pair (DATA_DIR/audit) if missing and print the verifier key",
		Long: `Create the audit log's checkpoint key pair in DATA_DIR/audit (signer.key 0600,
verifier.key) unless it exists, and print the verifier key. 'warden server' creates it on
first start too; run this first to give the verifier key to witnesses (warden witness
--log-key) before the server starts, and copy DATA_DIR/audit to every replica.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, _, err := audit.LoadOrCreateKeys(filepath.Join(dataDir, "audit"), audit.NoteName(td))
			if err != nil {
				return exitCode(1, err)
			}
			b, err := os.ReadFile(filepath.Join(dataDir, "audit", audit.VerifierKeyFile))
			if err != nil {
				return exitCode(1, err)
			}
			fmt.Fprint(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "the server's data directory")
	cmd.Flags().StringVar(&td, "trust-domain", envOr("WARDEN_TRUST_DOMAIN", "supplychain.example"), "SPIFFE trust domain (names the key: warden-audit/<trust-domain>)")
	return cmd
}
