package cli

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/intent"
)

func newAuditShowCmd() *cobra.Command {
	var (
		f            auditFlags
		verifyIntent bool
		bundlePath   string
	)
	cmd := &cobra.Command{
		Use:   "show ID [--verify-intent]",
		Short: "Print one event; --verify-intent re-verifies the caller's signed intent it carries",
		Long: `Print the audit event with this id (its canonical bytes, indented, and its index).

With --verify-intent, re-verify a decision event's evidence offline, as a third party
would years later (docs/audit-events.md, "Evidence in a decision"): the caller's
certificate chain recorded in the event verifies as an X509-SVID against the trust bundle
at the event's time, its SPIFFE ID is the caller and its SHA-256 is caller_cert_sha256;
the recorded intent (compact JWS) is signed by that certificate's key and bound to it
(cnf x5t#S256); the decision time lies in the intent's window; and the event's callee,
intent_jti, action, resource and workflow are what the caller signed. Exits 1 with
"FAIL: ..." naming the first check that fails.

The trust bundle is --bundle (PEM), else DATA_DIR/ca/root.pem, else
DATA_DIR/admin/bundle.pem; give the bundle in force at the event's time if the root has
been replaced since.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, db, err := f.open(cmd.Context())
			if err != nil {
				return exitCode(1, err)
			}
			defer db.Close()
			rec, err := st.Lookup(cmd.Context(), args[0])
			if err != nil {
				return exitCode(1, err)
			}
			out := cmd.OutOrStdout()
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, rec.Data, "", "  "); err != nil {
				return exitCode(1, fmt.Errorf("record %d: %w", rec.Index, err))
			}
			fmt.Fprintf(out, "index %d\n%s\n", rec.Index, pretty.Bytes())
			if !verifyIntent {
				return nil
			}
			ev, err := audit.ParseEvent(rec.Data)
			if err != nil {
				return exitCode(1, fmt.Errorf("record %d: %w", rec.Index, err))
			}
			if bundlePath == "" {
				bundlePath = filepath.Join(f.dataDir, "ca", "root.pem")
				if _, err := os.Stat(bundlePath); err != nil {
					bundlePath = filepath.Join(f.dataDir, "admin", "bundle.pem")
				}
			}
			if err := verifyRecordedIntent(out, ev, bundlePath); err != nil {
				fmt.Fprintf(out, "FAIL: %v\n", err)
				return exitCode(1, nil)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&verifyIntent, "verify-intent", false, "re-verify the caller's signed intent the decision event carries")
	cmd.Flags().StringVar(&bundlePath, "bundle", "", "trust bundle (PEM roots) in force at the event's time (default DATA_DIR/ca/root.pem)")
	return cmd
}

// verifyRecordedIntent checks the evidence of a decision event (see newAuditShowCmd) and
// writes what it checked to w, ending with an "OK: ..." line; the error names the first
// check that failed.
func verifyRecordedIntent(w io.Writer, ev audit.Event, bundlePath string) error {
	if ev.Kind != audit.KindDecision {
		return fmt.Errorf("event %s is a %s event, not a decision", ev.ID, ev.Kind)
	}
	if ev.Intent == "" || len(ev.CallerChain) == 0 {
		return errors.New("the event carries no signed intent and caller chain (refused before its intent verified, or written before they were recorded)")
	}
	chain := make([]*x509.Certificate, len(ev.CallerChain))
	for i, b64 := range ev.CallerChain {
		der, err := base64.StdEncoding.DecodeString(b64)
		if err == nil {
			chain[i], err = x509.ParseCertificate(der)
		}
		if err != nil {
			return fmt.Errorf("caller_chain[%d] is not a certificate: %v", i, err)
		}
	}
	leaf := chain[0]
	sum := sha256.Sum256(leaf.Raw)
	if hex.EncodeToString(sum[:]) != ev.CallerCertSHA256 {
		return errors.New("the leaf of caller_chain is not the certificate caller_cert_sha256 names")
	}
	claimed, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return fmt.Errorf("the caller's leaf is not an X509-SVID: %v", err)
	}
	bundle, err := x509bundle.Load(claimed.TrustDomain(), bundlePath)
	if err != nil {
		return fmt.Errorf("trust bundle: %v", err)
	}
	id, _, err := x509svid.Verify(chain, bundle, x509svid.WithTime(ev.Time))
	if err != nil {
		return fmt.Errorf("the caller's certificate does not verify against %s at %s: %v", bundlePath, ev.Time.Format(time.RFC3339), err)
	}
	if id.String() != ev.Caller {
		return fmt.Errorf("the certificate is %s's, the event names caller %s", id, ev.Caller)
	}
	fmt.Fprintf(w, "caller certificate: %s, serial %s, valid %s to %s: an X509-SVID of %s at %s (SHA-256 = caller_cert_sha256)\n",
		id, hex.EncodeToString(leaf.SerialNumber.Bytes()), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339),
		bundlePath, ev.Time.UTC().Format(time.RFC3339Nano))
	c, err := intent.VerifyRecorded(ev.Intent, leaf, ev.Time)
	if err != nil {
		return fmt.Errorf("intent: %v", err)
	}
	for _, m := range []struct{ name, event, signed string }{
		{"callee (aud)", ev.Callee, c.Audience},
		{"intent_jti (jti)", ev.IntentJTI, c.ID},
		{"action (act)", ev.Action, c.Action},
		{"resource (res)", ev.Resource, c.Resource},
		{"workflow_id (wf)", ev.WorkflowID, c.Workflow},
	} {
		if m.event != m.signed {
			return fmt.Errorf("the event's %s is %q, the caller signed %q", m.name, m.event, m.signed)
		}
	}
	fmt.Fprintf(w, "intent: signed by that certificate's key, bound to it (cnf x5t#S256), issued %s, expires %s; aud, jti, act, res, wf equal the event's\n",
		time.Unix(c.IssuedAt, 0).UTC().Format(time.RFC3339), time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "body digest (bdy) %s: the body itself is not in the log\n", c.BodyDigest)
	fmt.Fprintf(w, "OK: %s signed %s on %s for %s (decision %s: %s)\n", c.Issuer, c.Action, c.Resource, c.Audience, ev.ID, ev.Decision)
	return nil
}
