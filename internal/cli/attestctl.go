package cli

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/sdk"
)

// This file holds the online attestation commands and flags (talking to a control
// plane): `warden entry refs`, `warden attest challenge`, and the attestation flags of
// `warden server`, `warden entry create` and `warden enroll`.

// attrsWithRefsFile merges the reference values in path (attest.LoadReferenceValues) into
// the entry attributes attrs.
func attrsWithRefsFile(attrs []byte, path string) ([]byte, error) {
	refs, err := attest.LoadReferenceValues(path)
	if err != nil {
		return nil, err
	}
	return attest.AttrsWithRefs(attrs, refs)
}

func newEntryRefsCmd() *cobra.Command {
	var af adminFlags
	var file string
	cmd := &cobra.Command{
		Use:   "refs NAME --file REFS.yaml",
		Short: "Replace an entry's attestation reference values (approved digests, build signers, EKs, PCRs)",
		Long: `Replace the reference values of an entry from a YAML or JSON file (docs/attestation.md,
"Setting reference values"; ` + "`warden attest refs`" + ` writes one). Other attributes are kept, and
so is the TPM the agent enrolled with. Roll out a new build by adding its digest before
deploying it and removing the old one after.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			entries, err := c.ListEntries(cmd.Context())
			if err != nil {
				return err
			}
			var attrs []byte
			found := false
			for _, e := range entries {
				if e.Name == args[0] {
					attrs, found = e.Attrs, true
				}
			}
			if !found {
				return exitCode(1, fmt.Errorf("no entry %s", args[0]))
			}
			attrs, err = withoutKey(attrs, "attestation_keys")
			if err != nil {
				return err
			}
			if attrs, err = attrsWithRefsFile(attrs, file); err != nil {
				return err
			}
			if _, err := c.SetEntryAttrs(cmd.Context(), args[0], attrs); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "reference values of %s updated from %s\n", args[0], file)
			return nil
		},
	}
	af.register(cmd)
	cmd.Flags().StringVar(&file, "file", "", "reference values (YAML or JSON)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func withoutKey(attrs []byte, key string) ([]byte, error) {
	if len(attrs) == 0 {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(attrs, &m); err != nil {
		return nil, err
	}
	delete(m, key)
	return json.Marshal(m)
}

func newAttestChallengeCmd() *cobra.Command {
	var af adminFlags
	var id, reason string
	cmd := &cobra.Command{
		Use:   "challenge --id SPIFFE_ID",
		Short: "Push an event-driven re-attestation challenge to an agent",
		Long: `Push a re-attestation challenge to an agent through the trust state. A running agent
(` + "`warden enroll --watch --tpm ...`" + ` or an sdk.Source with an Attester) sees it on the
trust-state stream and renews at once with fresh evidence. A non-affirming answer, or no
answer before the server's challenge timeout (stale_evidence), applies the agent's class
action (quarantine, review or suspend) in the trust state.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			out, err := c.Challenge(cmd.Context(), id, reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "challenged %s: trust state version %d, answer due by %s\n", id, out.Version, out.Deadline.Format(time.RFC3339))
			return nil
		},
	}
	af.register(cmd)
	cmd.Flags().StringVar(&id, "id", "", "SPIFFE ID of the agent")
	cmd.Flags().StringVar(&reason, "reason", "admin", "why (recorded as the challenge's rule)")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

// serverAttestFlags are the attestation flags of `warden server`.
type serverAttestFlags struct {
	off     bool
	require string
	policy  string
	ekRoots string
	timeout time.Duration
}

