package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/truststate"
)

func newZoneCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "zone", Short: "Set a zone's state and the trust-state age its gates accept"}
	var af adminFlags
	var req api.ZoneRequest
	var staleness time.Duration
	set := &cobra.Command{
		Use:   "set NAME --state normal|degraded|quarantined|offline [--max-staleness D] --reason TEXT",
		Short: "normal; degraded: regulated actions from it refused; quarantined: only reads from it; offline: nothing from it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("max-staleness") {
				req.MaxStaleness = staleness.String()
			}
			c, err := af.client()
			if err != nil {
				return exitCode(1, err)
			}
			out, err := c.SetZone(cmd.Context(), args[0], req)
			if err != nil {
				return exitCode(1, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "zone %s %s: trust state version %d\n", args[0], truststate.NormalZoneState(req.State), out.Version)
			return nil
		},
	}
	af.register(set)
	set.Flags().StringVar(&req.State, "state", "", strings.Join(truststate.ZoneStates, " | "))
	set.Flags().DurationVar(&staleness, "max-staleness", 0, "the oldest trust state the zone's gates act on (0 removes the bound; default: unchanged)")
	set.Flags().StringVar(&req.Reason, "reason", "", "why (recorded in the trust state and the audit log)")
	operatorFlag(set, &req.Operator)
	_ = set.MarkFlagRequired("state")
	_ = set.MarkFlagRequired("reason")
	cmd.AddCommand(set)
	return cmd
}
