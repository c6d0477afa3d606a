package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/ca"
)

func newAuditorCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "auditor", Short: "Issue read-only auditor credentials (audit search only)"}
	cmd.AddCommand(newAuditorCreateCmd())
	return cmd
}

func newAuditorCreateCmd() *cobra.Command {
	var af adminFlags
	var out string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Issue an auditor credential: an SVID for spiffe://TD/warden/auditor/NAME that may only search the audit log",
		Long: `Issue an auditor credential with the admin credential. The key is made here and never
leaves this machine; the server signs an X509-SVID for spiffe://TRUST_DOMAIN/warden/auditor/NAME
(at most 24 h, default 8 h). OUT (default ./auditor-NAME) gets auditor.pem, auditor_key.pem
(0600), bundle.pem and server_url; hand the directory to the auditor, who runs
'warden audit search --credential OUT'. The server refuses the credential everywhere but
GET /v1/audit/search. Issuing one is an audit event (kind auditor); revoke it early with
'warden revoke --id spiffe://TRUST_DOMAIN/warden/auditor/NAME'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			c, err := af.client()
			if err != nil {
				return err
			}
			if out == "" {
				out = "auditor-" + name
			}
			if _, err := os.Stat(filepath.Join(out, "auditor_key.pem")); err == nil {
				return exitCode(1, fmt.Errorf("%s already holds an auditor credential; choose another --out", out))
			}
			id, err := spiffeid.FromSegments(c.ID.TrustDomain(), "warden", "auditor", name)
			if err != nil {
				return exitCode(1, fmt.Errorf("auditor name %q: %w", name, err))
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return err
			}
			u, _ := url.Parse(id.String())
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{}, URIs: []*url.URL{u}}, key)
			if err != nil {
				return err
			}
			res, err := c.CreateAuditor(cmd.Context(), api.AuditorRequest{Name: name, CSR: csr, TTLSec: int(ttl / time.Second)})
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			for _, f := range []struct {
				name string
				data []byte
			}{
				{"auditor_key.pem", ca.KeyPEM(key)},
				{"auditor.pem", []byte(res.Certificates)},
				{"bundle.pem", []byte(res.Bundle)},
				{"server_url", []byte(c.BaseURL + "\n")},
			} {
				if err := ca.WriteFileAtomic(filepath.Join(out, f.name), f.data, 0o600); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s valid until %s in %s\n", res.SPIFFEID, res.ExpiresAt.Format(time.RFC3339), out)
			return nil
		},
	}
	af.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "directory for the credential (default ./auditor-NAME)")
	cmd.Flags().DurationVar(&ttl, "ttl", 8*time.Hour, "lifetime of the credential (at most 24h)")
	return cmd
}
