package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
)

// adminFlags are shared by every command that calls the admin API.
type adminFlags struct{ dataDir, server string }

func (a *adminFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.dataDir, "data-dir", defaultDataDir(), "data directory of the server (its admin/ holds the admin credential)")
	cmd.Flags().StringVar(&a.server, "server", os.Getenv("WARDEN_SERVER"), "server URL (default: DATA_DIR/admin/server_url)")
}

func (a *adminFlags) client() (*adminclient.Client, error) {
	return adminclient.Load(filepath.Join(a.dataDir, "admin"), a.server)
}

func newEntryCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "entry", Short: "Manage registration entries (one per agent identity)"}
	cmd.AddCommand(newEntryCreateCmd(), newEntryListCmd(), newEntryDeleteCmd(), newEntryRefsCmd())
	return cmd
}

func newEntryCreateCmd() *cobra.Command {
	var af adminFlags
	var e api.Entry
	var attrsFile, refsFile string
	cmd := &cobra.Command{
		Use:   "create --name NAME --role ROLE --class CLASS --zone ZONE  |  create --kind gate --name NAME --guards AGENT",
		Short: "Register an agent as spiffe://TRUST_DOMAIN/agent/NAME (or a gate as /gate/NAME)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if attrsFile != "" {
				b, err := os.ReadFile(attrsFile)
				if err != nil {
					return err
				}
				if !json.Valid(b) {
					return fmt.Errorf("%s is not JSON", attrsFile)
				}
				e.Attrs = b
			}
			if refsFile != "" {
				attrs, err := attrsWithRefsFile(e.Attrs, refsFile)
				if err != nil {
					return err
				}
				e.Attrs = attrs
			}
			if e.Guards == "" && (e.Role == "" || e.Class == "") {
				return exitCode(2, fmt.Errorf("--role and --class are required (a gate with --guards takes its agent's)"))
			}
			if e.Guards != "" && !cmd.Flags().Changed("zone") {
				e.Zone = "" // the guarded agent's
			}
			c, err := af.client()
			if err != nil {
				return err
			}
			out, err := c.CreateEntry(cmd.Context(), e)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.SPIFFEID)
			return nil
		},
	}
	af.register(cmd)
	f := cmd.Flags()
	f.StringVar(&e.Name, "name", "", "agent name ([a-z0-9-], becomes the SPIFFE ID path)")
	f.StringVar(&e.Role, "role", "", "role (forecasting, procurement, shipping, ...)")
	f.StringVar(&e.Class, "class", "", "class: read-only | advisory | transactional | regulated")
	f.StringVar(&e.Zone, "zone", "default", "zone")
	f.StringVar(&e.Kind, "kind", "agent", "agent (spiffe://TD/agent/NAME) or gate (spiffe://TD/gate/NAME: a gate with its own identity)")
	f.StringVar(&e.Guards, "guards", "", "kind gate: the agent (name or SPIFFE ID) this gate stands in front of; its class, role and zone default to the agent's")
	f.StringVar(&attrsFile, "attrs", "", "JSON file of further attributes (owner, ...)")
	f.StringVar(&refsFile, "refs", "", "attestation reference values file (YAML or JSON, as written by warden attest refs)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func newEntryListCmd() *cobra.Command {
	var af adminFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List registration entries with their trust-state status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			entries, err := c.ListEntries(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(entries)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSPIFFE ID\tROLE\tCLASS\tZONE\tSTATUS")
			for _, e := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.SPIFFEID, e.Role, e.Class, e.Zone, e.Status)
			}
			return tw.Flush()
		},
	}
	af.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newEntryDeleteCmd() *cobra.Command {
	var af adminFlags
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an entry and its unused join tokens (issued SVIDs can no longer renew)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			return c.DeleteEntry(cmd.Context(), args[0])
		},
	}
	af.register(cmd)
	return cmd
}

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage one-time join tokens"}
	var af adminFlags
	var entry string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create --entry NAME [--ttl 10m]",
		Short: "Create a one-time join token; it is printed once and stored only as a hash",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			tok, err := c.CreateToken(cmd.Context(), entry, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "join token for %s, valid until %s, usable once\n", tok.Entry, tok.ExpiresAt.Format(time.RFC3339))
			return nil
		},
	}
	af.register(create)
	create.Flags().StringVar(&entry, "entry", "", "entry name")
	create.Flags().DurationVar(&ttl, "ttl", 10*time.Minute, "how long the token stays valid (at most 24h)")
	_ = create.MarkFlagRequired("entry")
	cmd.AddCommand(create)
	return cmd
}

// newTrustCmd builds revoke, quarantine, suspend and restore.
func newTrustCmd(op, short string) *cobra.Command {
	var af adminFlags
	var ch api.TrustChange
	cmd := &cobra.Command{
		Use:   op + " --id SPIFFE_ID --reason TEXT",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			v, err := c.ChangeTrust(cmd.Context(), op, ch)
			if err != nil {
				return err
			}
			target := ch.ID
			if target == "" {
				target = "serial " + ch.Serial
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s: trust state version %d\n", strings.TrimSuffix(op, "e")+"ed", target, v)
			return nil
		},
	}
	af.register(cmd)
	cmd.Flags().StringVar(&ch.ID, "id", "", "SPIFFE ID")
	cmd.Flags().StringVar(&ch.Reason, "reason", "", "why (recorded in the trust state)")
	if op == "revoke" {
		cmd.Flags().StringVar(&ch.Serial, "serial", "", "revoke one certificate by hex serial instead of an identity")
	} else {
		_ = cmd.MarkFlagRequired("id")
	}
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}
