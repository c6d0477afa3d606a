package workload

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/federation"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// AgentConfig configures an AgentSource.
type AgentConfig struct {
	Source    *sdk.Source // the agent's rotating SVID
	ServerURL string
	// Changes is the broadcast of the source's changes; the SDK source's OnRotate must
	// call its Notify (the source was made before this one). Nil: a new one.
	Changes *Notifier
	Logger  *slog.Logger
	// MinBundleRefresh is the shortest wait between two fetches of the control plane's
	// bundle (for its JWT keys); default federation.MinRefresh. The bundle's refresh
	// hint sets the usual wait.
	MinBundleRefresh time.Duration
}

// AgentSource is the Source of an enrolled agent: the X509-SVID sdk.Source keeps
// renewed, the own trust domain's bundle (X.509 from the SVID source; JWT keys fetched
// from the control plane at its refresh hint, since they rotate), and the federated
// trust domains' bundles from the signed trust state the control plane pushes.
type AgentSource struct {
	cfg AgentConfig
	td  spiffeid.TrustDomain

	mu      sync.Mutex
	homeJWT *jwtbundle.Bundle
	fed     *federation.Set
}

var _ Source = (*AgentSource)(nil)

// NewAgentSource returns a source for the agent whose SVID src holds.
func NewAgentSource(cfg AgentConfig) (*AgentSource, error) {
	if cfg.Source == nil || cfg.ServerURL == "" {
		return nil, fmt.Errorf("workload: AgentConfig needs Source and ServerURL")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Changes == nil {
		cfg.Changes = &Notifier{}
	}
	sv, _ := cfg.Source.GetX509SVID()
	return &AgentSource{cfg: cfg, td: sv.ID.TrustDomain(), fed: federation.SetOf(nil)}, nil
}

// Changed implements Source.
func (a *AgentSource) Changed() <-chan struct{} { return a.cfg.Changes.Changed() }

// Notify tells the streams that the source changed.
func (a *AgentSource) Notify() { a.cfg.Changes.Notify() }

// Snapshot implements Source.
func (a *AgentSource) Snapshot() Snapshot {
	sv, _ := a.cfg.Source.GetX509SVID()
	home, _ := a.cfg.Source.GetX509BundleForTrustDomain(a.td)
	snap := Snapshot{SVID: sv, X509Bundles: map[spiffeid.TrustDomain]*x509bundle.Bundle{a.td: home},
		JWTBundles: map[spiffeid.TrustDomain]*jwtbundle.Bundle{}}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.homeJWT != nil {
		snap.JWTBundles[a.td] = a.homeJWT
	}
	for td, b := range a.fed.Bundles {
		if xb := b.X509Bundle(); !xb.Empty() {
			snap.X509Bundles[td] = xb
		}
		if jb := b.JWTBundle(); !jb.Empty() {
			snap.JWTBundles[td] = jb
		}
	}
	return snap
}

// FetchJWTSVID implements Source: the control plane mints it.
func (a *AgentSource) FetchJWTSVID(ctx context.Context, audience []string) (*jwtsvid.SVID, error) {
	return a.cfg.Source.FetchJWTSVID(ctx, audience, 0)
}

// Run keeps the bundles fresh until ctx ends: it follows the trust state (federated
// bundles, pushed) and fetches the control plane's bundle at its refresh hint.
func (a *AgentSource) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); a.followTrustState(ctx) }()
	a.refreshHome(ctx)
	<-done
}

func (a *AgentSource) followTrustState(ctx context.Context) {
	f := truststate.NewFollower(truststate.FollowerConfig{URL: a.cfg.ServerURL, Client: a.cfg.Source.HTTPClient(),
		Bundle: a.cfg.Source, TrustDomain: a.td})
	_ = f.Run(ctx, func(doc *truststate.Document) {
		set := federation.SetOf(doc)
		for name, err := range set.Errors {
			a.cfg.Logger.Warn("workload api: federated bundle left out", "trust_domain", name, "err", err)
		}
		a.mu.Lock()
		changed := !sameBundles(a.fed, set)
		a.fed = set
		a.mu.Unlock()
		if changed {
			a.Notify()
		}
	})
}

func sameBundles(a, b *federation.Set) bool {
	if len(a.Bundles) != len(b.Bundles) {
		return false
	}
	for td, x := range a.Bundles {
		if y, ok := b.Bundles[td]; !ok || !x.Equal(y) {
			return false
		}
	}
	return true
}

// refreshHome fetches GET /v1/bundle over mTLS (the control plane authenticated as
// spiffe://TD/warden/server) now and then at the bundle's refresh hint; a failure is
// retried at the floor interval, keeping the JWT keys held.
func (a *AgentSource) refreshHome(ctx context.Context) {
	for {
		wait := a.cfg.MinBundleRefresh
		b, err := a.fetchHome(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			a.cfg.Logger.Warn("workload api: control plane bundle not fetched", "err", err)
		default:
			wait = federation.NextRefresh(b, a.cfg.MinBundleRefresh)
			jb := b.JWTBundle()
			a.mu.Lock()
			changed := a.homeJWT == nil || !a.homeJWT.Equal(jb)
			a.homeJWT = jb
			a.mu.Unlock()
			if changed {
				a.Notify()
			}
		}
		if wait <= 0 {
			wait = federation.MinRefresh
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (a *AgentSource) fetchHome(ctx context.Context) (*spiffebundle.Bundle, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(a.cfg.ServerURL, "/")+api.PathBundle, nil)
	if err != nil {
		return nil, err
	}
	res, err := a.cfg.Source.HTTPClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	doc, err := io.ReadAll(io.LimitReader(res.Body, federation.MaxBundleSize+1))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bundle: status %d: %s", res.StatusCode, bytes.TrimSpace(doc))
	}
	return federation.ParseBundle(a.td, doc)
}
