package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/inventory"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/telemetry"
	"github.com/warden-a2a/warden/internal/truststate"
)

// gateProc is one running `warden gate`: the configuration in force and what reload()
// may change while it serves.
type gateProc struct {
	path string // gate.yaml, re-read by reload ("": not reloadable)
	log  *slog.Logger

	mu      sync.Mutex // serializes reload against start
	f       *gateFile  // the configuration in force
	started bool
	id      gateSVID
	policy  *gate.PolicySource // nil in outbound mode
	// reloadHooks run at the end of every reload, with the configuration in force. One
	// per reloadable concern beyond gate.yaml, the policy and the SVID files (e.g. a
	// policy bundle pushed by the control plane): add it in run, before serving.
	reloadHooks []func(ctx context.Context, f *gateFile) error
}

// runGate runs the gate f describes until ctx ends (tests; the command uses gateProc
// with its config path so that SIGHUP can re-read it).
func runGate(ctx context.Context, f *gateFile, log *slog.Logger) error {
	return (&gateProc{f: f, log: log}).run(ctx)
}

// run builds the gate from p.f and serves until ctx ends or the gate cannot go on (its
// own renewal refused).
func (p *gateProc) run(ctx context.Context) error {
	f, log := p.f, p.log
	id, ownID, closeID, err := openGateIdentity(ctx, f, log)
	if err != nil {
		return err
	}
	defer closeID()
	self := spiffeid.RequireFromString(f.Self)
	if ownID != self {
		log.Info("gate: presenting its own identity", "gate_id", ownID.String(), "guards", self.String())
	}
	cfg := gate.Config{
		Mode: f.Mode, Self: self, SVID: id, Bundle: id, Upstream: f.Upstream, Zone: f.Zone,
		Routes:       gate.Routes{JSONRPCPath: f.A2A.JSONRPCPath, RESTPath: f.A2A.RESTPath},
		MaxStaleness: f.MaxStaleness, MaxIntentTTL: f.MaxIntentTTL, AllowPushConfig: f.AllowPushConfig,
		Logger: log,
		Limits: gate.Limits{MaxBody: f.Limits.MaxBody, MaxHeaderBytes: f.Limits.MaxHeaderBytes,
			ReadHeaderTimeout: f.Limits.ReadHeaderTimeout, BodyTimeout: f.Limits.BodyTimeout,
			IdleTimeout: f.Limits.IdleTimeout, MaxConnsPerPeer: f.Limits.MaxConnsPerPeer, MaxConns: f.Limits.MaxConns},
	}
	var wait []func()
	runCtx, cancel := context.WithCancelCause(ctx)
	defer func() {
		cancel(nil)
		for i := len(wait) - 1; i >= 0; i-- {
			wait[i]()
		}
	}()
	goRun := func(fn func()) {
		done := make(chan struct{})
		go func() { fn(); close(done) }()
		wait = append(wait, func() { <-done })
	}
	// The identity: files reloaded, or the gate's own renewed. A refused renewal stops
	// the gate: it cannot go on presenting an identity the control plane refuses.
	goRun(func() {
		if err := id.Run(runCtx); err != nil {
			log.Error("gate: identity cannot be renewed; stopping", "err", err)
			cancel(fmt.Errorf("identity: %w", err))
		}
	})

	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	cfg.Metrics = m
	tp, err := gateTracing(runCtx, f, log)
	if err != nil {
		return err
	}
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		_ = tp.Shutdown(sctx)
	}()
	cfg.Tracer = tp.Tracer("github.com/warden-a2a/warden/internal/gate")

	spoolDir := f.Audit.SpoolDir
	if spoolDir == "" {
		spoolDir = filepath.Join(f.SVIDDir, "audit-spool")
	}
	spool, err := audit.OpenSpool(audit.SpoolConfig{Dir: spoolDir})
	if err != nil {
		return fmt.Errorf("audit spool: %w", err)
	}
	// Every decision: logged at info, counted, then spooled (the spool decides whether
	// the call goes on: fail closed).
	cfg.Audit = gate.LogSink{Logger: log, Next: gate.MetricsSink{Metrics: m,
		Next: gate.SpoolSink{Spool: spool, Zone: f.Zone, GateID: ownID.String()}}}
	if f.Server != "" {
		sink := &shipReporter{next: audit.HTTPSink{URL: f.Server, Client: id.HTTPClient()}, log: log, metrics: m, spool: spool}
		goRun(func() {
			if err := spool.Run(runCtx, sink); err != nil && runCtx.Err() == nil {
				log.Error("gate: audit shipping stopped", "err", err)
			}
		})
	}
	if f.Catalog != "" {
		if cfg.Catalog, err = inventory.LoadIndex(f.Catalog); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
	}
	var cache *gate.TrustCache
	var replay *intent.MemoryCache
	var policySrc *gate.PolicySource
	beat := make(chan struct{}, 1) // a heartbeat now: the policy changed
	rep := &gateReporter{f: f, id: id, spool: spool, started: time.Now().UTC()}
	kick := func() {
		select {
		case beat <- struct{}{}:
		default:
		}
	}
	if f.Mode == gate.ModeOutbound {
		if err := outboundConfig(f, &cfg); err != nil {
			return err
		}
		// An upstream of a federated trust domain (a partner's gate) is verified with
		// that trust domain's bundle, which comes in the trust state.
		if !cfg.UpstreamID.IsZero() && cfg.UpstreamID.TrustDomain() != self.TrustDomain() && f.Server != "" {
			if cache, err = followTrust(runCtx, f, id, self, goRun, nil, log); err != nil {
				return err
			}
			cfg.Trust = cache
		}
	} else {
		ps, holder, err := openPolicySource(f, ownID.String(), id.HTTPClient(), spool, kick, log)
		if err != nil {
			return err
		}
		cfg.Policy, rep.policy, policySrc = holder, ps, ps
		goRun(func() { ps.Run(runCtx) })
		if cfg.WorkflowStore, cfg.Workflows, err = openWorkflowStore(f, id.HTTPClient()); err != nil {
			return err
		}
		if cfg.WorkflowStore == nil && f.Catalog != "" {
			log.Info("gate: no workflow.store: the catalog's workflow steps are not checked at this gate")
		}
		cfg.Peers = map[string]policy.Agent{}
		for _, peer := range f.Peers {
			cfg.Peers[peer.SPIFFEID] = policy.Agent{Role: peer.Role, Class: peer.Class, Zone: peer.Zone, Partner: peer.Partner}
		}
		if cache, err = followTrust(runCtx, f, id, self, goRun, ps.Follow, log); err != nil {
			return err
		}
		if doc, _ := cache.Current(); doc != nil {
			ps.Follow(doc)
		}
		rep.trust = cache
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
			replay = intent.NewMemoryCache(capacity)
			cfg.Replay = replay
		}
		if f.Card != nil {
			cfg.Card, cfg.CardUpstream = f.Card.build()
		}
		if f.Approvals.ControlPlane {
			cfg.Approvals = &gate.ApprovalClient{Client: approval.NewClient(f.Server, id, id, self.TrustDomain()),
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
	if f.MetricsListen != "" {
		stop, err := serveObservability(runCtx, f.MetricsListen, reg, g.Ready, log)
		if err != nil {
			return err
		}
		wait = append(wait, stop)
	}
	goRun(func() { gateGauges(runCtx, m, id, spool, cache, replay) })
	wait = append([]func(){func() { _ = spool.Close() }}, wait...) // closed last: after the shipper and the gauges
	ln, err := listen(f.Listen)
	if err != nil {
		return err
	}
	if f.Server != "" { // the reporter's parts are all set from here on
		goRun(func() {
			gate.RunHeartbeat(runCtx, gate.HeartbeatConfig{URL: f.Server, Client: id.HTTPClient(), Interval: f.Live.Heartbeat.Interval,
				Report: rep.report, Logger: log}, beat)
		})
	}
	p.mu.Lock()
	p.id, p.policy, p.started = id, policySrc, true
	p.mu.Unlock()
	log.Info("gate: serving", "mode", f.Mode, "listen", f.Listen, "self", f.Self, "gate_id", ownID.String(),
		"identity_source", f.Identity.source(), "upstream", f.Upstream)
	err = g.Serve(runCtx, ln)
	if cause := context.Cause(runCtx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// outboundConfig fills the outbound part of cfg from f.
func outboundConfig(f *gateFile, cfg *gate.Config) error {
	cfg.Audience, cfg.AllowedUIDs, cfg.OutboundTTL = f.Outbound.Audience, f.Outbound.AllowedUIDs, f.Outbound.TTL
	if f.Outbound.UpstreamID != "" {
		cfg.UpstreamID = spiffeid.RequireFromString(f.Outbound.UpstreamID)
	}
	if f.Outbound.SecretFile != "" {
		var err error
		if cfg.LocalSecret, err = localSecret(f.Outbound.SecretFile); err != nil {
			return err
		}
	}
	cfg.Defaults = map[string]gate.ActionDefault{}
	for m, d := range f.Outbound.Defaults {
		cfg.Defaults[m] = gate.ActionDefault{Action: d.Action, Resource: d.Resource}
	}
	return nil
}

// gateGauges keeps the gate's gauges current once a second: SVID expiry, spool depth,
// trust state in force, replay cache size (in memory only; a Redis cache is shared).
func gateGauges(ctx context.Context, m *telemetry.Metrics, id gateSVID, spool *audit.Spool, cache *gate.TrustCache, replay *intent.MemoryCache) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if svid, err := id.GetX509SVID(); err == nil {
			m.SVIDExpiry(svid.Certificates[0].NotAfter)
		}
		m.SpoolDepth(spool.Depth())
		if cache != nil {
			if doc, _ := cache.Current(); doc != nil {
				m.TrustState(doc.Version, doc.IssuedAt)
			}
		}
		if replay != nil {
			m.ReplayCacheSize(replay.Len())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// gateTracing is the tracer provider of the gate: spans exported over OTLP/HTTP to
// tracing.otlp_endpoint, else $OTEL_EXPORTER_OTLP_ENDPOINT, else nowhere (their ids still
// reach the audit events and the traceparent header).
func gateTracing(ctx context.Context, f *gateFile, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	endpoint := f.Tracing.OTLPEndpoint
	if endpoint == "" {
		endpoint = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	name := f.Tracing.ServiceName
	if name == "" {
		name = "warden-gate"
	}
	tp, err := telemetry.NewTracerProvider(ctx, telemetry.TracingConfig{ServiceName: name, OTLPEndpoint: endpoint})
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if endpoint != "" {
		log.Info("gate: exporting traces", "otlp_endpoint", endpoint, "service_name", name)
	}
	return tp, nil
}

// followTrust opens the gate's trust-state cache (trust_cache, default
// svid_dir/trust-state.json) and, with a control plane, follows its watch stream and
// confirms an unchanged state regularly.
func followTrust(ctx context.Context, f *gateFile, id gateSVID, self spiffeid.ID, goRun func(func()), onUpdate func(*truststate.Document), log *slog.Logger) (*gate.TrustCache, error) {
	cachePath := f.TrustCache
	if cachePath == "" {
		cachePath = filepath.Join(f.SVIDDir, "trust-state.json")
	}
	cache, err := gate.OpenTrustCache(cachePath, id, self.TrustDomain(), nil)
	if err != nil {
		return nil, err
	}
	if doc, _ := cache.Current(); doc != nil {
		log.Info("gate: enforcing the cached trust state until the control plane answers", "version", doc.Version)
	}
	if f.Server != "" {
		fol := truststate.NewFollower(truststate.FollowerConfig{URL: f.Server, Client: id.HTTPClient(), Bundle: id,
			TrustDomain: self.TrustDomain(), OnAccept: cache.Store})
		cache.Follow(fol)
		goRun(func() { _ = fol.Run(ctx, onUpdate) })
		// The stream pushes only changes: confirm an unchanged state regularly.
		every := 30 * time.Second
		if f.MaxStaleness > 0 && f.MaxStaleness/4 < every {
			every = max(f.MaxStaleness/4, time.Second)
		}
		goRun(func() { gate.KeepConfirmed(ctx, fol, f.Server, id.HTTPClient(), every) })
	}
	return cache, nil
}
