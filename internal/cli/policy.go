package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/internal/policy"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check, test, bundle, diff and push Cedar policy bundles",
	}
	cmd.AddCommand(newPolicyCheckCmd(), newPolicyTestCmd(), newPolicyExceptionsCmd(),
		newPolicyBundleCmd(), newPolicyDiffCmd(), newPolicyActionsCmd(), newPolicyPushCmd(), newPolicyStatusCmd())
	return cmd
}

func newPolicyCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check DIR",
		Short: "Parse and type-check a policy bundle against its schema (exit 1 on any problem)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			probs, err := policy.Check(args[0])
			if err != nil {
				return exitCode(1, err)
			}
			out := cmd.OutOrStdout()
			for _, p := range probs {
				fmt.Fprintln(out, p.String())
			}
			if len(probs) > 0 {
				return exitCode(1, fmt.Errorf("%d problem(s) in %s", len(probs), args[0]))
			}
			e, err := policy.Load(args[0], policy.Options{})
			if err != nil {
				return exitCode(1, err)
			}
			fmt.Fprintf(out, "ok: %d policies, %d exceptions, %d rate limits, revision %s\n",
				len(e.Policies()), len(e.Exceptions()), len(e.RateLimits()), e.Revision())
			return nil
		},
	}
}

func newPolicyTestCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "test DIR",
		Short: "Run the YAML decision cases in DIR/tests; ends with 'N passed, M failed'",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := policy.Load(args[0], policy.Options{})
			if err != nil {
				return exitCode(1, err)
			}
			rep, err := policy.RunTests(e, os.DirFS(args[0]), cmd.OutOrStdout())
			if err != nil {
				return exitCode(1, err)
			}
			if rep.Failed > 0 {
				return exitCode(1, nil)
			}
			return nil
		},
	}
}

func newPolicyExceptionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "exceptions DIR",
		Short: "List the exceptions of a bundle with owner and days left; expired ones marked",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := policy.Load(args[0], policy.Options{})
			if err != nil {
				return exitCode(1, err)
			}
			now := time.Now()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tOWNER\tSCOPE\tEXPIRES\tDAYS LEFT\tSTATUS")
			for _, x := range e.Exceptions() {
				status := "active"
				if !x.Active(now) {
					status = "EXPIRED"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s %s %s\t%s\t%d\t%s\n", x.ID, x.Owner, x.Scope.Principal, x.Scope.Action,
					x.Scope.Resource, x.Expires.UTC().Format("2006-01-02"), x.DaysLeft(now), status)
			}
			return tw.Flush()
		},
	}
}

func newPolicyActionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "actions DIR",
		Short: "List the actions and resource types of a bundle's schema",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := policy.Load(args[0], policy.Options{})
			if err != nil {
				return exitCode(1, err)
			}
			for _, a := range e.Actions() {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\n", a.Name, strings.Join(a.ResourceTypes, ","), strings.Join(a.Groups, ","))
			}
			return nil
		},
	}
}

func newPolicyBundleCmd() *cobra.Command {
	var out, keyFile string
	cmd := &cobra.Command{
		Use:   "bundle DIR -o FILE --key KEY.pem",
		Short: "Check DIR and write a signed bundle carrying its revision",
		Long: "Check DIR and write a signed bundle (Ed25519) carrying its revision. If KEY.pem does not\n" +
			"exist, a new key is generated there (mode 0600) with its public key in KEY.pem.pub.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" || keyFile == "" {
				return exitCode(2, errors.New("policy bundle: -o FILE and --key KEY.pem are required"))
			}
			key, err := loadOrCreateKey(keyFile, cmd.ErrOrStderr())
			if err != nil {
				return exitCode(1, err)
			}
			e, err := policy.Load(args[0], policy.Options{})
			if err != nil {
				return exitCode(1, err)
			}
			b, err := policy.WriteBundle(e, key, time.Now())
			if err != nil {
				return exitCode(1, err)
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return exitCode(1, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s revision %s key %s\n", out, e.Revision(), policy.KeyID(key.Public().(ed25519.PublicKey)))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "bundle file to write")
	cmd.Flags().StringVar(&keyFile, "key", "", "Ed25519 PKCS#8 PEM signing key (created if absent)")
	return cmd
}

func loadOrCreateKey(path string, log io.Writer) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return policy.ParsePrivateKey(b)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	priv, pub, err := policy.MarshalKeys(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, priv, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".pub", pub, 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "generated signing key %s (public key %s.pub)\n", path, path)
	return key, nil
}

func newPolicyDiffCmd() *cobra.Command {
	var base, cur, pubFile string
	var exitOnDrift bool
	cmd := &cobra.Command{
		Use:   "diff --baseline A --current B",
		Short: "Report added, removed and changed policies, exceptions and rate limits between two bundles",
		Long: "A and B are bundle directories or signed bundle files. With --pub, bundle files must verify;\n" +
			"without it their signatures are not checked (a drift report decides nothing).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if base == "" || cur == "" {
				return exitCode(2, errors.New("policy diff: --baseline and --current are required"))
			}
			var pub ed25519.PublicKey
			if pubFile != "" {
				b, err := os.ReadFile(pubFile)
				if err != nil {
					return exitCode(1, err)
				}
				if pub, err = policy.ParsePublicKey(b); err != nil {
					return exitCode(1, err)
				}
			}
			a, err := openBundle(base, pub)
			if err != nil {
				return exitCode(1, fmt.Errorf("baseline: %w", err))
			}
			b, err := openBundle(cur, pub)
			if err != nil {
				return exitCode(1, fmt.Errorf("current: %w", err))
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "baseline %s\ncurrent  %s\n", a.Revision(), b.Revision())
			d := policy.Diff(a, b)
			for _, x := range d {
				fmt.Fprintln(out, x.String())
			}
			if len(d) == 0 {
				fmt.Fprintln(out, "no drift")
				return nil
			}
			fmt.Fprintf(out, "%d change(s)\n", len(d))
			if exitOnDrift {
				return exitCode(1, nil)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&base, "baseline", "", "baseline bundle directory or file")
	cmd.Flags().StringVar(&cur, "current", "", "current bundle directory or file")
	cmd.Flags().StringVar(&pubFile, "pub", "", "public key that bundle files must verify with")
	cmd.Flags().BoolVar(&exitOnDrift, "exit-code", false, "exit 1 when there is any drift (for CI)")
	return cmd
}

func openBundle(path string, pub ed25519.PublicKey) (*policy.Engine, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return policy.Load(path, policy.Options{})
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if pub == nil {
		return policy.ReadBundleUnverified(b)
	}
	return policy.ReadBundle(b, pub, policy.Options{})
}
