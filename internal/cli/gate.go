package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"gopkg.in/yaml.v3"

	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/gate"
)

// gateFile is gate.yaml (docs/gate.md, "Configuration reference").
type gateFile struct {
	Mode    string `yaml:"mode"`
	Listen  string `yaml:"listen"` // host:port, or unix:/path
	Self    string `yaml:"self"`
	SVIDDir string `yaml:"svid_dir"`
	// Identity says where the SVID in svid_dir comes from and who renews it
	// (docs/gate.md, "Identity").
	Identity gateIdentity `yaml:"identity"`
	Server   string       `yaml:"server"`
	Upstream string       `yaml:"upstream"`
	// A2A: where the agent serves each binding; the gate classifies calls by them.
	A2A struct {
		JSONRPCPath string `yaml:"jsonrpc_path"` // default "/"
		RESTPath    string `yaml:"rest_path"`    // prefix of the HTTP+JSON routes; default the root
	} `yaml:"a2a"`
	Zone         string        `yaml:"zone"`
	MaxStaleness time.Duration `yaml:"max_staleness"`
	TrustCache   string        `yaml:"trust_cache"`
	Policy       struct {
		Dir       string `yaml:"dir"`
		Bundle    string `yaml:"bundle"`
		PublicKey string `yaml:"public_key"`
		// Central follows the policy revision the trust state names (warden policy
		// push), verified with public_key and cached in cache (default
		// SVID_DIR/policy-bundle.json); dir or bundle, if set, until one is named.
		Central bool   `yaml:"central"`
		Cache   string `yaml:"cache"`
	} `yaml:"policy"`
	Peers  []gatePeer `yaml:"peers"`
	Replay struct {
		Capacity int    `yaml:"capacity"`
		Redis    string `yaml:"redis"`
	} `yaml:"replay"`
	MaxIntentTTL    time.Duration `yaml:"max_intent_ttl"`
	AllowPushConfig bool          `yaml:"allow_push_config"`
	// Approvals: with control_plane the gate files and checks approvals with the
	// control plane at server (docs/approvals.md), authenticated by its own SVID;
	// without, a decision that needs an approval is refused (approvals_unavailable).
	Approvals struct {
		ControlPlane bool           `yaml:"control_plane"`
		Required     map[string]int `yaml:"required"` // policy @id -> distinct approvals (default 2)
		TTL          time.Duration  `yaml:"ttl"`      // of a filed request; 0: the control plane's (1h)
	} `yaml:"approvals"`
	Card   *gateCardFile `yaml:"card"`
	Limits struct {
		MaxBody           int64         `yaml:"max_body"`
		MaxHeaderBytes    int           `yaml:"max_header_bytes"`
		ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
		BodyTimeout       time.Duration `yaml:"body_timeout"`
		IdleTimeout       time.Duration `yaml:"idle_timeout"`
		MaxConnsPerPeer   int           `yaml:"max_conns_per_peer"`
		MaxConns          int           `yaml:"max_conns"`
	} `yaml:"limits"`
	Legacy struct {
		KeyFile  string        `yaml:"key_file"`
		Audience string        `yaml:"audience"`
		TTL      time.Duration `yaml:"ttl"`
	} `yaml:"legacy"`
	Outbound struct {
		Audience    string                       `yaml:"audience"`
		UpstreamID  string                       `yaml:"upstream_id"`
		AllowedUIDs []int                        `yaml:"allowed_uids"`
		SecretFile  string                       `yaml:"secret_file"`
		TTL         time.Duration                `yaml:"ttl"`
		Defaults    map[string]gateActionDefault `yaml:"defaults"`
	} `yaml:"outbound"`
	// Audit: decisions go to a durable local spool (default SVID_DIR/audit-spool) and,
	// when server is set, are shipped in batches to the control plane's audit log.
	Audit struct {
		SpoolDir string `yaml:"spool_dir"`
	} `yaml:"audit"`
	// MetricsListen serves Prometheus /metrics, /healthz and /readyz (plain HTTP) here.
	MetricsListen string `yaml:"metrics_listen"`
	// Tracing: one span per decision, exported over OTLP/HTTP to otlp_endpoint (default
	// $OTEL_EXPORTER_OTLP_ENDPOINT; none: not exported).
	Tracing struct {
		OTLPEndpoint string `yaml:"otlp_endpoint"`
		ServiceName  string `yaml:"service_name"` // default warden-gate
	} `yaml:"tracing"`
	// Catalog is the workflow inventory (docs/catalog.md): calls on paths it does not
	// declare are flagged as anomalies.
	Catalog string `yaml:"catalog"`
	// Live: workflow state and heartbeats (gate_live.go).
	Live gateLiveFile `yaml:",inline"`
}

type gatePeer struct {
	SPIFFEID string `yaml:"spiffe_id"`
	Role     string `yaml:"role"`
	Class    string `yaml:"class"`
	Zone     string `yaml:"zone"`
	Partner  bool   `yaml:"partner"`
}

type gateActionDefault struct {
	Action   string `yaml:"action"`
	Resource string `yaml:"resource"`
}

// maxGateConfig bounds gate.yaml.
const maxGateConfig = 1 << 20

