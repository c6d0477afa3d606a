package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/internal/api"
)

// operatorFlag registers --operator: the person acting, recorded with the admin
// credential's identity in the trust state and the audit log.
func operatorFlag(cmd *cobra.Command, v *string) {
	def := os.Getenv("WARDEN_OPERATOR")
	if def == "" {
		def = os.Getenv("USER")
	}
	cmd.Flags().StringVar(v, "operator", def, "who is acting (default $WARDEN_OPERATOR, else $USER); recorded with the admin credential")
}

// scopeFlags are the four mutually exclusive kill-switch scopes.
type scopeFlags struct{ action, agent, workflow, zone string }

func (s *scopeFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.action, "action", "", "action, e.g. payment.release (* for every action)")
	f.StringVar(&s.agent, "agent", "", "agent SPIFFE ID or name")
	f.StringVar(&s.workflow, "workflow", "", "workflow name (from the catalog) or workflow id (the intent's wf)")
	f.StringVar(&s.zone, "zone", "", "zone of the calling agents")
	cmd.MarkFlagsMutuallyExclusive("action", "agent", "workflow", "zone")
}

// scope returns the one scope set, or "" when none is.
func (s *scopeFlags) scope() (scope, value string) {
	for _, c := range []struct{ scope, value string }{{"action", s.action}, {"agent", s.agent}, {"workflow", s.workflow}, {"zone", s.zone}} {
		if c.value != "" {
			return c.scope, c.value
		}
	}
	return "", ""
}

func newKillSwitchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "killswitch",
		Short: "Engage or release a kill switch: it beats every permit and exception at every gate",
	}
	cmd.AddCommand(newKillSwitchEngageCmd(), newKillSwitchReleaseCmd())
	return cmd
}

func newKillSwitchEngageCmd() *cobra.Command {
	var af adminFlags
	var sf scopeFlags
	var reason, operator string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "engage --action A | --agent ID | --workflow W | --zone Z --reason TEXT [--ttl D]",
		Short: "Stop every call in one scope at every gate until released (or until --ttl passes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scope, value := sf.scope()
			if scope == "" {
				return exitCode(2, errors.New("killswitch engage: one of --action, --agent, --workflow or --zone is required"))
			}
			if ttl < 0 || ttl%time.Second != 0 {
				return exitCode(2, errors.New("killswitch engage: --ttl must be whole seconds"))
			}
			c, err := af.client()
			if err != nil {
				return exitCode(1, err)
			}
			out, err := c.EngageKillSwitch(cmd.Context(), api.KillSwitchRequest{Scope: scope, Value: value, Reason: reason,
				TTLSec: int64(ttl / time.Second), Operator: operator})
			if err != nil {
				return exitCode(1, err)
			}
			msg := fmt.Sprintf("kill switch %s engaged on %s %s: trust state version %d", out.ID, scope, value, out.Version)
			if ttl > 0 {
				msg += fmt.Sprintf(" (released after %s)", ttl)
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	af.register(cmd)
	sf.register(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the trust state and the audit log)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "release the switch by itself after this long (default: until released)")
	operatorFlag(cmd, &operator)
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func newKillSwitchReleaseCmd() *cobra.Command {
	var af adminFlags
	var sf scopeFlags
	var id, reason, operator string
	cmd := &cobra.Command{
		Use:   "release --id ID | --action A | --agent ID | --workflow W | --zone Z --reason TEXT",
		Short: "Release a kill switch by its id, or every switch on one scope",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scope, value := sf.scope()
			if (id == "") == (scope == "") {
				return exitCode(2, errors.New("killswitch release: name exactly one of --id, --action, --agent, --workflow or --zone"))
			}
			c, err := af.client()
			if err != nil {
				return exitCode(1, err)
			}
			out, err := c.ReleaseKillSwitch(cmd.Context(), api.KillSwitchRelease{ID: id, Scope: scope, Value: value, Reason: reason, Operator: operator})
			if err != nil {
				return exitCode(1, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "kill switch %s released: trust state version %d\n", strings.Join(out.Released, ", "), out.Version)
			return nil
		},
	}
	af.register(cmd)
	sf.register(cmd)
	cmd.Flags().StringVar(&id, "id", "", "kill switch id (ks-..., from engage or warden status)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	operatorFlag(cmd, &operator)
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}
