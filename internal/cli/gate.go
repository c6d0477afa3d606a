package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"gopkg.in/yaml.v3"

	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/inventory"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/telemetry"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// gateFile is gate.yaml (docs/gate.md, "Configuration reference").
type gateFile struct {
	Mode     string `yaml:"mode"`
	Listen   string `yaml:"listen"` // host:port, or unix:/path
	Self     string `yaml:"self"`
	SVIDDir  string `yaml:"svid_dir"`
	Server   string `yaml:"server"`
	Upstream string `yaml:"upstream"`
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
	Card *struct {
		Name        string `yaml:"name"`
		Description string `yaml:"description"`
		URL         string `yaml:"url"`
		Binding     string `yaml:"binding"` // JSONRPC (default) or HTTP+JSON
		Version     string `yaml:"version"`
		Streaming   bool   `yaml:"streaming"`
	} `yaml:"card"`
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
	// MetricsListen serves Prometheus /metrics (plain HTTP) on this address.
	MetricsListen string `yaml:"metrics_listen"`
	// Catalog is the workflow inventory (docs/catalog.md): calls on paths it does not
	// declare are flagged as anomalies.
	Catalog string `yaml:"catalog"`
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
	if f.Mode != gate.ModeOutbound && f.Policy.Dir == "" && f.Policy.Bundle == "" {
		return nil, errors.New("gate config: policy.dir or policy.bundle is required")
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
	var verbose bool
	cmd := &cobra.Command{
		Use:   "gate --config gate.yaml",
		Short: "Run an enforcement gate: inbound (beside an A2A agent), outbound (signing for it) or legacy",
		Long: `Run a Warden gate (docs/gate.md).

inbound:  TLS 1.3 mTLS with the gate's rotating SVID; every call goes through the pipeline
          (SVID, trust state, intent, replay, attestation, Cedar, audit) before it reaches
          the local agent with Warden-Peer-Id and Warden-Decision-Id.
outbound: the local agent speaks plain HTTP on a unix socket (SO_PEERCRED uid check) or
          loopback (per-process secret); the gate signs the intent with the agent's SVID
          key and calls the remote gate over mTLS.
legacy:   the inbound pipeline, then a plain-HTTP system is called with a per-request
          ES256 JWT (aud = the system, one action, exp <= 60s, jti).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			b, err := os.ReadFile(configPath)
			if err != nil {
				return exitCode(1, err)
			}
			f, err := parseGateFile(b)
			if err != nil {
				return exitCode(1, err)
			}
			if err := runGate(cmd.Context(), f, log); err != nil {
				return exitCode(1, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "gate.yaml", "gate configuration file")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	return cmd
}

func runGate(ctx context.Context, f *gateFile, log *slog.Logger) error {
	svid, bundle, err := sdk.LoadFiles(f.SVIDDir)
	if err != nil {
		return err
	}
	src, err := sdk.NewSource(sdk.SourceConfig{ServerURL: f.Server, SVID: svid, Bundle: bundle, Dir: f.SVIDDir, Logger: log})
	if err != nil {
		return err
	}
	self := spiffeid.RequireFromString(f.Self)
	cfg := gate.Config{
		Mode: f.Mode, Self: self, SVID: src, Bundle: src, Upstream: f.Upstream, Zone: f.Zone,
		Routes:       gate.Routes{JSONRPCPath: f.A2A.JSONRPCPath, RESTPath: f.A2A.RESTPath},
		MaxStaleness: f.MaxStaleness, MaxIntentTTL: f.MaxIntentTTL, AllowPushConfig: f.AllowPushConfig,
		Logger: log,
		Limits: gate.Limits{MaxBody: f.Limits.MaxBody, MaxHeaderBytes: f.Limits.MaxHeaderBytes,
			ReadHeaderTimeout: f.Limits.ReadHeaderTimeout, BodyTimeout: f.Limits.BodyTimeout,
			IdleTimeout: f.Limits.IdleTimeout, MaxConnsPerPeer: f.Limits.MaxConnsPerPeer, MaxConns: f.Limits.MaxConns},
	}
	var wait []func()
	runCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		for _, w := range wait {
			w()
		}
	}()
	goRun := func(fn func()) {
		done := make(chan struct{})
		go func() { fn(); close(done) }()
		wait = append(wait, func() { <-done })
	}
	if f.Server != "" {
		goRun(func() {
			if err := src.Run(runCtx); err != nil {
				log.Error("gate: SVID renewal stopped", "err", err)
			}
		})
	}
	spoolDir := f.Audit.SpoolDir
	if spoolDir == "" {
		spoolDir = filepath.Join(f.SVIDDir, "audit-spool")
	}
	spool, err := audit.OpenSpool(audit.SpoolConfig{Dir: spoolDir})
	if err != nil {
		return fmt.Errorf("audit spool: %w", err)
	}
	cfg.Audit = gate.SpoolSink{Spool: spool, Zone: f.Zone}
	if f.Server != "" {
		goRun(func() {
			if err := spool.Run(runCtx, audit.HTTPSink{URL: f.Server, Client: src.HTTPClient()}); err != nil && runCtx.Err() == nil {
				log.Error("gate: audit shipping stopped", "err", err)
			}
		})
	}
	if f.Catalog != "" {
		if cfg.Catalog, err = inventory.LoadIndex(f.Catalog); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
	}
	if f.MetricsListen != "" {
		reg := prometheus.NewRegistry()
		m := telemetry.NewMetrics(reg)
		cfg.Audit = gate.MetricsSink{Metrics: m, Next: cfg.Audit}
		stopMetrics, err := serveMetrics(runCtx, f.MetricsListen, reg, log)
		if err != nil {
			return err
		}
		wait = append(wait, stopMetrics)
		goRun(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
					m.SpoolDepth(spool.Depth())
				}
			}
		})
	}
	wait = append(wait, func() { _ = spool.Close() }) // after the shipper and the gauge have stopped
	if f.Mode == gate.ModeOutbound {
		cfg.Audience, cfg.AllowedUIDs, cfg.OutboundTTL = f.Outbound.Audience, f.Outbound.AllowedUIDs, f.Outbound.TTL
		if f.Outbound.UpstreamID != "" {
			cfg.UpstreamID = spiffeid.RequireFromString(f.Outbound.UpstreamID)
		}
		if f.Outbound.SecretFile != "" {
			if cfg.LocalSecret, err = localSecret(f.Outbound.SecretFile); err != nil {
				return err
			}
		}
		cfg.Defaults = map[string]gate.ActionDefault{}
		for m, d := range f.Outbound.Defaults {
			cfg.Defaults[m] = gate.ActionDefault{Action: d.Action, Resource: d.Resource}
		}
	} else {
		if cfg.Policy, err = loadGatePolicy(f, log); err != nil {
			return err
		}
		cfg.Peers = map[string]policy.Agent{}
		for _, p := range f.Peers {
			cfg.Peers[p.SPIFFEID] = policy.Agent{Role: p.Role, Class: p.Class, Zone: p.Zone, Partner: p.Partner}
		}
		cachePath := f.TrustCache
		if cachePath == "" {
			cachePath = filepath.Join(f.SVIDDir, "trust-state.json")
		}
		cache, err := gate.OpenTrustCache(cachePath, src, self.TrustDomain(), nil)
		if err != nil {
			return err
		}
		if doc, _ := cache.Current(); doc != nil {
			log.Info("gate: enforcing the cached trust state until the control plane answers", "version", doc.Version)
		}
		if f.Server != "" {
			fol := truststate.NewFollower(truststate.FollowerConfig{URL: f.Server, Client: src.HTTPClient(), Bundle: src,
				TrustDomain: self.TrustDomain(), OnAccept: cache.Store})
			cache.Follow(fol)
			goRun(func() { _ = fol.Run(runCtx, nil) })
			// The stream pushes only changes: confirm an unchanged state regularly.
			every := 30 * time.Second
			if f.MaxStaleness > 0 && f.MaxStaleness/4 < every {
				every = max(f.MaxStaleness/4, time.Second)
			}
			goRun(func() { gate.KeepConfirmed(runCtx, fol, f.Server, src.HTTPClient(), every) })
		}
		cfg.Trust = cache
		if f.Replay.Redis != "" {
			opt, err := redis.ParseURL(f.Replay.Redis)
			if err != nil {
				return fmt.Errorf("replay.redis: %w", err)
			}
			cfg.Replay = intent.NewRedisCache(redis.NewClient(opt), "warden:replay:"+self.String()+":")
		} else {
			capacity := f.Replay.Capacity
			if capacity == 0 {
				capacity = 1_000_000
			}
			cfg.Replay = intent.NewMemoryCache(capacity)
		}
		if f.Card != nil {
			binding := a2a.TransportProtocolJSONRPC
			if strings.EqualFold(f.Card.Binding, "HTTP+JSON") {
				binding = a2a.TransportProtocolHTTPJSON
			}
			cfg.Card = &a2a.AgentCard{Name: f.Card.Name, Description: f.Card.Description, Version: f.Card.Version,
				SupportedInterfaces: []*a2a.AgentInterface{a2a.NewAgentInterface(f.Card.URL, binding)},
				DefaultInputModes:   []string{"text"}, DefaultOutputModes: []string{"text"},
				Capabilities: a2a.AgentCapabilities{Streaming: f.Card.Streaming}, Skills: []a2a.AgentSkill{}}
		}
		if f.Approvals.ControlPlane {
			cfg.Approvals = &gate.ApprovalClient{Client: approval.NewClient(f.Server, src, src, self.TrustDomain()),
				Required: f.Approvals.Required, TTL: f.Approvals.TTL}
		}
		if f.Mode == gate.ModeLegacy {
			cfg.LegacyAudience, cfg.LegacyTTL = f.Legacy.Audience, f.Legacy.TTL
			if cfg.LegacyKey, err = readECKey(f.Legacy.KeyFile); err != nil {
				return fmt.Errorf("legacy.key_file: %w", err)
			}
		}
	}
	g, err := gate.New(cfg)
	if err != nil {
		return err
	}
	ln, err := listen(f.Listen)
	if err != nil {
		return err
	}
	log.Info("gate: serving", "mode", f.Mode, "listen", f.Listen, "self", f.Self, "upstream", f.Upstream)
	return g.Serve(runCtx, ln)
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

func loadGatePolicy(f *gateFile, log *slog.Logger) (*policy.Holder, error) {
	if f.Policy.Bundle != "" {
		pubPEM, err := os.ReadFile(f.Policy.PublicKey)
		if err != nil {
			return nil, err
		}
		pub, err := policy.ParsePublicKey(pubPEM)
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(f.Policy.Bundle)
		if err != nil {
			return nil, err
		}
		e, err := policy.ReadBundle(b, pub, policy.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		return policy.NewHolder(e), nil
	}
	e, err := policy.Load(f.Policy.Dir, policy.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	return policy.NewHolder(e), nil
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
