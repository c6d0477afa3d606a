package sdk

import (
	"context"
	"crypto/rand"
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
	s.client = controlPlaneClient(s, s, s.td, cfg.Timeout)
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
	err := s.renew(ctx)
	if Reason(err) == api.ReasonSVIDExpired {
		// A kept-alive connection goes on presenting the certificate of its handshake,
		// and the control plane refuses it once that one has expired: again, on a new
		// connection with the current SVID.
		s.client.CloseIdleConnections()
		err = s.renew(ctx)
	}
	return err
}

func (s *Source) renew(ctx context.Context) error {
	key, csr, err := newKeyAndCSR(s.cfg.KeyType)
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
	if err := s.install(svid, bundle); err != nil {
		return err
	}
	s.log.Info("svid rotated", "spiffe_id", svid.ID.String(), "expires_at", svid.Certificates[0].NotAfter)
	return nil
}

// install makes a new SVID current: written to Dir (if set), then held, then OnRotate.
func (s *Source) install(svid *x509svid.SVID, bundle *x509bundle.Bundle) error {
	if svid.ID != s.cfg.SVID.ID {
		return fmt.Errorf("sdk: the control plane returned %s, expected %s", svid.ID, s.cfg.SVID.ID)
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

// Run renews at NextRenewal until ctx ends.
//
// Failed renewals are retried on a schedule set by the SVID's NotAfter: the delay doubles
// from one second up to a minute, but is never more than a third of the time left (at
// least 250 ms) and never runs past NotAfter, so retries come faster as expiry nears. A
// refusal (revoked, suspended, unknown identity, attestation failed: any 4xx but 408,
// 429 and svid_expired) stops Run with that error, since retrying cannot help.
//
// Once the SVID has expired (a control-plane outage longer than the time left), Run tries
// a renewal (the server's clock may lag) and then Recover: an agent with an Attester
// re-bootstraps with fresh TPM evidence, retried every few seconds until the control
// plane answers; an agent without one stops with an error wrapping ErrExpiredNoTPM.
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
	var retry time.Duration // 0: on schedule; else the delay before the next attempt
	for {
		wait := retry
		if retry == 0 {
			wait = time.Until(s.NextRenewal())
		}
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
		svid, _ := s.GetX509SVID()
		var err error
		// Past NotAfter a renewal can only work while the server's clock lags ours; after
		// a grace period it would only be another refused handshake in the server's log.
		if time.Since(svid.Certificates[0].NotAfter) < renewGrace {
			err = s.Renew(ctx)
		} else {
			err = errors.New("sdk: the SVID expired")
		}
		if err != nil && !permanent(err) && ctx.Err() == nil && expired(svid, time.Now()) {
			if err = s.Recover(ctx); errors.Is(err, ErrExpiredNoTPM) {
				s.log.Error("svid expired; cannot recover without a TPM", "spiffe_id", svid.ID.String(),
					"expired_at", svid.Certificates[0].NotAfter, "fix", "warden token create --entry NAME, then enrol again")
				return fmt.Errorf("sdk: the SVID of %s expired at %s: %w", svid.ID, svid.Certificates[0].NotAfter.UTC().Format(time.RFC3339), err)
			}
		}
		switch {
		case err == nil:
			retry = 0
			continue
		case ctx.Err() != nil:
			return nil
		}
		var re *RefusedError
		if errors.As(err, &re) && permanent(err) {
			s.log.Error("svid renewal refused", "reason", re.Code, "message", re.Message)
			return err
		}
		retry = retryDelay(retry, svid.Certificates[0].NotAfter, time.Now())
		s.log.Warn("svid renewal failed; retrying", "err", err, "in", retry, "expires_at", svid.Certificates[0].NotAfter)
	}
}

// renewGrace is how long after NotAfter Run still tries a renewal before recovering.
var renewGrace = 30 * time.Second

// permanent reports whether err is a refusal that retrying cannot change: a 4xx answer
// other than 408 (timeout) and 429 (busy).
func permanent(err error) bool {
	var re *RefusedError
	return errors.As(err, &re) && re.Status/100 == 4 && re.Status != 408 && re.Status != 429 &&
		re.Code != api.ReasonSVIDExpired // a kept-alive connection outlived the SVID: recover
}

// retryDelay is the delay after a failed attempt whose previous delay was prev (0: the
// first failure): doubling from 1 s up to 1 min, at most a third of the time left before
// notAfter (at least 250 ms), never past notAfter; once expired, doubling up to 15 s.
func retryDelay(prev time.Duration, notAfter, now time.Time) time.Duration {
	d := min(max(2*prev, time.Second), time.Minute)
	left := notAfter.Sub(now)
	if left <= 0 {
		return min(d, 15*time.Second)
	}
	d = min(d, max(left/3, 250*time.Millisecond))
	return min(d, left)
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
