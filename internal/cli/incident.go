package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/internal/api"
)

func newIncidentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "incident",
		Short: "Start or end incident mode: transactional and regulated actions only for responders; reads go on",
	}
	for _, op := range []string{"start", "end"} {
		cmd.AddCommand(newIncidentOpCmd(op))
	}
	return cmd
}

func newIncidentOpCmd(op string) *cobra.Command {
	var af adminFlags
	var req api.IncidentRequest
	cmd := &cobra.Command{
		Use:   op + " --reason TEXT",
		Short: map[string]string{"start": "Declare an incident (everywhere, or in one --zone)", "end": "End the incident in force"}[op],
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return exitCode(1, err)
			}
			out, err := c.Incident(cmd.Context(), op, req)
			if err != nil {
				return exitCode(1, err)
			}
			what := map[string]string{"start": "incident started", "end": "incident ended"}[op]
			if req.Zone != "" {
				what += " in zone " + req.Zone
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: trust state version %d\n", what, out.Version)
			return nil
		},
	}
	af.register(cmd)
	cmd.Flags().StringVar(&req.Reason, "reason", "", "why (recorded in the trust state and the audit log)")
	operatorFlag(cmd, &req.Operator)
	if op == "start" {
		cmd.Flags().StringSliceVar(&req.Responders, "responders", nil, "agents (SPIFFE IDs or names) that may still act, comma-separated")
		cmd.Flags().StringVar(&req.Zone, "zone", "", "limit the incident to one zone (its agents and its gates)")
	}
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}
