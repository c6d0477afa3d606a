package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newCACmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "The trust domain's certificate authority",
	}
	var af adminFlags
	var reason string
	rotate := &cobra.Command{
		Use:   "rotate --reason TEXT",
		Short: "Replace the intermediate CA now (the server also does it with a third of its year left)",
		Long: `Replace the intermediate CA now: a new key and certificate signed by the root. Every
SVID from then on is signed by the new intermediate; SVIDs already issued stay valid until
they expire (at most 24 h), since the trust bundle is the root alone. Revoke identities or
serials as well if the old intermediate key is suspected. The rotation is a ca_rotation
audit event carrying the reason (docs/identity.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			res, err := c.RotateCA(cmd.Context(), reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "intermediate CA %s (until %s) replaces %s\n", res.Serial, res.NotAfter.UTC().Format(time.RFC3339), res.PreviousSerial)
			return nil
		},
	}
	af.register(rotate)
	rotate.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	_ = rotate.MarkFlagRequired("reason")
	cmd.AddCommand(rotate)
	return cmd
}
