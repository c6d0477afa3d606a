package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/sdk"
)

func newEnrollCmd() *cobra.Command {
	var (
		serverURL, token, out, keyType string
		watch                          bool
		tf                             enrollTPMFlags
	)
	cmd := &cobra.Command{
		Use:   "enroll --server URL --token TOKEN --out DIR [--watch]",
		Short: "Enrol this agent: generate a key here, exchange the join token for an X509-SVID",
		Long: `Enrol this agent with the control plane.

The key pair is generated here and never leaves this process; the join token also pins the
server's root CA, so the first connection is authenticated. Writes DIR/svid.pem (leaf, then
intermediates), DIR/svid_key.pem (0600) and DIR/bundle.pem. With --watch it keeps running
and renews at half-life (with jitter) over mTLS with the current SVID, replacing the files
atomically; it exits non-zero when renewal is refused (revoked, suspended, unknown).
The token may also come from the WARDEN_JOIN_TOKEN environment variable, which keeps it
out of the process list.

With --tpm the agent attests: its EK and AK are proven to share one TPM (credential
activation), --binary (and --config, --manifest) are measured into PCR 23 and quoted over
the server's nonce, with --provenance attached. With --watch every renewal carries a fresh
quote, and a challenge pushed by the control plane (warden attest challenge) makes it
re-attest at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if token == "" {
				token = os.Getenv("WARDEN_JOIN_TOKEN")
			}
			if token == "" {
				return exitCode(2, fmt.Errorf("--token (or WARDEN_JOIN_TOKEN) is required"))
			}
			ecfg := sdk.EnrollConfig{ServerURL: serverURL, Token: strings.TrimSpace(token), KeyType: sdk.KeyType(keyType)}
			tpm, err := tf.open()
			if err != nil {
				return err
			}
			if tpm != nil {
				defer tpm.Close()
				ecfg.Attester = tpm
			}
			svid, bundle, err := sdk.Enroll(ctx, ecfg)
			if err != nil {
				if r := sdk.AttestationReason(err); r != "" {
					return exitCode(1, fmt.Errorf("enrolment refused: attestation %s: %w", r, err))
				}
				return err
			}
			if err := sdk.WriteFiles(out, svid, bundle); err != nil {
				return err
			}
			leaf := svid.Certificates[0]
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled %s, SVID valid until %s, files in %s\n", svid.ID, leaf.NotAfter.Format("2006-01-02T15:04:05Z07:00"), out)
			if !watch {
				return nil
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			scfg := sdk.SourceConfig{ServerURL: serverURL, SVID: svid, Bundle: bundle, Dir: out, KeyType: sdk.KeyType(keyType), Logger: log}
			if tpm != nil {
				scfg.Attester = tpm
			}
			src, err := sdk.NewSource(scfg)
			if err != nil {
				return err
			}
			return src.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&serverURL, "server", os.Getenv("WARDEN_SERVER"), "control plane URL, e.g. https://127.0.0.1:8443")
	f.StringVar(&token, "token", "", "one-time join token")
	f.StringVar(&out, "out", "", "directory for svid.pem, svid_key.pem, bundle.pem")
	f.StringVar(&keyType, "key-type", string(sdk.KeyECDSAP256), "workload key: ecdsa-p256 | ed25519")
	f.BoolVar(&watch, "watch", false, "keep running and renew at half-life")
	tf.register(cmd)
	_ = cmd.MarkFlagRequired("server")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
