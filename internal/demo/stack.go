package demo

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/examples/supplychain"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/proc"
	"github.com/warden-a2a/warden/policies"
)

// Stack is a Warden deployment run as child processes of this executable under one
// directory, file for file what an operator runs by hand (docs/operator-guide.md, "The
// demo's deployment"):
//
//	DIR/server/           warden server --data-dir (CA, admin credential, warden.db, audit keys)
//	DIR/policies/         the default Cedar bundle the gates load (policy.dir)
//	DIR/catalog.yaml      the workflow inventory the gates flag undeclared paths with
//	DIR/agents/NAME/      what `warden enroll --watch` keeps fresh: svid.pem, svid_key.pem,
//	                      bundle.pem; refs.yaml and bin/NAME for a TPM-attested agent
//	DIR/gates/NAME/       gate.yaml, trust-state.json, audit-spool/
//	DIR/run/              unix sockets (agents behind gates, outbound gates)
//	DIR/logs/NAME.log     every long-running child's output
//
// `warden demo` and the end-to-end tests (e2e/) build on it; every method that runs a
// command returns it as shown (with DIR written $DIR), so a reader can replay it.
type Stack struct {
	Dir     string
	TD      spiffeid.TrustDomain
	URL     string // the control plane, https://127.0.0.1:PORT
	Procs   *proc.Group
	Server  *proc.Process // warden server
	SockDir string        // where unix sockets go: DIR/run, or a short temporary directory

	// Witness cosigns the audit log's checkpoints (`warden witness`, StackConfig.Witness);
	// WitnessURL is where it listens, WitnessKey its verifier key file.
	Witness    *proc.Process
	WitnessURL string
	WitnessKey string
	// KeysCommand is the `warden audit keys` run before the witness started, as shown.
	KeysCommand string

	serverArgs []string
	tmpSock    bool
	// PolicyKey is the policy signing key (CentralPolicy), "" without; PushCommand is
	// the command that pushed the default bundle, as shown.
	PolicyKey, PushCommand string
}

// StackConfig configures StartStack.
type StackConfig struct {
	Dir string // created if absent
	Exe string // the warden executable; default os.Executable()
	// ServerFlags are added to `warden server` (e.g. --svid-ttl 20s, --tpm-ek-roots FILE).
	ServerFlags []string
	// TrustDomain of the control plane; default supplychain.example (a second stack plays
	// a partner's trust domain).
	TrustDomain string
	// ShowDir is the directory commands show as $DIR; default Dir (a partner's stack in a
	// subdirectory shows its paths as $DIR/partner/...).
	ShowDir string
	// Witness starts a `warden witness` (DIR/witness) that cosigns every audit checkpoint
	// before the server starts, and has the server checkpoint every 2 s.
	Witness bool
	// CentralPolicy distributes the policy centrally (docs/policy.md, "Central
	// distribution"): a signing key is made (DIR/policy-key.pem, .pub), the server
	// verifies pushes with it, the default bundle is pushed once the server answers,
	// and every inbound and legacy gate follows the revision the trust state names.
	CentralPolicy bool
}

// WitnessDir is the witness's --data-dir.
func (s *Stack) WitnessDir() string { return filepath.Join(s.Dir, "witness") }

// ServerDir is the control plane's --data-dir.
func (s *Stack) ServerDir() string { return filepath.Join(s.Dir, "server") }

// PoliciesDir holds the default policy bundle as files (gate.yaml policy.dir).
func (s *Stack) PoliciesDir() string { return filepath.Join(s.Dir, "policies") }

// CatalogFile is the workflow catalog (gate.yaml catalog).
func (s *Stack) CatalogFile() string { return filepath.Join(s.Dir, "catalog.yaml") }

// ID returns spiffe://TD/agent/NAME.
func (s *Stack) ID(name string) spiffeid.ID { return spiffeid.RequireFromPath(s.TD, "/agent/"+name) }

