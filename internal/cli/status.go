package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/truststate"
)

func newStatusCmd() *cobra.Command {
	var af adminFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "What is in force: kill switches, incident, zones, agent states, policy revision — since when, by whom",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return exitCode(1, err)
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return exitCode(1, err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return printStatus(cmd.OutOrStdout(), st, time.Now())
		},
	}
	af.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339) + " (" + now.Sub(t).Round(time.Second).String() + " ago)"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printStatus(w io.Writer, st api.Status, now time.Time) error {
	fmt.Fprintf(w, "trust state: version %d, issued %s\n", st.TrustStateVersion, ago(st.IssuedAt, now))
	fmt.Fprintf(w, "policy revision: %s\n", orDash(st.PolicyRevision))
	if in := st.Incident; in != nil {
		where := "everywhere"
		if in.Zone != "" {
			where = "zone " + in.Zone
		}
		fmt.Fprintf(w, "incident: IN FORCE (%s) since %s by %s: %s; responders: %s\n", where, ago(in.Since, now),
			orDash(in.Actor.String()), in.Reason, orDash(strings.Join(st.Responders, ", ")))
	} else {
		fmt.Fprintln(w, "incident: none")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(st.KillSwitches) == 0 {
		fmt.Fprintln(w, "kill switches: none engaged")
	} else {
		fmt.Fprintf(w, "kill switches: %d engaged\n", len(st.KillSwitches))
		fmt.Fprintln(tw, "  ID\tSCOPE\tVALUE\tSINCE\tBY\tEXPIRES\tREASON")
		for _, k := range st.KillSwitches {
			exp := "-"
			if !k.Expires.IsZero() {
				exp = k.Expires.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(k.ID), k.Scope, k.Value, ago(k.At, now), orDash(k.Actor.String()), exp, k.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(st.Zones) == 0 {
		fmt.Fprintln(w, "zones: all normal")
	} else {
		fmt.Fprintln(w, "zones:")
		fmt.Fprintln(tw, "  ZONE\tSTATE\tMAX STALENESS\tSINCE\tBY\tREASON")
		for _, n := range slices.Sorted(maps.Keys(st.Zones)) {
			z := st.Zones[n]
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", n, truststate.NormalZoneState(z.State), orDash(z.MaxStaleness), ago(z.Since, now), orDash(z.Actor.String()), orDash(z.Reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(st.Agents) == 0 {
		fmt.Fprintln(w, "agents: all active")
	} else {
		fmt.Fprintln(w, "agents not active:")
		fmt.Fprintln(tw, "  SPIFFE ID\tSTATUS\tSINCE\tREASON")
		for _, id := range slices.Sorted(maps.Keys(st.Agents)) {
			a := st.Agents[id]
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", id, a.Status, ago(a.Since, now), a.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "revoked: %d identities, %d serials; pending re-attestation challenges: %d\n", st.RevokedIDs, st.RevokedSerials, len(st.Challenges))
	return nil
}
