// Package cli holds the warden command tree: one file per subcommand. It reads flags and
// YAML and hands plain Config structs to the runtime packages; nothing here is imported
// by them.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra without printing usage.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode returns an error that makes Main exit with code, printing err (if any) to stderr.
func exitCode(code int, err error) error { return &exitError{code: code, err: err} }

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(os.Stderr, "warden:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "warden:", err)
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "warden",
		Short:         "Zero-trust control plane and enforcement gate for agent-to-agent workflows",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// One line per subcommand file; keep sorted.
	root.AddCommand(
		newApprovalsCmd(),
		newApproveCmd(),
		newApproverCmd(),
		newAttestCmd(),
		newAuditCmd(),
		newAuditorCmd(),
		newCACmd(),
		newDemoCmd(),
		newEnrollCmd(),
		newEntryCmd(),
		newFederationCmd(),
		newGateCmd(),
		newGatesCmd(),
		newIncidentCmd(),
		newIntentCmd(),
		newInventoryCmd(),
		newJWTSVIDCmd(),
		newKillSwitchCmd(),
		newPolicyCmd(),
		newServerCmd(),
		newStatusCmd(),
		newTokenCmd(),
		newTrustCmd("quarantine", "Quarantine an agent: reads go on, audited; policy restricts the rest"),
		newTrustCmd("restore", "Lift a quarantine, suspension or identity revocation"),
		newTrustCmd("revoke", "Revoke an identity (or one certificate serial): no renewal, refused by every gate"),
		newTrustShowCmd(),
		newTrustCmd("suspend", "Suspend an agent: no renewal, every call refused"),
		newVersionCmd(),
		newWitnessCmd(),
		newZoneCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "warden dev")
		},
	}
}
