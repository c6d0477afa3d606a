package gate

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/inventory"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/telemetry"
	"github.com/warden-a2a/warden/internal/workflow"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// Modes of a gate.
const (
	ModeInbound  = "inbound"  // mTLS in, pipeline, plain HTTP to the local A2A agent
	ModeOutbound = "outbound" // local plain HTTP in (authenticated), mTLS + signed intent out
	ModeLegacy   = "legacy"   // mTLS in, pipeline, plain HTTP + per-request JWT to a legacy system
)

// Config is everything a gate needs; the CLI builds it from gate.yaml.
type Config struct {
	Mode string
	// Self is the SPIFFE ID of the agent this gate stands for: the audience of inbound
	// intents (inbound, legacy), the issuer of outbound ones (outbound).
	Self spiffeid.ID
	// SVID and Bundle: the identity the gate presents in TLS and the trust bundle it
	// verifies peers with; an sdk.Source rotates both. Outbound, the SVID must be the
	// agent's own (intents are bound to the certificate that carries them).
	SVID   x509svid.Source
	Bundle x509bundle.Source
	// Upstream: inbound, the local agent's base URL (http://127.0.0.1:9000 or
	// unix:///run/agent.sock); legacy, the legacy system's base URL; outbound, the
	// remote gate's https URL.
	Upstream string
	// Routes are the agent's A2A paths (inbound, legacy: the protected agent's;
	// outbound: the remote agent's): what the classifier matches.
	Routes Routes

	// Inbound and legacy.
	Peers        map[string]policy.Agent // directory of callers by SPIFFE ID (role, class, zone)
	Policy       *policy.Holder
	Trust        TrustSource
	Zone         string        // the gate's own zone: its max_staleness applies
	MaxStaleness time.Duration // when the zone sets none; default 5m
	Replay       intent.ReplayCache
	MaxIntentTTL time.Duration // default intent.DefaultMaxLifetime
	Audit        AuditSink     // default LogSink{Logger}
	Approvals    Approvals     // default NoApprovals
	// Catalog, when set, is the workflow inventory (internal/inventory): a call on a path
	// it does not declare is flagged in the decision event (Undeclared) as an anomaly,
	// a trigger for event-driven re-attestation. It refuses nothing by itself.
	Catalog *inventory.Index
	// Workflows and WorkflowStore, when both set, check every call whose action is a
	// step of one of the catalog's workflows against the workflow state shared by the
	// gates (workflow.go): out-of-order and repeated steps are refused (enforce) or
	// audited as would_deny (observe).
	Workflows     *inventory.Catalog
	WorkflowStore workflow.Store
	// Tracer makes one span per decision (OpenTelemetry); nil uses the global provider,
	// which is a no-op unless one is installed (telemetry.NewTracerProvider).
	Tracer trace.Tracer
	// Metrics, when set, receives the latency of each inbound pipeline stage
	// (warden_decision_stage_seconds{stage}); decisions are counted by MetricsSink.
	Metrics *telemetry.Metrics
	// Card is the agent card served at /.well-known/agent-card.json, signed by the gate
	// (inbound); nil serves none.
	Card *a2a.AgentCard
	// CardUpstream, when set, serves the agent's own card instead of Card: fetched from
	// the upstream, interfaces rewritten to the gate, re-signed (inbound, legacy).
	CardUpstream *CardUpstream
	// AllowPushConfig lets Create/DeleteTaskPushNotificationConfig through; off by
	// default, since a push URL makes the agent call out to an address of the caller's
	// choosing.
	AllowPushConfig bool

	// Legacy.
	LegacyKey      *ecdsa.PrivateKey // ES256 key for downstream JWTs
	LegacyAudience string            // aud of the downstream JWTs: the legacy system's name
	LegacyTTL      time.Duration     // exp - iat; default 30s, at most 60s

	// Outbound.
	UpstreamID   spiffeid.ID // SPIFFE ID the remote gate's certificate must carry (zero: any of the trust domain)
	Audience     string      // aud of the signed intents: the remote agent's SPIFFE ID
	AllowedUIDs  []int       // unix-socket callers whose uid may use the gate (SO_PEERCRED)
	LocalSecret  []byte      // loopback callers must send it in Warden-Local-Secret
	Defaults     map[string]ActionDefault
	OutboundTTL  time.Duration // intent lifetime; default 30s
	StripHeaders []string      // extra headers removed before forwarding

	Limits Limits
	Logger *slog.Logger
	Now    func() time.Time
}

