package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/policy"
)

func newPolicyPushCmd() *cobra.Command {
	var af adminFlags
	var keyFile, reason, operator string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "push DIR --key KEY.pem --reason TEXT [--wait D]",
		Short: "Test, sign and upload a bundle: every gate following the control plane swaps it in",
		Long: `Check DIR, run its tests (DIR/tests/*.yaml; any failure stops the push), sign it with
KEY.pem (Ed25519, as for warden policy bundle; the key must exist) and upload it. The
control plane verifies the signature with its --policy-public-key, compiles the bundle and
names its revision in the trust state; gates with policy.central fetch it, verify it with
their own public key and swap it in, keeping the last good bundle if anything fails.
--wait D waits until every reporting gate enforces the new revision (exit 1 if not).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kb, err := os.ReadFile(keyFile)
			if err != nil {
				return exitCode(1, fmt.Errorf("--key: %w", err))
			}
			key, err := policy.ParsePrivateKey(kb)
			if err != nil {
				return exitCode(1, err)
			}
			e, err := policy.Load(args[0], policy.Options{})
			if err != nil {
				return exitCode(1, err)
			}
			rep, err := policy.RunTests(e, os.DirFS(args[0]), io.Discard)
			if err != nil {
				return exitCode(1, err)
			}
			if rep.Failed > 0 {
				return exitCode(1, fmt.Errorf("policy push: %d test case(s) of %s fail (warden policy test %s); nothing pushed", rep.Failed, args[0], args[0]))
			}
			signed, err := policy.WriteBundle(e, key, time.Now())
			if err != nil {
				return exitCode(1, err)
			}
			c, err := af.client()
			if err != nil {
				return exitCode(1, err)
			}
			start := time.Now()
			out, err := c.PushPolicy(cmd.Context(), api.PolicyPush{Bundle: signed, Reason: reason, Operator: operator})
			if err != nil {
				return exitCode(1, err)
			}
			w := cmd.OutOrStdout()
			if out.Unchanged {
				fmt.Fprintf(w, "revision %s is already active (trust state version %d); %d tests passed\n", out.Revision, out.Version, rep.Passed)
			} else {
				fmt.Fprintf(w, "pushed revision %s (key %s): trust state version %d; %d tests passed\n", out.Revision, out.KeyID, out.Version, rep.Passed)
			}
			if wait > 0 {
				return waitGates(cmd.Context(), w, c, out.Revision, start, wait)
			}
			return nil
		},
	}
	af.register(cmd)
	cmd.Flags().StringVar(&keyFile, "key", "", "Ed25519 PKCS#8 PEM signing key (its public key must be the server's --policy-public-key)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait this long for every reporting gate to enforce the revision")
	operatorFlag(cmd, &operator)
	_ = cmd.MarkFlagRequired("key")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

// waitGates polls the gates' heartbeats until every gate that enforces policy (not
// outbound, not silent) reports revision, printing when each did.
func waitGates(ctx context.Context, w io.Writer, c *adminclient.Client, revision string, start time.Time, wait time.Duration) error {
	deadline := start.Add(wait)
	seen := map[string]bool{}
	for {
		gs, err := c.Gates(ctx)
		if err != nil {
			return exitCode(1, err)
		}
		var missing []string
		for _, g := range gs {
			if g.Mode == "outbound" || slices.Contains(g.Flags, "silent") {
				continue
			}
			if g.PolicyRevision != revision {
				missing = append(missing, g.GateID)
				continue
			}
			if !seen[g.GateID] {
				seen[g.GateID] = true
				fmt.Fprintf(w, "  %s enforces it (reported %s after the push)\n", g.GateID, g.ReportedAt.Sub(start).Round(time.Millisecond))
			}
		}
		if len(missing) == 0 {
			fmt.Fprintf(w, "every reporting gate enforces %s\n", revision)
			return nil
		}
		if time.Now().After(deadline) {
			return exitCode(1, fmt.Errorf("after %s these gates do not enforce %s yet: %s", wait, revision, strings.Join(missing, ", ")))
		}
		select {
		case <-ctx.Done():
			return exitCode(1, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func newPolicyStatusCmd() *cobra.Command {
	var af adminFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "The policy revision the trust state names and the bundles pushed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return exitCode(1, err)
			}
			st, err := c.PolicyStatus(cmd.Context())
			if err != nil {
				return exitCode(1, err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "active revision: %s\n", orDash(st.Revision))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REVISION\tKEY\tSIGNED\tPUSHED\tACTIVE")
			for _, b := range st.Bundles {
				active := ""
				if b.Active {
					active = "yes"
				}
				fmt.Fprintf(tw, "%s\t%.16s\t%s\t%s\t%s\n", b.Revision, b.KeyID, b.Created.Format(time.RFC3339), b.Pushed.Format(time.RFC3339), active)
			}
			return tw.Flush()
		},
	}
	af.register(cmd)
	return cmd
}

func newGatesCmd() *cobra.Command {
	var af adminFlags
	var asJSON, exitOnFlag bool
	cmd := &cobra.Command{
		Use:   "gates",
		Short: "Every gate's last heartbeat: policy revision, trust state, SVID expiry, spool, errors; drift and staleness flagged",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return exitCode(1, err)
			}
			gs, err := c.Gates(cmd.Context())
			if err != nil {
				return exitCode(1, err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(gs); err != nil {
					return err
				}
			} else {
				printGates(cmd.OutOrStdout(), gs, time.Now())
			}
			for _, g := range gs {
				if exitOnFlag && len(g.Flags) > 0 {
					return exitCode(1, errors.New("some gates are flagged"))
				}
			}
			return nil
		},
	}
	af.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&exitOnFlag, "exit-code", false, "exit 1 when any gate is flagged (for monitoring)")
	return cmd
}

func printGates(w io.Writer, gs []api.GateStatus, now time.Time) {
	if len(gs) == 0 {
		fmt.Fprintln(w, "no gate has reported")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GATE\tMODE\tZONE\tPOLICY\tSOURCE\tTRUST STATE\tSVID EXPIRES\tSPOOL\tREPORTED\tFLAGS\tLAST ERROR")
	for _, g := range gs {
		rev := g.PolicyRevision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		exp := "-"
		if !g.SVIDExpiresAt.IsZero() {
			exp = "in " + g.SVIDExpiresAt.Sub(now).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\tv%d, %s old\t%s\t%d\t%s ago\t%s\t%s\n", g.GateID, g.Mode, orDash(g.Zone), orDash(rev),
			orDash(g.PolicySource), g.TrustStateVersion, (time.Duration(g.TrustStateAgeMS) * time.Millisecond).Round(time.Second),
			exp, g.SpoolDepth, now.Sub(g.ReportedAt).Round(time.Second), orDash(strings.Join(g.Flags, ",")), orDash(g.LastError))
	}
	_ = tw.Flush()
}
