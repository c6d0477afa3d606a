package sdk

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/truststate"
)

// SourceConfig configures a rotating Source.
type SourceConfig struct {
	ServerURL string
	SVID      *x509svid.SVID     // the current SVID (from Enroll or LoadFiles)
	Bundle    *x509bundle.Bundle // the trust bundle of the SVID's trust domain
	Dir       string             // when set, every new SVID is written there (WriteFiles)
	KeyType   KeyType            // key type of renewed SVIDs; default ecdsa-p256
	// Attester, when set, re-attests at every renewal (fresh quote over a fresh nonce:
	// no fresh evidence, no new SVID), and Run follows the trust-state stream and renews
	// at once when the control plane pushes a challenge for this agent (event-driven
	// re-attestation).
	Attester Attester
	// OnRotate, when set, is called after each successful rotation.
	OnRotate func(*x509svid.SVID)
	Logger   *slog.Logger
	Timeout  time.Duration // per renewal request; default 30s
}

// Source holds an agent's current X509-SVID and trust bundle and renews the SVID over mTLS
// with the SVID itself. It implements go-spiffe's x509svid.Source and x509bundle.Source,
// so tlsconfig.MTLSServerConfig / MTLSClientConfig take it unchanged. TLS asks the source
// for the certificate on every handshake: after a rotation new connections use the new
// SVID while connections already open, and the calls on them, go on undisturbed.
type Source struct {
	cfg    SourceConfig
	td     spiffeid.TrustDomain
	log    *slog.Logger
	client *http.Client

	mu     sync.RWMutex
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle

	kick chan struct{} // a pushed challenge: renew now
}

var (
	_ x509svid.Source   = (*Source)(nil)
	_ x509bundle.Source = (*Source)(nil)
)

// NewSource returns a Source starting from cfg.SVID and cfg.Bundle.
func NewSource(cfg SourceConfig) (*Source, error) {
	if cfg.SVID == nil || cfg.Bundle == nil {
		return nil, errors.New("sdk: SourceConfig needs SVID and Bundle")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	s := &Source{cfg: cfg, td: cfg.SVID.ID.TrustDomain(), log: cfg.Logger, svid: cfg.SVID, bundle: cfg.Bundle,
		kick: make(chan struct{}, 1)}
	// Renewal authenticates with this very source: keep-alive connections are reused
	// across renewals, and new ones present the newest SVID.
	s.client = &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{
		TLSClientConfig:     tlsconfig.MTLSClientConfig(s, s, tlsconfig.AuthorizeID(serverID(s.td))),
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}}
	return s, nil
}

// GetX509SVID returns the current SVID.
func (s *Source) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.svid, nil
}

// GetX509BundleForTrustDomain returns the bundle of the source's trust domain.
func (s *Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td != s.td {
		return nil, fmt.Errorf("sdk: no bundle for trust domain %q", td)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bundle, nil
}

// HTTPClient returns an mTLS client that presents the current SVID and trusts only the
// control plane; use it for the control plane's agent endpoints (trust state, JWT-SVIDs).
func (s *Source) HTTPClient() *http.Client { return s.client }

// Renew obtains a new SVID with a fresh key now. A refusal comes back as *RefusedError
// (identity_revoked, identity_suspended, unknown_identity, attestation_failed, ...).
func (s *Source) Renew(ctx context.Context) error {
	key, err := newKey(s.cfg.KeyType)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return err
	}
	req := api.RenewRequest{CSR: csr}
	if s.cfg.Attester != nil {
		if req.Evidence, err = attestSlot(ctx, s.client, s.cfg.ServerURL, "", s.cfg.Attester); err != nil {
			return err
		}
	}
	var resp api.SVIDResponse
	if err := postJSON(ctx, s.client, strings.TrimRight(s.cfg.ServerURL, "/")+api.PathRenew, req, &resp); err != nil {
		return err
	}
	svid, bundle, err := parseSVIDResponse(&resp, key, false)
	if err != nil {
		return err
	}
	if svid.ID != s.cfg.SVID.ID {
		return fmt.Errorf("sdk: renewal returned %s, expected %s", svid.ID, s.cfg.SVID.ID)
	}
	if s.cfg.Dir != "" {
		if err := WriteFiles(s.cfg.Dir, svid, bundle); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.svid, s.bundle = svid, bundle
	s.mu.Unlock()
	if s.cfg.OnRotate != nil {
		s.cfg.OnRotate(svid)
	}
	s.log.Info("svid rotated", "spiffe_id", svid.ID.String(), "expires_at", svid.Certificates[0].NotAfter)
	return nil
}

// NextRenewal returns when the current SVID should be renewed: at half its lifetime plus
// a random jitter of up to a tenth of it, so a fleet enrolled together spreads out.
func (s *Source) NextRenewal() time.Time {
	s.mu.RLock()
	leaf := s.svid.Certificates[0]
	s.mu.RUnlock()
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	jitter := time.Duration(0)
	if j := int64(life / 10); j > 0 {
		n, _ := rand.Int(rand.Reader, big.NewInt(j))
		jitter = time.Duration(n.Int64())
	}
	return leaf.NotBefore.Add(life/2 + jitter)
}

// Run renews at NextRenewal until ctx ends. Failed renewals are retried with backoff
// while the current SVID is still valid; a refusal (revoked, suspended, unknown identity)
// stops Run with that error, since retrying cannot help.
//
// With an Attester, Run also follows the trust state (verified, pushed over the watch
// stream) and renews — re-attests — at once when a challenge for this agent appears.
func (s *Source) Run(ctx context.Context) error {
	if s.cfg.Attester != nil {
		fctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); s.followChallenges(fctx) }()
		defer func() { stop(); <-done }()
	}
	backoff := time.Second
	for {
		wait := time.Until(s.NextRenewal())
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		case <-s.kick:
			timer.Stop()
			s.log.Info("attestation challenge: re-attesting now")
		}
		err := s.Renew(ctx)
		switch {
		case err == nil:
			backoff = time.Second
			continue
		case ctx.Err() != nil:
			return nil
		}
		var re *RefusedError
		if errors.As(err, &re) && re.Status/100 == 4 {
			s.log.Error("svid renewal refused", "reason", re.Code, "message", re.Message)
			return err
		}
		s.log.Warn("svid renewal failed; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Minute)
	}
}

// followChallenges watches the trust state and kicks Run when a new challenge for this
// agent appears (each challenge once, by its time).
func (s *Source) followChallenges(ctx context.Context) {
	f := truststate.NewFollower(truststate.FollowerConfig{URL: s.cfg.ServerURL, Client: s.client, Bundle: s, TrustDomain: s.td})
	me := s.cfg.SVID.ID.String()
	var last time.Time
	_ = f.Run(ctx, func(d *truststate.Document) {
		c, ok := d.Challenges[me]
		if !ok || c.At.Equal(last) {
			return
		}
		last = c.At
		select {
		case s.kick <- struct{}{}:
		default:
		}
	})
}
