package cli

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/federation"
)

func newFederationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "federation",
		Short: "Federate with other SPIFFE trust domains (partners, SPIRE deployments)",
		Long: `SPIFFE federation (docs/federation.md): accept the SVIDs of another trust domain at every
gate of this one, with that trust domain's bundle fetched from its bundle endpoint and
kept fresh by the control plane. A relationship is one-way; the partner adds one for this
trust domain on its side (its bundle endpoint URL: this server's /v1/bundle, profile
https_spiffe with endpoint SPIFFE ID spiffe://TD/warden/server, or the https_web listener).`,
	}
	cmd.AddCommand(newFederationAddCmd(), newFederationListCmd(), newFederationRemoveCmd(), newFederationBundleCmd())
	return cmd
}

func newFederationAddCmd() *cobra.Command {
	var af adminFlags
	var req api.FederationRequest
	var bundleFile string
	cmd := &cobra.Command{
		Use:   "add TRUST_DOMAIN --endpoint URL --profile https_spiffe|https_web [--endpoint-spiffe-id ID] [--bundle FILE]",
		Short: "Federate with a trust domain: fetch its bundle now, keep it fresh, let gates accept its SVIDs",
		Long: `Add a federation relationship. The server fetches the trust domain's bundle before it
answers; the relationship is refused (federation_fetch_failed) when the endpoint cannot be
reached or authenticated.

https_spiffe: the endpoint presents an X509-SVID with --endpoint-spiffe-id. When that ID is
in TRUST_DOMAIN (a self-serving endpoint, e.g. a SPIRE server or another Warden) --bundle is
required: the trust domain's bundle, obtained out of band, authenticates the first fetch
(a SPIFFE bundle JSON document, or PEM certificates).
https_web: the endpoint presents a Web PKI certificate for the URL's host.

--role, --class and --zone are the policy attributes of the trust domain's agents where a
gate's peers: configuration does not name them (docs/gate.md); without a role a gate refuses
them as unknown_peer.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.TrustDomain = args[0]
			if bundleFile != "" {
				td, err := spiffeid.TrustDomainFromString(req.TrustDomain)
				if err != nil {
					return exitCode(2, err)
				}
				if req.Bundle, err = readBundleFile(td, bundleFile); err != nil {
					return exitCode(2, err)
				}
			}
			c, err := af.client()
			if err != nil {
				return err
			}
			out, err := c.AddFederation(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "federated with %s (%s %s): %d X.509 and %d JWT authorities, trust state version %d\n",
				out.TrustDomain, out.Profile, out.EndpointURL, out.X509Authorities, out.JWTAuthorities, out.Version)
			return nil
		},
	}
	af.register(cmd)
	f := cmd.Flags()
	f.StringVar(&req.EndpointURL, "endpoint", "", "bundle endpoint URL (https)")
	f.StringVar(&req.Profile, "profile", "", "endpoint profile: https_spiffe or https_web")
	f.StringVar(&req.EndpointSPIFFEID, "endpoint-spiffe-id", "", "SPIFFE ID the endpoint presents (https_spiffe)")
	f.StringVar(&bundleFile, "bundle", "", "the trust domain's bundle to start from: SPIFFE bundle JSON or PEM certificates")
	f.StringVar(&req.Role, "role", "", "policy role of the trust domain's agents (e.g. carrier)")
	f.StringVar(&req.Class, "class", "", "class of the trust domain's agents: read-only | advisory | transactional | regulated")
	f.StringVar(&req.Zone, "zone", "", "zone of the trust domain's agents")
	f.StringVar(&req.Reason, "reason", "", "why (recorded in the audit log)")
	_ = cmd.MarkFlagRequired("endpoint")
	_ = cmd.MarkFlagRequired("profile")
	return cmd
}

// readBundleFile reads a bundle to start a relationship from: a SPIFFE bundle document
// (SPIFFE Federation §5.2.2.2: MUST be supported) or PEM certificates (MAY).
func readBundleFile(td spiffeid.TrustDomain, path string) (json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > federation.MaxBundleSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, federation.MaxBundleSize)
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		if _, err := federation.ParseBundle(td, b); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return b, nil
	}
	sb := spiffebundle.New(td)
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		sb.AddX509Authority(c)
	}
	if len(sb.X509Authorities()) == 0 {
		return nil, fmt.Errorf("%s: neither a SPIFFE bundle (JSON) nor PEM certificates", path)
	}
	return sb.Marshal()
}

func newFederationListCmd() *cobra.Command {
	var af adminFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List federation relationships and the state of their bundles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			list, err := c.ListFederation(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TRUST DOMAIN\tPROFILE\tENDPOINT\tROLE\tX509\tJWT\tREFRESHED\tLAST ERROR")
			for _, f := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", f.TrustDomain, f.Profile, f.EndpointURL, f.Role,
					f.X509Authorities, f.JWTAuthorities, f.RefreshedAt.Format(time.RFC3339), f.LastError)
			}
			return tw.Flush()
		},
	}
	af.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newFederationRemoveCmd() *cobra.Command {
	var af adminFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "remove TRUST_DOMAIN [--reason TEXT]",
		Short: "End a federation relationship: every gate refuses the trust domain's SVIDs within a second",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			v, err := c.RemoveFederation(cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "federation with %s removed: trust state version %d\n", args[0], v)
			return nil
		},
	}
	af.register(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	return cmd
}

func newFederationBundleCmd() *cobra.Command {
	var af adminFlags
	var out string
	cmd := &cobra.Command{
		Use:   "bundle [--out FILE]",
		Short: "Print this trust domain's SPIFFE bundle, for a partner to start a relationship with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, c.BaseURL+api.PathBundle, nil)
			if err != nil {
				return err
			}
			res, err := c.HTTP.Do(req)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			b, err := io.ReadAll(io.LimitReader(res.Body, federation.MaxBundleSize))
			if err != nil {
				return err
			}
			if res.StatusCode != http.StatusOK {
				return errors.New("bundle: " + res.Status)
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(append(b, '\n'))
				return err
			}
			return os.WriteFile(out, b, 0o644)
		},
	}
	af.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "write to FILE instead of standard output")
	return cmd
}
