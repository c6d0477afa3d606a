package cli

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/sdk"
)

// newIntentCmd: warden intent sign|verify, for operators and for anyone writing
// another implementation of docs/intent-spec.md.
func newIntentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "intent",
		Short: "Sign and verify intents (compact JWS bound to a body and a certificate)",
	}
	cmd.AddCommand(newIntentSignCmd(), newIntentVerifyCmd())
	return cmd
}

func newIntentSignCmd() *cobra.Command {
	var keyFile, certFile, bodyFile, now string
	var in sdk.Intent
	cmd := &cobra.Command{
		Use:   "sign --key KEY.pem --cert CERT.pem --aud SPIFFE_ID --act ACTION --body FILE",
		Short: "Print the compact JWS of an intent on stdout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := readKey(keyFile)
			if err != nil {
				return exitCode(1, err)
			}
			cert, err := readCert(certFile)
			if err != nil {
				return exitCode(1, err)
			}
			body, err := readBody(bodyFile)
			if err != nil {
				return exitCode(1, err)
			}
			t, err := parseNow(now)
			if err != nil {
				return exitCode(1, err)
			}
			tok, err := sdk.SignIntent(cert, key, in, body, t)
			if err != nil {
				return exitCode(1, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyFile, "key", "", "PEM private key of the workload (PKCS#8 Ed25519 or P-256, or SEC 1 EC)")
	f.StringVar(&certFile, "cert", "", "PEM X509-SVID of the workload (first certificate is the leaf)")
	f.StringVar(&in.Audience, "aud", "", "SPIFFE ID of the receiving agent")
	f.StringVar(&in.Action, "act", "", "action, e.g. purchase_order.create")
	f.StringVar(&in.Resource, "res", "", "resource")
	f.StringVar(&in.Workflow, "wf", "", "workflow id")
	f.StringVar(&in.Purpose, "purpose", "", "purpose")
	f.StringSliceVar(&in.Scope, "scope", nil, "scope entries (repeat or comma-separate)")
	f.StringVar(&in.Approval, "apr", "", "approval id")
	f.DurationVar(&in.TTL, "ttl", sdk.DefaultIntentTTL, "lifetime (whole seconds)")
	f.StringVar(&bodyFile, "body", "", "file holding the exact HTTP body ('-' for stdin, empty file for no body)")
	f.StringVar(&now, "now", "", "signing time, Unix seconds or RFC 3339 (default: the clock)")
	for _, n := range []string{"key", "cert", "aud", "act", "body"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newIntentVerifyCmd() *cobra.Command {
	var token, certFile, bodyFile, now string
	var cfg intent.Config
	cmd := &cobra.Command{
		Use:   "verify --token TOKEN --cert CERT.pem --aud SPIFFE_ID --body FILE",
		Short: "Verify an intent: exit 0 and print the claims as JSON, or exit 1 and print the reason code",
		Long: "Verify an intent as a gate would, with CERT.pem standing for the client certificate of the\n" +
			"mTLS connection. The replay cache is empty (one process, one token), so replay is not\n" +
			"checked across invocations. The reason code goes to stdout, the detail to stderr.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			refuse := func(err error) error {
				fmt.Fprintln(cmd.OutOrStdout(), intent.ReasonOf(err))
				return exitCode(1, err)
			}
			if token == "-" {
				b, err := os.ReadFile("/dev/stdin")
				if err != nil {
					return exitCode(1, err)
				}
				token = string(b)
			}
			token = strings.TrimSpace(token)
			cert, err := readCert(certFile)
			if err != nil {
				return exitCode(1, err)
			}
			body, err := readBody(bodyFile)
			if err != nil {
				return exitCode(1, err)
			}
			t, err := parseNow(now)
			if err != nil {
				return exitCode(1, err)
			}
			cfg.Replay = intent.NewMemoryCache(1)
			v, err := intent.NewVerifier(cfg)
			if err != nil {
				return exitCode(1, err)
			}
			c, err := v.Verify(cmd.Context(), token, cert, body, t)
			if err != nil {
				return refuse(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(c.AppendCanonical(nil)))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&token, "token", "", "compact JWS ('-' for stdin)")
	f.StringVar(&certFile, "cert", "", "PEM certificate the sender presented on its mTLS connection")
	f.StringVar(&cfg.Audience, "aud", "", "SPIFFE ID of this (receiving) agent")
	f.StringVar(&bodyFile, "body", "", "file holding the exact HTTP body ('-' for stdin)")
	f.StringVar(&now, "now", "", "verification time, Unix seconds or RFC 3339 (default: the clock)")
	f.DurationVar(&cfg.MaxLifetime, "max-lifetime", intent.DefaultMaxLifetime, "maximum exp - iat")
	f.DurationVar(&cfg.Skew, "skew", intent.DefaultSkew, "clock skew tolerated")
	f.IntVar(&cfg.MaxDelegationDepth, "max-delegation-depth", intent.DefaultMaxDelegationDepth, "dlg hops allowed (negative: none)")
	for _, n := range []string{"token", "cert", "aud", "body"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func parseNow(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--now: want Unix seconds or RFC 3339: %w", err)
	}
	return t, nil
}

func readBody(name string) ([]byte, error) {
	if name == "-" {
		name = "/dev/stdin"
	}
	return os.ReadFile(name)
}

func readPEM(name, what string) (*pem.Block, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no %s PEM block", name, what)
		}
		if strings.Contains(blk.Type, what) {
			return blk, nil
		}
	}
}

func readCert(name string) (*x509.Certificate, error) {
	blk, err := readPEM(name, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(blk.Bytes)
}

func readKey(name string) (crypto.Signer, error) {
	blk, err := readPEM(name, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	var k any
	if blk.Type == "EC PRIVATE KEY" {
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	} else {
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New(name + ": not a signing key")
	}
	return s, nil
}
