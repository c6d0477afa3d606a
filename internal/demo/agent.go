package demo

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/proc"
	"github.com/warden-a2a/warden/sdk"
)

// AgentSpec is a workload to register and enrol: an agent, or a gate with an identity
// of its own (Kind "gate": spiffe://TD/gate/NAME).
type AgentSpec struct {
	Name, Role, Class, Zone string
	Kind                    string // "agent" (default) or "gate"
	// TPMSeed > 0 attests with the TPM simulator of that seed (`--tpm sim --tpm-seed N`),
	// measuring a stand-in executable whose digest the entry approves; 0 enrols with the
	// join token alone (classes the server does not require to attest).
	TPMSeed int64
	// Dir is where `warden enroll --watch` keeps the SVID files; default DIR/agents/NAME,
	// or DIR/gates/NAME/svid for a gate.
	Dir string
	// EnrollFlags are added to its `warden enroll --watch` (e.g. --workload-api ...).
	EnrollFlags []string
}

// Agent is an enrolled workload whose `warden enroll --watch` runs as a child.
type Agent struct {
	AgentSpec
	ID       spiffeid.ID
	Binary   string        // the measured stand-in executable (TPM agents)
	Watch    *proc.Process // warden enroll --watch
	Token    string        // the join token it spent
	Commands []string      // what enrolled it, as shown
}

// Enrol registers spec (`warden attest refs`, `warden entry create`, `warden token
// create`) and starts `warden enroll --watch` for it, returning once the first SVID is
// on disk. The join token goes to enroll in WARDEN_JOIN_TOKEN, never on a command line.
func (s *Stack) Enrol(ctx context.Context, spec AgentSpec) (*Agent, error) {
	a := &Agent{AgentSpec: spec}
	if a.Kind == "" {
		a.Kind = "agent"
	}
	if a.Dir == "" {
		a.Dir = filepath.Join(s.Dir, "agents", a.Name)
		if a.Kind == "gate" {
			a.Dir = filepath.Join(s.Dir, "gates", a.Name, "svid")
		}
	}
	a.ID = spiffeid.RequireFromPath(s.TD, "/"+a.Kind+"/"+a.Name)
	run := func(r proc.Result) (proc.Result, error) {
		a.Commands = append(a.Commands, r.Command)
		return r, r.Err
	}
	entry := []string{"entry", "create", "--name", a.Name, "--role", a.Role, "--class", a.Class, "--zone", a.Zone}
	if a.Kind != "agent" {
		entry = append(entry, "--kind", a.Kind)
	}
	if a.TPMSeed > 0 {
		var err error
		if a.Binary, err = writeAgentBinary(filepath.Join(s.Dir, "agents", a.Name, "bin"), a.Name); err != nil {
			return nil, err
		}
		refs := filepath.Join(filepath.Dir(filepath.Dir(a.Binary)), "refs.yaml")
		if _, err := run(s.Warden(ctx, "attest", "refs", "--binary", a.Binary, "-o", refs)); err != nil {
			return a, err
		}
		entry = append(entry, "--refs", refs)
	}
	if _, err := run(s.Admin(ctx, entry...)); err != nil {
		return a, err
	}
	tok, err := s.Token(ctx, a.Name)
	a.Commands = append(a.Commands, "TOKEN=$("+tok.Command+")")
	if err != nil {
		return a, err
	}
	a.Token = strings.TrimSpace(tok.Stdout)
	args := []string{"enroll", "--server", s.URL, "--out", a.Dir, "--watch"}
	if a.TPMSeed > 0 {
		args = append(args, "--tpm", "sim", "--tpm-seed", strconv.FormatInt(a.TPMSeed, 10), "--binary", a.Binary)
	}
	args = append(args, a.EnrollFlags...)
	if a.Watch, err = s.Procs.Start("enroll-"+a.Name, args, "WARDEN_JOIN_TOKEN="+a.Token); err != nil {
		return a, err
	}
	a.Commands = append(a.Commands, "WARDEN_JOIN_TOKEN=$TOKEN "+a.Watch.Command+" &")
	if err := a.Watch.WaitLog(ctx, 60*time.Second, "enrolled "+a.ID.String()); err != nil {
		return a, err
	}
	return a, nil
}

