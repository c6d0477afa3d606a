package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/inventory"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/workflow"
)

// The parts of `warden gate` that keep it current while it runs (docs/gate.md): the
// policy source (local reload, central bundles), the workflow store, the heartbeat.

// gateLiveFile is the part of gate.yaml these read.
type gateLiveFile struct {
	// Workflow: where the workflow state shared by gates lives; no store, no checks.
	Workflow struct {
		Store string `yaml:"store"` // control_plane | redis | memory
		Redis string `yaml:"redis"` // redis://..., for store: redis
	} `yaml:"workflow"`
	// Heartbeat: how often the gate reports to the control plane (with server).
	Heartbeat struct {
		Interval time.Duration `yaml:"interval"` // default 10s
	} `yaml:"heartbeat"`
}

func (l *gateLiveFile) check(f *gateFile) error {
	switch l.Workflow.Store {
	case "":
	case "control_plane":
		if f.Server == "" {
			return errors.New("gate config: workflow.store control_plane needs server")
		}
	case "redis":
		if l.Workflow.Redis == "" {
			return errors.New("gate config: workflow.store redis needs workflow.redis")
		}
	case "memory":
	default:
		return fmt.Errorf("gate config: workflow.store %q: want control_plane, redis or memory", l.Workflow.Store)
	}
	if l.Workflow.Store != "" && (f.Catalog == "" || f.Mode == gate.ModeOutbound) {
		return errors.New("gate config: workflow.store needs catalog (the workflows), and an inbound or legacy gate")
	}
	if l.Heartbeat.Interval < 0 || (l.Heartbeat.Interval > 0 && l.Heartbeat.Interval < time.Second) {
		return errors.New("gate config: heartbeat.interval at least 1s")
	}
	if f.Policy.Central && (f.Server == "" || f.Policy.PublicKey == "" || f.Mode == gate.ModeOutbound) {
		return errors.New("gate config: policy.central needs server and policy.public_key, and an inbound or legacy gate")
	}
	return nil
}

// openPolicySource builds the gate's policy source from gate.yaml.
func openPolicySource(f *gateFile, self string, client *http.Client, spool *audit.Spool, onChange func(), log *slog.Logger) (*gate.PolicySource, *policy.Holder, error) {
	var pub ed25519.PublicKey
	if f.Policy.PublicKey != "" {
		b, err := os.ReadFile(f.Policy.PublicKey)
		if err != nil {
			return nil, nil, fmt.Errorf("policy.public_key: %w", err)
		}
		if pub, err = policy.ParsePublicKey(b); err != nil {
			return nil, nil, fmt.Errorf("policy.public_key: %w", err)
		}
	}
	h := &policy.Holder{}
	cfg := gate.PolicySourceConfig{Holder: h, Dir: f.Policy.Dir, BundleFile: f.Policy.Bundle, PublicKey: pub,
		Central: f.Policy.Central, GateID: self, Zone: f.Zone, OnChange: onChange, Logger: log,
		Record: func(ctx context.Context, ev audit.Event) error { return spool.Append(ctx, ev, audit.Sync) }}
	if f.Policy.Central {
		cfg.CachePath = f.Policy.Cache
		if cfg.CachePath == "" {
			cfg.CachePath = filepath.Join(f.SVIDDir, "policy-bundle.json")
		}
		base := strings.TrimRight(f.Server, "/")
		cfg.Fetch = func(ctx context.Context, rev string) ([]byte, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+api.PathPolicyBundles+rev, nil)
			if err != nil {
				return nil, err
			}
			res, err := client.Do(req)
			if err != nil {
				return nil, err
			}
			defer res.Body.Close()
			b, err := io.ReadAll(io.LimitReader(res.Body, api.MaxBundleBytes+1))
			if err != nil {
				return nil, err
			}
			if res.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("GET %s: %d %s", api.PathPolicyBundles+rev, res.StatusCode, strings.TrimSpace(string(b)))
			}
			return b, nil
		}
	}
	ps, err := gate.NewPolicySource(cfg)
	return ps, h, err
}

// openWorkflowStore returns the workflow store and catalog gate.yaml names (nil, nil:
// none).
func openWorkflowStore(f *gateFile, client *http.Client) (workflow.Store, *inventory.Catalog, error) {
	if f.Live.Workflow.Store == "" {
		return nil, nil, nil
	}
	cat, err := inventory.Load(f.Catalog)
	if err != nil {
		return nil, nil, fmt.Errorf("catalog: %w", err)
	}
	for _, fd := range inventory.Check(cat, nil) {
		if fd.Code == inventory.CodeWorkflowStep && fd.Severity == inventory.SevError {
			return nil, nil, fmt.Errorf("catalog: %s", fd)
		}
	}
	switch f.Live.Workflow.Store {
	case "control_plane":
		return &workflow.RemoteStore{URL: f.Server, Client: client}, cat, nil
	case "redis":
		opt, err := redis.ParseURL(f.Live.Workflow.Redis)
		if err != nil {
			return nil, nil, fmt.Errorf("workflow.redis: %w", err)
		}
		return workflow.NewRedisStore(redis.NewClient(opt), "warden:wf:"), cat, nil
	}
	return workflow.NewMemoryStore(), cat, nil
}

// gateReporter builds the heartbeat report from the running gate's parts.
type gateReporter struct {
	f  *gateFile
	id interface {
		GetX509SVID() (*x509svid.SVID, error)
	}
	spool   *audit.Spool
	trust   gate.TrustSource // nil on an outbound gate
	policy  *gate.PolicySource
	started time.Time
}

func (r *gateReporter) report() api.GateReport {
	rep := api.GateReport{Mode: r.f.Mode, Zone: r.f.Zone, SpoolDepth: int64(r.spool.Depth()), StartedAt: r.started}
	if sv, err := r.id.GetX509SVID(); err == nil && len(sv.Certificates) > 0 {
		rep.SVIDExpiresAt = sv.Certificates[0].NotAfter
	}
	if r.policy != nil {
		rep.PolicyRevision, rep.PolicySource, rep.LastError = r.policy.Status()
	}
	if r.trust != nil {
		if doc, age := r.trust.Current(); doc != nil {
			rep.TrustStateVersion, rep.TrustStateAgeMS = doc.Version, age.Milliseconds()
			rep.MaxStalenessMS = gate.MaxStaleness(doc, r.f.Zone, r.f.MaxStaleness).Milliseconds()
		}
	}
	return rep
}