func (f *serverAttestFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.off, "no-attest", false, "turn runtime attestation off (evidence ignored; enrolment needs only the join token)")
	fl.StringVar(&f.require, "attest-require", "transactional,regulated", "classes that must attest at enrolment (comma-separated, or \"none\")")
	fl.StringVar(&f.policy, "attest-policy", "", "fail-closed policy file (YAML: classes, roles, unknown, max_result_age); default: the built-in table")
	fl.DurationVar(&f.timeout, "attest-challenge-timeout", 30*time.Second, "how long an agent has to answer a pushed challenge")
	fl.StringVar(&f.ekRoots, "tpm-ek-roots", "", "PEM file of TPM manufacturers' EK root (self-signed) and intermediate CA certificates; EK certificates in evidence must chain to them")
}

func (f *serverAttestFlags) config() (*server.AttestConfig, error) {
	if f.off {
		return nil, nil
	}
	cfg := &server.AttestConfig{Require: map[string]bool{}, ChallengeTimeout: f.timeout}
	for _, c := range strings.Split(f.require, ",") {
		c = strings.TrimSpace(c)
		switch {
		case c == "" || c == "none":
		case attest.ClassRank(c) == 0:
			return nil, fmt.Errorf("--attest-require: unknown class %q", c)
		default:
			cfg.Require[c] = true
		}
	}
	if f.policy != "" {
		b, err := os.ReadFile(f.policy)
		if err != nil {
			return nil, err
		}
		p, err := attest.ParsePolicy(b)
		if err != nil {
			return nil, err
		}
		cfg.Policy = &p
	}
	if f.ekRoots != "" {
		roots, inter, err := loadEKRoots(f.ekRoots)
		if err != nil {
			return nil, fmt.Errorf("--tpm-ek-roots: %w", err)
		}
		cfg.Verifier = attest.NewVerifier(attest.Config{EKRoots: roots, EKIntermediates: inter})
	}
	return cfg, nil
}

// loadEKRoots reads a PEM file of CA certificates: self-signed ones are roots, the others
// intermediates. A file with no root, or anything but certificates, is refused.
func loadEKRoots(path string) (roots, inter *x509.CertPool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	roots, inter = x509.NewCertPool(), x509.NewCertPool()
	n := 0
	for len(bytes.TrimSpace(b)) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, nil, errors.New("only PEM CERTIFICATE blocks are allowed")
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, nil, err
		}
		if !c.IsCA {
			return nil, nil, fmt.Errorf("%q is not a CA certificate", c.Subject)
		}
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			roots.AddCert(c)
			n++
		} else {
			inter.AddCert(c)
		}
	}
	if n == 0 {
		return nil, nil, errors.New("no self-signed root certificate")
	}
	return roots, inter, nil
}

// enrollTPMFlags are the attestation flags of `warden enroll`.
type enrollTPMFlags struct {
	tpm               string
	seed              int64
	binary            string
	configs, manifest []string
	provenance        string
}

func (f *enrollTPMFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.tpm, "tpm", "", "attest with a TPM: device (/dev/tpmrm0), sim (the TPM 2.0 simulator) or a device path; default: no attestation")
	fl.Int64Var(&f.seed, "tpm-seed", 1, "simulator seed (one seed, one simulated TPM identity)")
	fl.StringVar(&f.binary, "binary", "", "the agent executable measured into PCR 23 (required with --tpm)")
	fl.StringSliceVar(&f.configs, "config", nil, "configuration file measured into PCR 23 (repeatable)")
	fl.StringSliceVar(&f.manifest, "manifest", nil, "dependency manifest (go.sum, SBOM, lock file) measured into PCR 23 (repeatable)")
	fl.StringVar(&f.provenance, "provenance", "", "DSSE envelope with the in-toto provenance of --binary")
}

// open returns the attester, or nil without --tpm.
func (f *enrollTPMFlags) open() (*attest.Attester, error) {
	if f.tpm == "" {
		return nil, nil
	}
	if f.binary == "" {
		return nil, exitCode(2, fmt.Errorf("--binary is required with --tpm"))
	}
	return sdk.OpenTPM(sdk.TPMConfig{TPM: f.tpm, SimSeed: f.seed, Binary: f.binary, Configs: f.configs,
		Manifests: f.manifest, Provenance: f.provenance})
}