// StartStack writes the policy bundle and catalog under cfg.Dir and starts the control
// plane (`warden server`) on a free loopback port, returning once it answers.
func StartStack(ctx context.Context, cfg StackConfig) (*Stack, error) {
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"server", "agents", "gates", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	td := TrustDomain
	if cfg.TrustDomain != "" {
		td = cfg.TrustDomain
		cfg.ServerFlags = append([]string{"--trust-domain", td}, cfg.ServerFlags...)
	}
	s := &Stack{Dir: dir, TD: spiffeid.RequireTrustDomainFromString(td)}
	showDir := dir
	if cfg.ShowDir != "" {
		if showDir, err = filepath.Abs(cfg.ShowDir); err != nil {
			return nil, err
		}
	}
	if err := s.writeInputs(); err != nil {
		return nil, err
	}
	// A unix socket path holds at most 107 bytes; keep ours well inside.
	s.SockDir = filepath.Join(dir, "run")
	if len(s.SockDir) > 70 {
		if s.SockDir, err = os.MkdirTemp("", "warden-run-"); err != nil {
			return nil, err
		}
		s.tmpSock = true
	} else if err := os.MkdirAll(s.SockDir, 0o700); err != nil {
		return nil, err
	}
	s.Procs, err = proc.New(proc.Config{Exe: cfg.Exe, LogDir: filepath.Join(dir, "logs"), Dir: dir,
		Show: func(a string) string { return strings.ReplaceAll(a, showDir, "$DIR") }})
	if err != nil {
		return nil, err
	}
	flags := cfg.ServerFlags
	if cfg.Witness {
		wf, err := s.startWitness(ctx)
		if err != nil {
			s.Close()
			return nil, err
		}
		flags = append(append([]string{}, flags...), wf...)
	}
	if cfg.CentralPolicy {
		if s.PolicyKey, err = writePolicyKey(filepath.Join(dir, "policy-key.pem")); err != nil {
			return nil, err
		}
		flags = append(slices.Clone(flags), "--policy-public-key", s.PolicyKey+".pub")
	}
	if err := s.startServer(ctx, flags); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.CentralPolicy {
		r := s.Admin(ctx, "policy", "push", s.PoliciesDir(), "--key", s.PolicyKey, "--reason", "initial bundle of the deployment")
		s.PushCommand = r.Command
		if r.Err != nil {
			s.Close()
			return nil, fmt.Errorf("demo: push the default policy: %s", r.Message())
		}
	}
	return s, nil
}

// startWitness makes the audit log's key (`warden audit keys`), starts a witness
// following it and returns the server flags that have it cosign every checkpoint
// (docs/operator-guide.md, "Run witnesses of the audit log").
func (s *Stack) startWitness(ctx context.Context) ([]string, error) {
	r := s.Warden(ctx, "audit", "keys", "--data-dir", s.ServerDir(), "--trust-domain", s.TD.Name())
	if r.Err != nil {
		return nil, fmt.Errorf("demo: audit keys: %w", r.Err)
	}
	s.KeysCommand = r.Command
	urlFile := filepath.Join(s.WitnessDir(), "url")
	_ = os.Remove(urlFile)
	p, err := s.Procs.Start("witness", []string{"witness", "--data-dir", s.WitnessDir(), "--listen", "127.0.0.1:0",
		"--name", "witness.demo/w1", "--log-key", filepath.Join(s.ServerDir(), "audit", audit.VerifierKeyFile)})
	if err != nil {
		return nil, err
	}
	s.Witness = p
	err = p.WaitFor(ctx, 60*time.Second, "the witness to listen", func() (bool, error) {
		b, _ := os.ReadFile(urlFile)
		s.WitnessURL = strings.TrimSpace(string(b))
		return s.WitnessURL != "", nil
	})
	if err != nil {
		return nil, err
	}
	s.WitnessKey = filepath.Join(s.WitnessDir(), "witness.vkey")
	return []string{"--witness", s.WitnessURL + "=" + s.WitnessKey, "--checkpoint-interval", "2s"}, nil
}

// writePolicyKey makes an Ed25519 policy signing key at path (PKCS#8, mode 0600) and its
// public key at path.pub, as `warden policy bundle --key` does for a key that is absent.
func writePolicyKey(path string) (string, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	priv, pub, err := policy.MarshalKeys(key)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, priv, 0o600); err != nil {
		return "", err
	}
	return path, os.WriteFile(path+".pub", pub, 0o644)
}

// writeInputs puts the embedded default policies and the supply-chain catalog where
// gate.yaml points, so DIR is self-contained.
func (s *Stack) writeInputs() error {
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(s.PoliciesDir(), p)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := policies.FS.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		return fmt.Errorf("demo: write policies: %w", err)
	}
	return os.WriteFile(s.CatalogFile(), supplychain.Catalog, 0o644)
}

