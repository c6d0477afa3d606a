package cli

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/warden-a2a/warden/internal/attest"
)

// newAttestCmd is `warden attest`: offline tools for the attestation inputs an operator and
// a build pipeline produce — reference values, build keys, signed provenance.
func newAttestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attest",
		Short: "Reference values, build keys and signed provenance for runtime attestation",
	}
	cmd.AddCommand(newAttestRefsCmd(), newAttestKeygenCmd(), newAttestSignCmd(), newAttestVerifyCmd(), newAttestChallengeCmd())
	return cmd
}

func newAttestRefsCmd() *cobra.Command {
	var binaries, configs, digests, signers, eks []string
	var out string
	cmd := &cobra.Command{
		Use:   "refs",
		Short: "Write reference values (YAML) from files, digests and build signer keys",
		Example: "  warden attest refs --binary ./procurement-agent --config agent.yaml --config go.sum \\\n" +
			"    --build-signer build-key.pub.pem -o refs.yaml",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r attest.ReferenceValues
			for _, f := range binaries {
				d, err := attest.FileDigest(f)
				if err != nil {
					return exitCode(1, err)
				}
				r.Binaries = append(r.Binaries, d)
			}
			r.Binaries = append(r.Binaries, digests...)
			for _, f := range configs {
				d, err := attest.FileDigest(f)
				if err != nil {
					return exitCode(1, err)
				}
				r.Configs = append(r.Configs, d)
			}
			for _, f := range signers {
				b, err := os.ReadFile(f)
				if err != nil {
					return exitCode(1, err)
				}
				r.BuildSigners = append(r.BuildSigners, string(b))
			}
			r.EKs = eks
			if err := r.Validate(); err != nil {
				return exitCode(1, err)
			}
			if len(r.Binaries) == 0 {
				return exitCode(1, errors.New("at least one --binary or --binary-digest is required"))
			}
			b, err := yaml.Marshal(r)
			if err != nil {
				return exitCode(1, err)
			}
			return writeOut(cmd, out, b, 0o644)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&binaries, "binary", nil, "agent executable to approve (repeatable)")
	f.StringArrayVar(&digests, "binary-digest", nil, "approved binary digest sha256:<hex> (repeatable)")
	f.StringArrayVar(&configs, "config", nil, "config or dependency manifest to approve (repeatable)")
	f.StringArrayVar(&signers, "build-signer", nil, "PEM public key file of a build signer (repeatable)")
	f.StringArrayVar(&eks, "ek", nil, "pin a TPM: EK name sha256:<hex> (repeatable)")
	f.StringVarP(&out, "out", "o", "", "output file (default stdout)")
	return cmd
}

func newAttestKeygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Create an Ed25519 build signing key (PKCS#8 PEM, mode 0600) and print its public key",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return exitCode(1, errors.New("--out is required"))
			}
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return exitCode(1, err)
			}
			der, err := x509.MarshalPKCS8PrivateKey(priv)
			if err != nil {
				return exitCode(1, err)
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return exitCode(1, err)
			}
			if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
				f.Close()
				return exitCode(1, err)
			}
			if err := f.Close(); err != nil {
				return exitCode(1, err)
			}
			p, err := attest.MarshalPublicKeyPEM(pub)
			if err != nil {
				return exitCode(1, err)
			}
			fmt.Fprint(cmd.OutOrStdout(), p)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "private key file to create")
	return cmd
}

func newAttestSignCmd() *cobra.Command {
	var binary, keyFile, name, builder, out string
	cmd := &cobra.Command{
		Use:   "sign-provenance",
		Short: "Sign an in-toto Statement v1 (SLSA provenance) for a binary into a DSSE envelope",
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := attest.FileDigest(binary)
			if err != nil {
				return exitCode(1, err)
			}
			signer, err := readSigner(keyFile)
			if err != nil {
				return exitCode(1, err)
			}
			st, err := attest.NewProvenance(name, d, map[string]any{
				"buildDefinition": map[string]any{"buildType": "https://warden-a2a.dev/build/v1"},
				"runDetails":      map[string]any{"builder": map[string]any{"id": builder}},
			})
			if err != nil {
				return exitCode(1, err)
			}
			env, err := attest.SignStatement(signer, st)
			if err != nil {
				return exitCode(1, err)
			}
			b, err := json.MarshalIndent(env, "", "  ")
			if err != nil {
				return exitCode(1, err)
			}
			return writeOut(cmd, out, append(b, '\n'), 0o644)
		},
	}
	f := cmd.Flags()
	f.StringVar(&binary, "binary", "", "the built executable")
	f.StringVar(&keyFile, "key", "", "PKCS#8 PEM private key (Ed25519 or ECDSA P-256)")
	f.StringVar(&name, "name", "agent", "subject name")
	f.StringVar(&builder, "builder", "local", "builder id recorded in the predicate")
	f.StringVarP(&out, "out", "o", "", "output file (default stdout)")
	cmd.MarkFlagRequired("binary")
	cmd.MarkFlagRequired("key")
	return cmd
}

func newAttestVerifyCmd() *cobra.Command {
	var binary, envFile, refsFile string
	cmd := &cobra.Command{
		Use:   "verify-provenance",
		Short: "Check a DSSE provenance envelope offline against a binary and reference values",
		RunE: func(cmd *cobra.Command, _ []string) error {
			refs, err := attest.LoadReferenceValues(refsFile)
			if err != nil {
				return exitCode(1, err)
			}
			b, err := os.ReadFile(envFile)
			if err != nil {
				return exitCode(1, err)
			}
			var env attest.Envelope
			if err := json.Unmarshal(b, &env); err != nil {
				return exitCode(1, fmt.Errorf("%s: %s: %w", attest.ReasonBadProvenance, envFile, err))
			}
			d, err := attest.FileDigest(binary)
			if err != nil {
				return exitCode(1, err)
			}
			if reason, detail := attest.CheckProvenance(&env, refs, []string{d}); reason != attest.ReasonNone {
				return exitCode(1, fmt.Errorf("%s: %s", reason, detail))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok %s\n", d)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&binary, "binary", "", "the executable")
	f.StringVar(&envFile, "envelope", "", "DSSE envelope JSON")
	f.StringVar(&refsFile, "refs", "", "reference values YAML/JSON (build_signers)")
	cmd.MarkFlagRequired("binary")
	cmd.MarkFlagRequired("envelope")
	cmd.MarkFlagRequired("refs")
	return cmd
}

func readSigner(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: want a PKCS#8 PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return s, nil
}

func writeOut(cmd *cobra.Command, path string, b []byte, mode os.FileMode) error {
	if path == "" {
		_, err := cmd.OutOrStdout().Write(b)
		return err
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		return exitCode(1, err)
	}
	return nil
}
