package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/truststate"
)

func newTrustShowCmd() *cobra.Command {
	var af adminFlags
	cmd := &cobra.Command{
		Use:   "trust-state",
		Short: "Fetch, verify and print the current signed trust state",
		Long: `Fetch the control plane's current trust state, verify its signature against the trust
bundle exactly as a gate does (docs/trust-state.md), and print it as JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			signed, err := c.TrustState(cmd.Context())
			if err != nil {
				return err
			}
			adminDir := filepath.Join(af.dataDir, "admin")
			src, err := adminBundle(adminDir)
			if err != nil {
				return err
			}
			doc, err := truststate.Verify(signed, src, src.TrustDomain(), time.Now())
			if err != nil {
				return exitCode(1, fmt.Errorf("the trust state does not verify: %w", err))
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(doc)
		},
	}
	af.register(cmd)
	return cmd
}

// adminBundle loads the trust bundle kept beside the admin credential.
func adminBundle(adminDir string) (*x509bundle.Bundle, error) {
	sv, err := loadAdminSVID(adminDir)
	if err != nil {
		return nil, err
	}
	return x509bundle.Load(sv.ID.TrustDomain(), filepath.Join(adminDir, "bundle.pem"))
}

func loadAdminSVID(adminDir string) (*x509svid.SVID, error) {
	return x509svid.Load(filepath.Join(adminDir, "admin.pem"), filepath.Join(adminDir, "admin_key.pem"))
}