// startServer picks a free loopback port and starts `warden server` there; the port
// stays the server's across restarts (gates and agents have its URL in their config).
// A port taken between the pick and the listen is picked again.
func (s *Stack) startServer(ctx context.Context, flags []string) error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		s.URL = "https://" + port
		s.serverArgs = append([]string{"server", "--data-dir", s.ServerDir(), "--listen", port}, flags...)
		p, err := s.Procs.Start("server", s.serverArgs)
		if err != nil {
			return err
		}
		s.Server = p
		if lastErr = s.waitServer(ctx); lastErr == nil {
			return nil
		}
		_ = p.Stop()
		if !strings.Contains(p.Log(), "address already in use") {
			break
		}
	}
	return lastErr
}

// RestartServer stops the control plane (SIGTERM) and starts it again on the same port
// with the same data directory, returning once it answers.
func (s *Stack) RestartServer(ctx context.Context) error {
	if err := s.Server.Restart(); err != nil {
		return err
	}
	return s.waitServer(ctx)
}

// StopServer stops the control plane (an outage); StartServer brings it back.
func (s *Stack) StopServer() error { return s.Server.Stop() }

// StartServer restarts a stopped control plane and waits until it answers.
func (s *Stack) StartServer(ctx context.Context) error { return s.RestartServer(ctx) }

// waitServer waits until the server answers on its public bundle endpoint and has
// written its URL beside the admin credential (the admin commands read it there).
func (s *Stack) waitServer(ctx context.Context) error {
	// Readiness only: any TLS peer will do here, every real client pins the bundle.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer client.CloseIdleConnections()
	return s.Server.WaitFor(ctx, 60*time.Second, "the control plane to answer at "+s.URL, func() (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+api.PathBundle, nil)
		res, err := client.Do(req)
		if err != nil {
			return false, nil
		}
		res.Body.Close()
		b, _ := os.ReadFile(filepath.Join(s.ServerDir(), "admin", "server_url"))
		return res.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == s.URL, nil
	})
}

// freePort returns a loopback host:port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Warden runs `warden ARGS` to completion as a child and returns what it printed.
func (s *Stack) Warden(ctx context.Context, args ...string) proc.Result {
	return s.Procs.Run(ctx, args)
}

// Admin runs an admin command (`warden entry create`, `revoke`, `attest challenge`,
// `approve`, `audit verify`, ...) against this stack's control plane: --data-dir
// DIR/server is appended, where the admin credential and the server's URL are.
func (s *Stack) Admin(ctx context.Context, args ...string) proc.Result {
	return s.Procs.Run(ctx, append(args, "--data-dir", s.ServerDir()))
}

// AuditEvents returns every event of the control plane's audit log, read with
// `warden audit export`.
func (s *Stack) AuditEvents(ctx context.Context) ([]audit.Event, error) {
	r := s.Admin(ctx, "audit", "export")
	if r.Err != nil {
		return nil, r.Err
	}
	var out []audit.Event
	sc := bufio.NewScanner(strings.NewReader(r.Stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		ev, err := audit.ParseEvent(sc.Bytes())
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

// WaitAudit waits until the audit log holds an event that match accepts (gates ship
// their decisions asynchronously) and returns the newest such event.
func (s *Stack) WaitAudit(ctx context.Context, timeout time.Duration, what string, match func(audit.Event) bool) (audit.Event, error) {
	var found audit.Event
	err := proc.WaitFor(ctx, timeout, what+" in the audit log", func() (bool, error) {
		evs, err := s.AuditEvents(ctx)
		if err != nil {
			return false, err
		}
		for i := len(evs) - 1; i >= 0; i-- {
			if match(evs[i]) {
				found = evs[i]
				return true, nil
			}
		}
		return false, nil
	})
	return found, err
}

// Close stops every child (gates and agents first, the control plane last).
func (s *Stack) Close() {
	if s.Procs != nil {
		s.Procs.Close()
	}
	if s.tmpSock {
		_ = os.RemoveAll(s.SockDir)
	}
}

// FailedChildren describes every child that exited on its own, unexpectedly, with the
// last lines of its log; "" when there is none.
func (s *Stack) FailedChildren() string {
	var b strings.Builder
	for _, p := range s.Procs.Failed() {
		_, err := p.Exited()
		fmt.Fprintf(&b, "child %s exited (%v); last lines of %s:\n%s\n\n", p.Name, err, p.LogPath(), indent(p.Tail(15), "  | "))
	}
	return b.String()
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

var errNoOutput = errors.New("demo: the command printed nothing")
