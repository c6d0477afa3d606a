package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/workload"
	"github.com/warden-a2a/warden/sdk"
)

func newEnrollCmd() *cobra.Command {
	var (
		serverURL, token, out, keyType string
		watch                          bool
		tf                             enrollTPMFlags
		lf                             logFlags
		wf                             workloadAPIFlags
	)
	cmd := &cobra.Command{
		Use:   "enroll --server URL --token TOKEN --out DIR [--watch]",
		Short: "Enrol this agent: generate a key here, exchange the join token for an X509-SVID",
		Long: `Enrol this agent with the control plane.

The key pair is generated here and never leaves this process; the join token also pins the
server's root CA, so the first connection is authenticated. Writes DIR/svid.pem (leaf, then
intermediates), DIR/svid_key.pem (0600) and DIR/bundle.pem. The token may also come from
the WARDEN_JOIN_TOKEN environment variable, which keeps it out of the process list.

With --watch it keeps running and renews at half-life (with jitter) over mTLS with the
current SVID, replacing the files atomically; failed renewals are retried faster as the
SVID's expiry nears. Started with --watch on a DIR that already holds an SVID, it resumes
from those files and does not use the token (remove DIR to enrol anew). If the SVID expired
(a control-plane outage longer than its lifetime), an agent enrolled with --tpm recovers it
with a fresh quote by its enrolled TPM, without a new token; any other agent stops.
--watch exits non-zero, with the reason, when it cannot go on: renewal or recovery refused
(revoked, suspended, unknown, attestation failed), or the SVID expired without a TPM to
recover it (then: warden token create --entry NAME, and enrol again). SIGHUP renews at once.

With --workload-api unix:///PATH (and --watch) it also serves the SPIFFE Workload API on
that socket (docs/workload-api.md): X509-SVIDs with streaming rotation, X.509 and JWT
bundles of this and every federated trust domain, JWT-SVIDs minted by the control plane.
Only processes matching --workload-uid / --workload-gid / --workload-path (the kernel's
SO_PEERCRED record and /proc/PID/exe) get anything; others get PermissionDenied.

With --tpm the agent attests: its EK and AK are proven to share one TPM (credential
activation), --binary (and --config, --manifest) are measured into PCR 23 and quoted over
the server's nonce, with --provenance attached. With --watch every renewal carries a fresh
quote, and a challenge pushed by the control plane (warden attest challenge) makes it
re-attest at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := wf.check(watch); err != nil {
				return exitCode(2, err)
			}
			log, err := lf.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if token == "" {
				token = os.Getenv("WARDEN_JOIN_TOKEN")
			}
			var resume *x509svid.SVID
			var resumeBundle *x509bundle.Bundle
			if watch {
				resume, resumeBundle, _ = sdk.LoadFiles(out)
			}
			if resume == nil && token == "" {
				return exitCode(2, fmt.Errorf("--token (or WARDEN_JOIN_TOKEN) is required, unless --watch resumes from an SVID in --out"))
			}
			tpm, err := tf.open()
			if err != nil {
				return err
			}
			if tpm != nil {
				defer tpm.Close()
			}
			svid, bundle := resume, resumeBundle
			if resume != nil {
				leaf := svid.Certificates[0]
				log.Info("resuming from the SVID in --out; the join token is not used (remove the directory to enrol anew)",
					"dir", out, "spiffe_id", svid.ID.String(), "expires_at", leaf.NotAfter)
			} else {
				ecfg := sdk.EnrollConfig{ServerURL: serverURL, Token: strings.TrimSpace(token), KeyType: sdk.KeyType(keyType)}
				if tpm != nil {
					ecfg.Attester = tpm
				}
				if svid, bundle, err = sdk.Enroll(ctx, ecfg); err != nil {
					if r := sdk.AttestationReason(err); r != "" {
						return exitCode(1, fmt.Errorf("enrolment refused: attestation %s: %w", r, err))
					}
					return exitCode(1, fmt.Errorf("enrolment failed: %w", err))
				}
				if err := sdk.WriteFiles(out, svid, bundle); err != nil {
					return err
				}
				leaf := svid.Certificates[0]
				fmt.Fprintf(cmd.OutOrStdout(), "enrolled %s, SVID valid until %s, files in %s\n", svid.ID, leaf.NotAfter.Format("2006-01-02T15:04:05Z07:00"), out)
			}
			if !watch {
				return nil
			}
			scfg := sdk.SourceConfig{ServerURL: serverURL, SVID: svid, Bundle: bundle, Dir: out, KeyType: sdk.KeyType(keyType), Logger: log}
			if tpm != nil {
				scfg.Attester = tpm
			}
			var rotated workload.Notifier // the Workload API's streams, when served
			scfg.OnRotate = func(*x509svid.SVID) { rotated.Notify() }
			src, err := sdk.NewSource(scfg)
			if err != nil {
				return err
			}
			onSIGHUP(ctx, func() {
				log.Info("SIGHUP: renewing now")
				if err := src.Renew(ctx); err != nil {
					log.Warn("renewal on SIGHUP failed; the schedule goes on", "err", err)
				}
			})
			run := src.Run
			if wf.addr != "" { // and the Workload API on its socket
				run = func(ctx context.Context) error { return wf.serve(ctx, src, serverURL, &rotated, log) }
			}
			if err := run(ctx); err != nil {
				if r := sdk.AttestationReason(err); r != "" {
					err = fmt.Errorf("attestation %s: %w", r, err)
				}
				return exitCode(1, fmt.Errorf("enroll --watch cannot go on: %w", err))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&serverURL, "server", os.Getenv("WARDEN_SERVER"), "control plane URL, e.g. https://127.0.0.1:8443")
	f.StringVar(&token, "token", "", "one-time join token")
	f.StringVar(&out, "out", "", "directory for svid.pem, svid_key.pem, bundle.pem")
	f.StringVar(&keyType, "key-type", string(sdk.KeyECDSAP256), "workload key: ecdsa-p256 | ed25519")
	f.BoolVar(&watch, "watch", false, "keep running: renew at half-life, recover with --tpm after an outage, exit non-zero when refused")
	tf.register(cmd)
	lf.register(cmd)
	wf.register(cmd)
	_ = cmd.MarkFlagRequired("server")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
