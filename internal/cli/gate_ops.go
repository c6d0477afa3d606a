package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/telemetry"
)

// reload is the gate's one reload entry point (SIGHUP): it re-reads gate.yaml strictly,
// reloads the policy it names, re-reads the SVID files, then runs every reload hook.
// A gate.yaml that does not parse, or a policy that does not load, leaves everything
// as it was and is returned; keys that cannot change while serving (listen, mode, self,
// svid_dir, peers, limits, ...) are reported as needing a restart and keep their value.
func (p *gateProc) reload(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		return errors.New("the gate is still starting")
	}
	next := p.f
	if p.path != "" {
		b, err := os.ReadFile(p.path)
		if err != nil {
			return err
		}
		if next, err = parseGateFile(b); err != nil {
			return err
		}
		if restart := restartOnlyChanges(p.f, next); restart {
			p.log.Warn("gate: gate.yaml changed beyond policy: restart the gate to apply the rest")
		}
	}
	var did []string
	if p.policy != nil {
		// The policy source reloads the local bundle (gate.yaml's policy paths, which may
		// have changed) or, following central bundles, retries a failed fetch; a bundle
		// that fails is refused and audited, the running one stays.
		p.policy.SetLocal(next.Policy.Dir, next.Policy.Bundle)
		if err := p.policy.Reload(ctx, "sighup"); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		did = append(did, "policy")
		keep := *p.f
		keep.Policy = next.Policy
		p.f = &keep
	}
	changed, err := p.id.Reload()
	if err != nil {
		p.log.Warn("gate: svid files not reloaded", "err", err)
	} else if changed {
		did = append(did, "svid")
	}
	for _, h := range p.reloadHooks {
		if err := h(ctx, p.f); err != nil {
			return err
		}
	}
	p.log.Info("gate: reloaded", "what", did)
	return nil
}

// restartOnlyChanges reports whether next differs from cur in anything but the policy
// section (which reload applies).
func restartOnlyChanges(cur, next *gateFile) bool {
	a, b := *cur, *next
	a.Policy, b.Policy = next.Policy, next.Policy
	return !reflect.DeepEqual(a, b)
}

// serveObservability serves /metrics, /healthz (the process answers) and /readyz (ready()
// is nil; else 503 with the reason) in plain HTTP on addr until ctx ends or stop.
func serveObservability(ctx context.Context, addr string, reg *prometheus.Registry, ready func() error, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", telemetry.Handler(reg))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready != nil {
			if err := ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	go func() { <-ctx.Done(); _ = hs.Close() }()
	log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics", "health", "/healthz, /readyz")
	return func() { _ = hs.Close() }, nil
}

// shipReporter makes audit shipping failures loud: each failure counts in
// warden_audit_ship_failures_total{reason}; the first, every change of cause and then one
// a minute are logged at warn with the cause and the spool depth; the recovery at info.
type shipReporter struct {
	next    audit.Sink
	log     *slog.Logger
	metrics *telemetry.Metrics
	spool   *audit.Spool

	mu        sync.Mutex
	failing   int // consecutive failures
	lastCause string
	lastLog   time.Time
}

// Ship implements audit.Sink.
func (s *shipReporter) Ship(ctx context.Context, batch [][]byte) error {
	err := s.next.Ship(ctx, batch)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		if s.failing > 0 {
			s.log.Info("gate: audit shipping recovered", "failed_attempts", s.failing, "spool_depth", s.spool.Depth())
		}
		s.failing, s.lastCause = 0, ""
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	reason := "unreachable"
	var ae *api.Error
	if errors.As(err, &ae) {
		reason = ae.Code
	}
	s.metrics.AuditShipFailure(reason)
	s.failing++
	if cause := err.Error(); cause != s.lastCause || time.Since(s.lastLog) >= time.Minute {
		s.lastCause, s.lastLog = cause, time.Now()
		s.log.Warn("gate: audit shipping failed; the events stay in the spool and are retried",
			"reason", reason, "err", err, "failed_attempts", s.failing, "spool_depth", s.spool.Depth())
	}
	return err
}