// parseGateFile decodes gate.yaml strictly (unknown keys are errors) and checks what
// can be checked without touching the disk.
func parseGateFile(b []byte) (*gateFile, error) {
	if len(b) > maxGateConfig {
		return nil, errors.New("gate config larger than 1 MiB")
	}
	var f gateFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("gate config: %w", err)
	}
	switch f.Mode {
	case gate.ModeInbound, gate.ModeOutbound, gate.ModeLegacy:
	default:
		return nil, fmt.Errorf("gate config: mode %q: want inbound, outbound or legacy", f.Mode)
	}
	if _, err := spiffeid.FromString(f.Self); err != nil {
		return nil, fmt.Errorf("gate config: self: %w", err)
	}
	if f.Listen == "" || f.Upstream == "" || f.SVIDDir == "" {
		return nil, errors.New("gate config: listen, upstream and svid_dir are required")
	}
	if err := f.Identity.check(&f); err != nil {
		return nil, fmt.Errorf("gate config: identity: %w", err)
	}
	if f.Card != nil {
		if err := f.Card.check(f.Mode); err != nil {
			return nil, fmt.Errorf("gate config: card: %w", err)
		}
	}
	if f.Mode != gate.ModeOutbound && f.Policy.Dir == "" && f.Policy.Bundle == "" && !f.Policy.Central {
		return nil, errors.New("gate config: policy.dir, policy.bundle or policy.central is required")
	}
	if err := f.Live.check(&f); err != nil {
		return nil, err
	}
	if f.Policy.Bundle != "" && f.Policy.PublicKey == "" {
		return nil, errors.New("gate config: policy.bundle needs policy.public_key")
	}
	for i, p := range f.Peers {
		if _, err := spiffeid.FromString(p.SPIFFEID); err != nil {
			return nil, fmt.Errorf("gate config: peers[%d]: %w", i, err)
		}
		if p.Role == "" || p.Class == "" {
			return nil, fmt.Errorf("gate config: peers[%d]: role and class are required", i)
		}
	}
	if f.Outbound.UpstreamID != "" {
		if _, err := spiffeid.FromString(f.Outbound.UpstreamID); err != nil {
			return nil, fmt.Errorf("gate config: outbound.upstream_id: %w", err)
		}
	}
	if f.Approvals.ControlPlane && (f.Server == "" || f.Mode == gate.ModeOutbound) {
		return nil, errors.New("gate config: approvals.control_plane needs server, and an inbound or legacy gate")
	}
	for p, n := range f.Approvals.Required {
		if n < 1 || n > approval.MaxRequired {
			return nil, fmt.Errorf("gate config: approvals.required[%s]: want 1..%d", p, approval.MaxRequired)
		}
	}
	if f.Approvals.TTL < 0 || f.Approvals.TTL > approval.MaxTTL || f.Approvals.TTL%time.Second != 0 {
		return nil, fmt.Errorf("gate config: approvals.ttl: whole seconds, at most %s", approval.MaxTTL)
	}
	if f.MaxStaleness < 0 || f.Legacy.TTL < 0 || f.Legacy.TTL > 60*time.Second || f.Limits.MaxBody < 0 {
		return nil, errors.New("gate config: negative durations or sizes, or legacy.ttl over 60s")
	}
	return &f, nil
}

func newGateCmd() *cobra.Command {
	var configPath string
	var lf logFlags
	cmd := &cobra.Command{
		Use:   "gate --config gate.yaml",
		Short: "Run an enforcement gate: inbound (beside an A2A agent), outbound (signing for it) or legacy",
		Long: `Run a Warden gate (docs/gate.md).

inbound:  TLS 1.3 mTLS with the gate's SVID; every call goes through the pipeline (SVID,
          trust state, intent, replay, attestation, Cedar, audit) before it reaches the
          local agent with Warden-Peer-Id and Warden-Decision-Id.
outbound: the local agent speaks plain HTTP on a unix socket (SO_PEERCRED uid check) or
          loopback (per-process secret); the gate signs the intent with the agent's SVID
          key and calls the remote gate over mTLS.
legacy:   the inbound pipeline, then a plain-HTTP system is called with a per-request
          ES256 JWT (aud = the system, one action, exp <= 60s, jti).

The SVID comes from svid_dir (identity.source: files, the default), kept current by
` + "`warden enroll --watch`" + ` and reloaded on every change; or the gate renews its own /gate/
identity itself (identity.source: renew). SIGHUP re-reads gate.yaml, the policy and the
SVID files. Every decision is logged at info, every failure of the gate's own at warn.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := lf.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			b, err := os.ReadFile(configPath)
			if err != nil {
				return exitCode(1, err)
			}
			f, err := parseGateFile(b)
			if err != nil {
				return exitCode(1, err)
			}
			p := &gateProc{path: configPath, f: f, log: log}
			onSIGHUP(cmd.Context(), func() {
				if err := p.reload(cmd.Context()); err != nil {
					log.Warn("gate: reload failed; the running configuration stays", "err", err)
				}
			})
			if err := p.run(cmd.Context()); err != nil {
				log.Error("gate: stopped", "err", err)
				return exitCode(1, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "gate.yaml", "gate configuration file")
	lf.register(cmd)
	return cmd
}

func listen(addr string) (net.Listener, error) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		_ = os.Remove(p)
		ln, err := net.Listen("unix", p)
		if err != nil {
			return nil, err
		}
		return ln, os.Chmod(p, 0o660)
	}
	return net.Listen("tcp", addr)
}

// localSecret reads the per-process secret, creating a random one (mode 0600) if absent.
func localSecret(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		return bytes.TrimSpace(b), nil
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	s := []byte(fmt.Sprintf("%x", raw[:]))
	return s, os.WriteFile(path, s, 0o600)
}

func readECKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ek, nil
}