// Token creates a one-time join token for entry (valid 10 minutes); it is the
// result's Stdout.
func (s *Stack) Token(ctx context.Context, entry string) (proc.Result, error) {
	r := s.Admin(ctx, "token", "create", "--entry", entry, "--ttl", "10m")
	if r.Err == nil && strings.TrimSpace(r.Stdout) == "" {
		r.Err = errNoOutput
	}
	return r, r.Err
}

// writeAgentBinary writes the agent's stand-in build artefact (what its TPM measures).
func writeAgentBinary(dir, name string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	return bin, os.WriteFile(bin, []byte("#!/supplychain/"+name+" build 2026.11.1\n"), 0o755)
}

// Files loads the SVID and bundle enroll --watch keeps in the agent's directory.
func (a *Agent) Files() (*x509svid.SVID, *x509bundle.Bundle, error) { return sdk.LoadFiles(a.Dir) }

// TPM opens the agent's simulated TPM (same seed, so the same EK and AK as its enroll
// --watch) measuring its binary; close it when done.
func (a *Agent) TPM() (*attest.Attester, error) {
	if a.TPMSeed == 0 {
		return nil, fmt.Errorf("demo: %s has no TPM", a.Name)
	}
	return sdk.OpenTPM(sdk.TPMConfig{TPM: "sim", SimSeed: a.TPMSeed, Binary: a.Binary})
}

// Source returns an in-process sdk.Source starting from the agent's current files, for
// what the agent itself does besides enroll --watch (a renewal now, a JWT-SVID). It
// writes no files. att is its TPM, or nil.
func (a *Agent) Source(serverURL string, att sdk.Attester) (*sdk.Source, error) {
	sv, b, err := a.Files()
	if err != nil {
		return nil, err
	}
	cfg := sdk.SourceConfig{ServerURL: serverURL, SVID: sv, Bundle: b}
	if att != nil {
		cfg.Attester = att
	}
	return sdk.NewSource(cfg)
}

// Renew makes the renewal enroll --watch makes at half-life, now, in process: with a
// fresh quote from the agent's TPM when it has one. The files are left alone.
func (s *Stack) Renew(ctx context.Context, a *Agent) error {
	var att sdk.Attester
	if a.TPMSeed > 0 {
		tpm, err := a.TPM()
		if err != nil {
			return err
		}
		defer tpm.Close()
		att = tpm
	}
	src, err := a.Source(s.URL, att)
	if err != nil {
		return err
	}
	defer src.HTTPClient().CloseIdleConnections()
	return src.Renew(ctx)
}

// MTLS is a client TLS config presenting the agent's current SVID and accepting any
// server of the trust domain.
func (a *Agent) MTLS() (*tls.Config, error) {
	sv, b, err := a.Files()
	if err != nil {
		return nil, err
	}
	return tlsconfig.MTLSClientConfig(sv, b, tlsconfig.AuthorizeMemberOf(sv.ID.TrustDomain())), nil
}

// Sign signs an intent for body with the agent's current SVID key.
func (a *Agent) Sign(in sdk.Intent, body []byte) (string, error) {
	sv, _, err := a.Files()
	if err != nil {
		return "", err
	}
	return sdk.SignIntent(sv.Certificates[0], sv.PrivateKey, in, body, time.Now())
}

// Serial is the hex serial of the agent's current SVID on disk ("" when unreadable).
func (a *Agent) Serial() string {
	sv, _, err := a.Files()
	if err != nil {
		return ""
	}
	return sv.Certificates[0].SerialNumber.Text(16)
}

// WaitRotated waits until enroll --watch has replaced the SVID whose serial was before.
func (a *Agent) WaitRotated(ctx context.Context, timeout time.Duration, before string) error {
	return a.Watch.WaitFor(ctx, timeout, a.Name+"'s enroll --watch to write a new SVID", func() (bool, error) {
		now := a.Serial()
		return now != "" && now != before, nil
	})
}
