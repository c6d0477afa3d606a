package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/warden-a2a/warden/sdk"
)

func newJWTSVIDCmd() *cobra.Command {
	var (
		aud               []string
		ttl               time.Duration
		svidDir, server   string
		workloadAPI, form string
	)
	cmd := &cobra.Command{
		Use:   "jwt-svid --aud AUDIENCE (--svid-dir DIR --server URL | --workload-api unix:///PATH)",
		Short: "Print a JWT-SVID of this workload for an audience",
		Long: `Print a JWT-SVID (ES256, sub = this workload's SPIFFE ID) for the given audience.

With --svid-dir the SVID files written by warden enroll authenticate the request to the
control plane (POST /v1/jwt-svid over mTLS). With --workload-api the token comes from a
SPIFFE Workload API socket (warden enroll --watch --workload-api, docs/workload-api.md).
Anyone can verify it with the control plane's JWKS or OIDC discovery document
(docs/identity.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if len(aud) == 0 {
				return exitCode(2, errors.New("--aud is required"))
			}
			var sv *jwtsvid.SVID
			if svidDir != "" && cmd.Flags().Changed("workload-api") {
				return exitCode(2, errors.New("give one of --svid-dir or --workload-api"))
			}
			switch {
			case svidDir == "" && workloadAPI != "":
				if ttl != 0 {
					return exitCode(2, errors.New("--ttl is not part of the Workload API; the agent chooses"))
				}
				var err error
				sv, err = workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: aud[0], ExtraAudiences: aud[1:]}, workloadapi.WithAddr(workloadAPI))
				if err != nil {
					return fmt.Errorf("workload api: %w", err)
				}
			case svidDir != "":
				if server == "" {
					return exitCode(2, errors.New("--svid-dir needs --server"))
				}
				svid, bundle, err := sdk.LoadFiles(svidDir)
				if err != nil {
					return err
				}
				src, err := sdk.NewSource(sdk.SourceConfig{ServerURL: server, SVID: svid, Bundle: bundle})
				if err != nil {
					return err
				}
				defer src.HTTPClient().CloseIdleConnections()
				if sv, err = src.FetchJWTSVID(ctx, aud, ttl); err != nil {
					return err
				}
			default:
				return exitCode(2, errors.New("give --svid-dir or --workload-api (or set SPIFFE_ENDPOINT_SOCKET)"))
			}
			switch form {
			case "token":
				fmt.Fprintln(cmd.OutOrStdout(), sv.Marshal())
			case "text":
				fmt.Fprintf(cmd.OutOrStdout(), "spiffe_id: %s\naudience: %v\nexpires_at: %s\ntoken: %s\n", sv.ID, sv.Audience, sv.Expiry.Format(time.RFC3339), sv.Marshal())
			default:
				return exitCode(2, fmt.Errorf("--format %q: token or text", form))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&aud, "aud", nil, "audience (repeat for more than one; one is strongly recommended)")
	f.DurationVar(&ttl, "ttl", 0, "lifetime (default 5m, at most 1h; --svid-dir only)")
	f.StringVar(&svidDir, "svid-dir", "", "directory with svid.pem, svid_key.pem, bundle.pem (warden enroll --out)")
	f.StringVar(&server, "server", os.Getenv("WARDEN_SERVER"), "control plane URL (with --svid-dir)")
	f.StringVar(&workloadAPI, "workload-api", os.Getenv("SPIFFE_ENDPOINT_SOCKET"), "SPIFFE Workload API address, e.g. unix:///run/warden/agent.sock")
	f.StringVar(&form, "format", "token", "token (the JWT alone) or text")
	return cmd
}
