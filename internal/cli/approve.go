package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/approval"
)

// newApproveCmd: `warden approve ID --as APPROVER --key KEY.pem`, the human step of an
// approval (docs/approvals.md). The admin credential only reaches the API; the authority
// is the approver's signature, checked by the server against the approver's registered
// public key.
func newApproveCmd() *cobra.Command {
	var af adminFlags
	var as, keyFile, reason string
	var deny bool
	cmd := &cobra.Command{
		Use:   "approve ID --as APPROVER --key KEY.pem [--reason TEXT] [--deny]",
		Short: "Sign and record an approver's decision on an approval request",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			key, err := approval.ParsePrivateKeyPEM(b)
			if err != nil {
				return err
			}
			c, err := af.client()
			if err != nil {
				return err
			}
			rec, err := c.GetApproval(cmd.Context(), args[0])
			if err != nil {
				return exitCode(1, err)
			}
			decision := approval.DecisionApprove
			if deny {
				decision = approval.DecisionDeny
			}
			out := cmd.OutOrStdout()
			// Show what is signed: the approver signs these fields, and the server records
			// the decision only if they are the request's.
			fmt.Fprintf(out, "%s %s\n  requester %s\n  audience  %s\n  action    %s\n  resource  %s\n  workflow  %s\n  amount    %d %s\n  policy    %s (needs %d)\n  intent    %s\n",
				decision, rec.ID, rec.Requester, rec.Audience, rec.Action, rec.Resource, rec.Workflow, rec.Amount, rec.Currency, rec.PolicyID, rec.Required, rec.IntentHash)
			st := approval.StatementFor(&rec, as, decision, reason, time.Now())
			sig, err := approval.Sign(key, &st)
			if err != nil {
				return err
			}
			res, err := c.DecideApproval(cmd.Context(), api.ApprovalDecision{Statement: st, Signature: sig})
			if err != nil {
				return exitCode(1, err)
			}
			fmt.Fprintf(out, "%s: %s (%d of %d: %s)\n", res.ID, res.Status, res.Count, res.Required, strings.Join(res.Approvers, ", "))
			return nil
		},
	}
	af.register(cmd)
	f := cmd.Flags()
	f.StringVar(&as, "as", "", "approver name, as registered with `warden approver add`")
	f.StringVar(&keyFile, "key", "", "the approver's private key (PKCS#8 PEM, Ed25519 or ECDSA P-256)")
	f.StringVar(&reason, "reason", "", "reason recorded with the decision")
	f.BoolVar(&deny, "deny", false, "deny instead of approve (final)")
	_ = cmd.MarkFlagRequired("as")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func newApprovalsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "approvals", Short: "List and show approval requests"}
	var af adminFlags
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List approval requests, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			recs, err := c.ListApprovals(cmd.Context(), limit)
			if err != nil {
				return exitCode(1, err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tAPPROVALS\tREQUESTER\tACTION\tRESOURCE\tAMOUNT\tEXPIRES")
			for _, r := range recs {
				fmt.Fprintf(tw, "%s\t%s\t%d/%d %s\t%s\t%s\t%s\t%d %s\t%s\n", r.ID, r.Status, r.Count, r.Required,
					strings.Join(r.Approvers, ","), r.Requester, r.Action, r.Resource, r.Amount, r.Currency, r.ExpiresAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	af.register(list)
	list.Flags().IntVar(&limit, "limit", 100, "at most this many requests")
	var af2 adminFlags
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one approval request with its decisions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af2.client()
			if err != nil {
				return err
			}
			r, err := c.GetApproval(cmd.Context(), args[0])
			if err != nil {
				return exitCode(1, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s %s (%d of %d)\n  requester %s (filed by %s)\n  audience  %s\n  action    %s\n  resource  %s\n  workflow  %s\n  amount    %d %s\n  policy    %s\n  intent    %s\n  expires   %s\n",
				r.ID, r.Status, r.Count, r.Required, r.Requester, r.FiledBy, r.Audience, r.Action, r.Resource, r.Workflow, r.Amount, r.Currency, r.PolicyID, r.IntentHash, r.ExpiresAt.Format(time.RFC3339))
			if !r.UsedAt.IsZero() {
				fmt.Fprintf(out, "  used      %s by %s\n", r.UsedAt.Format(time.RFC3339), r.UsedBy)
			}
			for _, d := range r.Decisions {
				fmt.Fprintf(out, "  %s %s at %s %s\n", d.Approver, d.Decision, d.DecidedAt.Format(time.RFC3339), d.Reason)
			}
			return nil
		},
	}
	af2.register(show)
	cmd.AddCommand(list, show)
	return cmd
}

func newApproverCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "approver", Short: "Manage approvers (humans whose signed decisions release approvals)"}
	var af adminFlags
	var pubFile, spiffeID string
	add := &cobra.Command{
		Use:   "add NAME --pub KEY.pem [--spiffe-id ID]",
		Short: "Register an approver and the public key that signs its decisions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(pubFile)
			if err != nil {
				return err
			}
			c, err := af.client()
			if err != nil {
				return err
			}
			a, err := c.AddApprover(cmd.Context(), api.Approver{Name: args[0], PublicKey: string(b), SPIFFEID: spiffeID})
			if err != nil {
				return exitCode(1, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s key %s\n", a.Name, a.KeyID)
			return nil
		},
	}
	af.register(add)
	add.Flags().StringVar(&pubFile, "pub", "", "public key, PKIX PEM (Ed25519 or ECDSA P-256)")
	add.Flags().StringVar(&spiffeID, "spiffe-id", "", "a workload identity this person also acts as (it may not approve its own requests)")
	_ = add.MarkFlagRequired("pub")

	var af2 adminFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List approvers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af2.client()
			if err != nil {
				return err
			}
			as, err := c.ListApprovers(cmd.Context())
			if err != nil {
				return exitCode(1, err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKEY ID\tSPIFFE ID\tCREATED")
			for _, a := range as {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, a.KeyID, a.SPIFFEID, a.CreatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	af2.register(list)

	var af3 adminFlags
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Remove an approver (decisions it signed stay recorded)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af3.client()
			if err != nil {
				return err
			}
			if err := c.DeleteApprover(cmd.Context(), args[0]); err != nil {
				return exitCode(1, err)
			}
			return nil
		},
	}
	af3.register(del)

	var outPrefix string
	keygen := &cobra.Command{
		Use:   "keygen --out PREFIX",
		Short: "Make an Ed25519 approver key pair: PREFIX.key (0600) and PREFIX.pub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if outPrefix == "" {
				return errors.New("--out is required")
			}
			priv, pub, err := approval.GenerateKey()
			if err != nil {
				return err
			}
			// Never overwrite a key: O_EXCL.
			for _, f := range []struct {
				path string
				data []byte
				mode os.FileMode
			}{{outPrefix + ".key", priv, 0o600}, {outPrefix + ".pub", pub, 0o644}} {
				fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
				if err != nil {
					return err
				}
				_, err = fh.Write(f.data)
				if cerr := fh.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s.key\n%s.pub\n", outPrefix, outPrefix)
			return nil
		},
	}
	keygen.Flags().StringVar(&outPrefix, "out", "", "path prefix of the key files")
	cmd.AddCommand(add, list, del, keygen)
	return cmd
}