// ActionDefault names the act/res an outbound gate signs for an A2A method when the
// call itself names none.
type ActionDefault struct {
	Action   string
	Resource string
}

// Limits bound what one caller can make the gate hold.
type Limits struct {
	MaxBody           int64         // request body bytes; default 1 MiB
	MaxHeaderBytes    int           // default 32 KiB
	ReadHeaderTimeout time.Duration // includes the TLS handshake; default 5s
	BodyTimeout       time.Duration // to receive the whole body; default 10s
	IdleTimeout       time.Duration // keep-alive idle; default 60s
	MaxConnsPerPeer   int           // open connections per remote address; default 64
	MaxConns          int           // open connections in total; default 4096
}

func (l *Limits) defaults() {
	if l.MaxBody == 0 {
		l.MaxBody = 1 << 20
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = 32 << 10
	}
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = 5 * time.Second
	}
	if l.BodyTimeout == 0 {
		l.BodyTimeout = 10 * time.Second
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = 60 * time.Second
	}
	if l.MaxConnsPerPeer == 0 {
		l.MaxConnsPerPeer = 64
	}
	if l.MaxConns == 0 {
		l.MaxConns = 4096
	}
}

func (c *Config) validate() error {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Limits.defaults()
	if c.SVID == nil || c.Bundle == nil {
		return errors.New("gate: SVID and Bundle are required")
	}
	if c.Self.IsZero() {
		return errors.New("gate: Self (SPIFFE ID) is required")
	}
	u, err := url.Parse(c.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix") {
		return fmt.Errorf("gate: upstream %q: need an http, https or unix URL", c.Upstream)
	}
	switch c.Mode {
	case ModeInbound, ModeLegacy:
		if c.Policy == nil || c.Trust == nil || c.Replay == nil {
			return errors.New("gate: Policy, Trust and Replay are required in " + c.Mode + " mode")
		}
		if c.MaxStaleness == 0 {
			c.MaxStaleness = 5 * time.Minute
		}
		if c.Audit == nil {
			c.Audit = LogSink{Logger: c.Logger}
		}
		if c.Approvals == nil {
			c.Approvals = NoApprovals{}
		}
		if c.Mode == ModeLegacy {
			if c.LegacyKey == nil || c.LegacyAudience == "" {
				return errors.New("gate: legacy mode needs LegacyKey and LegacyAudience")
			}
			if c.LegacyTTL == 0 {
				c.LegacyTTL = 30 * time.Second
			}
			if c.LegacyTTL > 60*time.Second {
				return errors.New("gate: LegacyTTL must be at most 60s")
			}
		}
	case ModeOutbound:
		if c.Audience == "" {
			return errors.New("gate: outbound mode needs Audience (the remote agent's SPIFFE ID)")
		}
		if _, err := spiffeid.FromString(c.Audience); err != nil {
			return fmt.Errorf("gate: Audience: %w", err)
		}
		if len(c.AllowedUIDs) == 0 && len(c.LocalSecret) < 16 {
			return errors.New("gate: outbound mode needs AllowedUIDs (unix socket) or a LocalSecret of at least 16 bytes")
		}
		if c.OutboundTTL == 0 {
			c.OutboundTTL = 30 * time.Second
		}
		if c.Audit == nil {
			c.Audit = LogSink{Logger: c.Logger}
		}
	default:
		return fmt.Errorf("gate: unknown mode %q (inbound, outbound, legacy)", c.Mode)
	}
	return nil
}

// tracer is the configured tracer, else the global provider's.
func (g *Gate) tracer() trace.Tracer {
	if g.cfg.Tracer != nil {
		return g.cfg.Tracer
	}
	return otel.Tracer("github.com/warden-a2a/warden/internal/gate")
}
