package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "demo [--data-dir DIR]",
		Short: "Run the supply-chain story end to end on the embedded store",
		Long: `Run the whole supply-chain story: a control plane on the embedded store, the agents
demand-planner, procurement, vendor-portal, logistics, compliance and payment-release enrolled
with real SVIDs and TPM evidence (one simulated TPM 2.0 each), their workflows, and the
attacks of the threat model, including tampered binaries, a replayed quote and a quote from
another TPM. Writes
DIR/report.json and prints the same as a table; exits 0 only when every step's observed
outcome equals its expected one. Without --data-dir it uses a temporary directory that is
removed afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := dataDir
			if dir == "" {
				tmp, err := os.MkdirTemp("", "warden-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			}
			rep, err := demo.Run(cmd.Context(), demo.Config{DataDir: dir, Out: cmd.OutOrStdout()})
			if err != nil {
				return err
			}
			if !rep.OK {
				return exitCode(1, errors.New("demo: some steps did not behave as expected (see the table)"))
			}
			if dataDir != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "report: %s/report.json\n", dataDir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "keep the demo's data (server, agents' credentials, report.json) here")
	return cmd
}
