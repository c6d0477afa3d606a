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
		Long: `Run the whole supply-chain story against the product, as an operator runs it: this
binary starts ` + "`warden server`" + `, one ` + "`warden enroll --watch --tpm sim`" + ` per agent (demand-planner,
procurement, vendor-portal, logistics, compliance, payment-release, each with its own simulated
TPM 2.0) and a ` + "`warden gate --config DIR/gates/NAME/gate.yaml`" + ` per gate as child processes,
with unmodified a2a-go agents on unix sockets behind the gates; the policy is pushed
centrally (warden policy push) and every gate follows it. Then the workflows, live
operation (incident, kill switch, policy pushes, stale evidence, replayed workflow steps)
and the attacks of the threat model, each step printed with its equivalent commands.

DIR holds what a deployment holds (docs/operator-guide.md, "The demo's deployment"):
server/ (the control plane's data), agents/NAME/ (SVID files), gates/NAME/gate.yaml,
policies/ (and the variants the live rows push), policy-key.pem, catalog.yaml, logs/NAME.log of every child, and report.json with every step and
its commands. Exits 0 only when every step's observed outcome equals its expected one.
Children are stopped on exit and on Ctrl-C. Without --data-dir it uses a temporary
directory that is removed afterwards.`,
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
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "keep the demo's deployment here (server, agents, gates, logs, report.json)")
	return cmd
}
