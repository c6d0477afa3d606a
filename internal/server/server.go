// Package server is the Warden control plane (`warden server`): the CA of one trust
// domain, the registration entries and one-time join tokens, enrollment and renewal of
// short-lived X509-SVIDs, JWT-SVIDs, the SPIFFE trust bundle, and the signed trust-state
// document pushed to gates. It serves one HTTPS API (docs/api.md): TLS 1.3 with the
// server's own rotating X509-SVID; a client certificate is optional at the handshake and
// required by every endpoint except the bundle and enrollment; the admin endpoints accept
// only the admin credential created at first start.
package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/fleet"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/telemetry"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/internal/workflow"
)

// Config configures a control plane. Zero values take the documented defaults.
type Config struct {
	TrustDomain string        // e.g. "supplychain.example"; required
	DataDir     string        // CA keys (DataDir/ca) and admin credential (DataDir/admin); required
	Store       store.Store   // required
	SVIDTTL     time.Duration // lifetime of agent SVIDs; default 15m, at most 24h
	// RecoverWindow is how long after its expiry a TPM-attested agent's SVID may be
	// recovered with fresh evidence (POST /v1/recover); 0: DefaultRecoverWindow (72h),
	// negative: recovery off.
	RecoverWindow time.Duration
	// DNSNames and IPs are put into the server's own certificate besides its SPIFFE ID
	// (clients that dial by host name check them). Default: localhost, 127.0.0.1, ::1.
	DNSNames []string
	IPs      []net.IP
	Logger   *slog.Logger     // default: discard
	Now      func() time.Time // default: time.Now
	// Attestation turns on runtime attestation (TPM quotes, provenance, trust tiers,
	// fail-closed actions; docs/attestation.md). Nil: evidence is ignored and enrollment
	// needs only the join token.
	Attestation *AttestConfig
	// ApprovalStore keeps approval requests and approvers; nil: approval_* tables in
	// Store's database (SQLite and PostgreSQL backends). OnApprovalEvent, if set, sees
	// every approval lifecycle event (docs/approvals.md).
	ApprovalStore   approval.Store
	OnApprovalEvent func(approval.Event)
	// ApprovalRetention is how long an approval request is kept after it expired, used
	// or not, before the server deletes it with its decisions (hourly); its history stays
	// in the audit log. Default 720h (30 days); negative: never delete.
	ApprovalRetention time.Duration
	// Audit, when set, receives every lifecycle event (enrollments and renewals granted or
	// refused, revocations, quarantines, suspensions, attestation results, approvals) and
	// the decision events gates ship to POST /v1/audit/events (docs/audit-events.md).
	Audit *audit.Log
	// Catalog is the workflow inventory (docs/catalog.md), re-read when it changes: a
	// change of the dependencies it declares for an agent pushes a re-attestation
	// challenge to that agent (dependency_change). "": none.
	Catalog string
	// AnomalyQuarantine quarantines an agent that raises this many anomalies within
	// AnomalyWindow (default 10m); 0: anomalies only challenge.
	AnomalyQuarantine int
	AnomalyWindow     time.Duration
	// PolicyKeys verify the policy bundles operators push (`warden policy push`; Ed25519,
	// several during a key rotation). None: pushes are refused (policy_key_unset).
	PolicyKeys []ed25519.PublicKey
	// Metrics, when set, counts SVIDs issued, renewed and revoked and tracks the
	// trust-state version (docs/telemetry.md); the CLI serves it on --metrics-listen.
	Metrics *telemetry.Metrics
	// JWTIssuer is the iss claim of JWT-SVIDs and the issuer of the OpenID Connect
	// discovery document (docs/identity.md); default: the API's URL, https://LISTEN.
	JWTIssuer string
	// JWTKeyRotation is how long a JWT-SVID key signs before its successor takes over;
	// default 24h, at least 1m. The successor is published min(3 × BundleRefreshHint,
	// JWTKeyRotation/2) ahead (SPIFFE Federation §4.1 recommends 3–5 refresh hints).
	JWTKeyRotation time.Duration
	// BundleRefreshHint is the refresh_hint of the SPIFFE bundle the server serves;
	// default 5m (the federation spec's recommended polling default).
	BundleRefreshHint time.Duration
	// KeyCheckInterval is how often the JWT keys are checked for rotation and retirement;
	// default 30s.
	KeyCheckInterval time.Duration
	// FederationWebRoots are the roots that authenticate https_web bundle endpoints of
	// federated trust domains; nil: the system's roots (docs/federation.md).
	FederationWebRoots *x509.CertPool
	// FederationMinRefresh is the shortest interval between two fetches of a foreign
	// bundle, whatever its refresh hint says; default 30s.
	FederationMinRefresh time.Duration
}

// Identities of the control plane's own credentials.
const (
	serverPath = "/warden/server"
	adminPath  = "/warden/admin"
	// serverSVIDTTL and adminTTL: the server's and admin's credentials are SVIDs too,
	// renewed at half-life by the server itself.
	serverSVIDTTL = time.Hour
	adminTTL      = ca.MaxTTL
)

// Server is a running control plane.
type Server struct {
	cfg    Config
	td     spiffeid.TrustDomain
	log    *slog.Logger
	now    func() time.Time
	ca     *ca.CA
	issuer *ca.Issuer
	trust  *truststate.Manager
	att    *attestor // nil when attestation is off

	approvals *approval.Service

	tlsCert atomic.Pointer[tls.Certificate]
	svid    atomic.Pointer[x509svid.SVID]

	serverID spiffeid.ID
	adminID  spiffeid.ID

	mu  sync.Mutex
	url string

	fleet     *fleet.Store       // policy bundles and gate heartbeats (nil: store without SQL)
	workflows *workflow.SQLStore // workflow state of gates (nil: store without SQL)
	detector  *audit.Detector    // anomalies in the decisions gates ship
	anomMu    sync.Mutex
	anomalies map[string]*anomalyCount // recent anomalies per agent (AnomalyQuarantine)
	// accessLimit bounds the access events of refused requests (anyone can send one).
	accessLimit audit.PerSecond
	fedStatus   fedStatus // what this replica saw of each federated bundle's fetches
}

// New loads or creates the CA, issues the server's own SVID and the admin credential, and
// loads the trust state.
func New(ctx context.Context, cfg Config) (*Server, error) {
	td, err := spiffeid.TrustDomainFromString(cfg.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("server: trust domain: %w", err)
	}
	if cfg.Store == nil || cfg.DataDir == "" {
		return nil, errors.New("server: Store and DataDir are required")
	}
	if cfg.SVIDTTL == 0 {
		cfg.SVIDTTL = ca.DefaultTTL
	}
	if cfg.SVIDTTL < 0 || cfg.SVIDTTL > ca.MaxTTL {
		return nil, fmt.Errorf("server: svid ttl %s: must be at most %s", cfg.SVIDTTL, ca.MaxTTL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.keyDefaults(); err != nil {
		return nil, err
	}
	if len(cfg.DNSNames) == 0 && len(cfg.IPs) == 0 {
		cfg.DNSNames = []string{"localhost"}
		cfg.IPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: filepath.Join(cfg.DataDir, "ca"), Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, td: td, log: cfg.Logger, now: cfg.Now, ca: c,
		issuer: &ca.Issuer{CA: c, Store: cfg.Store, TTL: cfg.SVIDTTL}, anomalies: map[string]*anomalyCount{},
		serverID: spiffeid.RequireFromPath(td, serverPath),
		adminID:  spiffeid.RequireFromPath(td, adminPath),
	}
	s.accessLimit.N = accessPerSecond
	if err := s.finishPendingRotation(ctx); err != nil {
		return nil, err
	}
	s.rotateIntermediateIfDue(ctx)
	s.maintainJWTKeys(ctx)
	if err := s.rotateServerSVID(ctx); err != nil {
		return nil, err
	}
	if err := s.refreshAdmin(ctx, false); err != nil {
		return nil, err
	}
	if err := s.initApprovals(ctx); err != nil {
		return nil, err
	}
	signer := func() (crypto.Signer, []*x509.Certificate) {
		sv := s.svid.Load()
		return sv.PrivateKey, sv.Certificates
	}
	if cfg.Attestation != nil {
		ac := *cfg.Attestation
		if ac.Nonces == nil && ac.Activations == nil {
			// Challenges in the shared database: any replica answers, a restart keeps them.
			var st *attest.SQLState
			switch b := cfg.Store.(type) {
			case *sqlite.Store:
				st, err = attest.NewSQLiteState(ctx, b.DB(), 0, 0)
			case *postgres.Store:
				st, err = attest.NewPostgresState(ctx, b.DB(), 0, 0)
			}
			if err != nil {
				return nil, err
			}
			if st != nil {
				ac.Nonces, ac.Activations = st, st
			}
		}
		s.att = newAttestor(ac)
	}
	s.trust, err = truststate.NewManager(ctx, cfg.Store, td.Name(), signer, cfg.Now, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if s.fleet, err = openFleet(ctx, cfg.Store); err != nil {
		return nil, err
	}
	if s.workflows, err = openWorkflows(ctx, cfg.Store); err != nil {
		return nil, err
	}
	s.detector = audit.NewDetector(audit.DetectorConfig{HomeTrustDomain: td.Name(), ZoneOf: s.zoneOf, Emit: s.onAnomaly})
	// Events a crash left in the outbox reach the audit log before anything is served.
	if err := s.drainOutbox(ctx); err != nil {
		return nil, fmt.Errorf("server: audit events staged before a restart: %w", err)
	}
	if err := s.syncDirectory(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// zoneOf is the home zone of an agent of this trust domain, from its entry.
func (s *Server) zoneOf(spiffeID string) string {
	e, err := s.cfg.Store.GetEntryBySPIFFEID(context.Background(), spiffeID)
	if err != nil {
		return ""
	}
	return e.Zone
}

// CA returns the server's certificate authority.
func (s *Server) CA() *ca.CA { return s.ca }

// Trust returns the trust-state manager.
func (s *Server) Trust() *truststate.Manager { return s.trust }

// Issuer returns the store-backed SVID issuer.
func (s *Server) Issuer() *ca.Issuer { return s.issuer }

// AdminDir is where the admin credential lives: admin.pem, admin_key.pem, bundle.pem and
// server_url (written by Serve).
func (s *Server) AdminDir() string { return filepath.Join(s.cfg.DataDir, "admin") }

// URL returns the base URL once Serve is listening.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// TLSConfig returns the server side TLS configuration: TLS 1.3 only, the server's current
// SVID, and client certificates optional at the handshake but, when presented, verified
// as X509-SVIDs of this trust domain (go-spiffe x509svid.Verify). A certificate that does
// not verify fails the handshake and is an access event (untrusted_certificate) with the
// remote address, the certificate's SHA-256 and the identity it claimed.
func (s *Server) TLSConfig() *tls.Config {
	base := &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.tlsCert.Load(), nil
		},
		ClientAuth: tls.RequestClientCert,
	}
	verify := func(remote string) func([][]byte, [][]*x509.Certificate) error {
		return func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil // endpoints that need a client certificate refuse later, with a reason
			}
			_, _, err := x509svid.ParseAndVerify(raw, s.ca.X509Bundle(), x509svid.WithTime(s.now()))
			if err != nil {
				s.handshakeRefused(remote, raw[0], err)
			}
			return err
		}
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			c := base.Clone()
			c.VerifyPeerCertificate = verify(hi.Conn.RemoteAddr().String())
			return c, nil
		},
	}
}

// handshakeRefused records a client certificate refused at the handshake as an access
// event (same rate limit as the other access events).
func (s *Server) handshakeRefused(remote string, leaf []byte, err error) {
	ok, dropped := s.accessLimit.Take(time.Now())
	if !ok {
		return
	}
	sum := sha256.Sum256(leaf)
	subject := "unauthenticated"
	detail := map[string]string{"remote": remote, "certificate_sha256": hex.EncodeToString(sum[:]), "error": err.Error()}
	if cert, perr := x509.ParseCertificate(leaf); perr == nil {
		if id, ierr := x509svid.IDFromCert(cert); ierr == nil {
			detail["claimed_id"] = id.String() // claimed, not proven: not the subject
		}
	}
	if dropped > 0 {
		detail["not_recorded_before"] = strconv.Itoa(dropped)
	}
	s.log.Warn("tls handshake refused", "remote", remote, "reason", "untrusted_certificate", "claimed_id", detail["claimed_id"])
	s.emit(context.Background(), audit.Event{Kind: audit.KindAccess, Subject: subject, Outcome: "refused", Reason: "untrusted_certificate", Detail: detail})
}

// Serve serves the API on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// server_url is written before URL answers, so whoever waits for URL (tests, the
	// demo) and then runs a command that reads DATA_DIR/admin/server_url finds it.
	url := "https://" + ln.Addr().String()
	if err := ca.WriteFileAtomic(filepath.Join(s.AdminDir(), "server_url"), []byte(url+"\n"), 0o600); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.mu.Lock()
	s.url = url
	s.mu.Unlock()
	hs := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second, // the watch stream lifts it for itself
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(6)
	go func() { defer wg.Done(); s.trust.Run(bg) }()
	go func() { defer wg.Done(); s.maintain(bg) }()
	go func() { defer wg.Done(); s.retryOutbox(bg) }()
	go func() { defer wg.Done(); s.expireKillSwitches(bg) }()
	go func() { defer wg.Done(); s.rotateJWTKeys(bg) }()
	go func() { defer wg.Done(); s.refreshFederation(bg) }()
	if s.cfg.Catalog != "" && s.att != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.watchCatalog(bg, 2*time.Second) }()
	}
	if m := s.cfg.Metrics; m != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ts := range s.trust.Watch(bg) {
				m.TrustState(ts.Version, ts.CreatedAt)
			}
		}()
	}
	if s.att != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.enforceChallenges(bg) }()
	}
	if s.approvals != nil && s.cfg.ApprovalRetention >= 0 {
		wg.Add(1)
		go func() { defer wg.Done(); s.purgeApprovals(bg) }()
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	s.log.Info("warden server listening", "url", s.URL(), "trust_domain", s.td.Name())
	var err error
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = hs.Shutdown(sctx)
		cancel()
		<-errc
	case err = <-errc:
	}
	stopBG()
	wg.Wait()
	// Handlers are done: what a failed append left in the outbox goes to the log now,
	// not at the next start.
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if derr := s.drainOutbox(dctx); derr != nil {
		s.log.Error("outbox: staged audit events not appended at shutdown; the next start appends them", "err", derr)
	}
	cancel()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// maintain renews the server's own SVID and the admin credential at half-life.
// approvalPurgeEvery is how often expired approval requests past their retention go.
const approvalPurgeEvery = time.Hour

// purgeApprovals deletes, at start and then hourly, the approval requests that expired
// more than ApprovalRetention ago (with several replicas each does it; the deletes do not
// conflict).
func (s *Server) purgeApprovals(ctx context.Context) {
	keep := s.cfg.ApprovalRetention
	if keep == 0 {
		keep = 30 * 24 * time.Hour
	}
	for {
		n, err := s.approvals.Store().PurgeExpired(ctx, s.now().Add(-keep))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("approval purge failed", "err", err)
		case n > 0:
			s.log.Info("approval requests purged", "count", n, "expired_before", s.now().Add(-keep).Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(approvalPurgeEvery):
		}
	}
}

func (s *Server) maintain(ctx context.Context) {
	for {
		leaf := s.svid.Load().Certificates[0]
		wait := time.Until(leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2))
		if wait < time.Second {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		s.rotateIntermediateIfDue(ctx)
		if err := s.rotateServerSVID(ctx); err != nil {
			s.log.Error("server svid rotation failed", "err", err)
		}
		if err := s.refreshAdmin(ctx, false); err != nil {
			s.log.Error("admin credential refresh failed", "err", err)
		}
	}
}

// rotateIntermediateIfDue replaces the intermediate CA when it has less than a third of
// its year left (checked at start and at every server-SVID rotation). SVIDs signed by the
// old one stay valid: the trust bundle is the root alone. A failure is logged and tried
// again next time; the old intermediate keeps signing meanwhile.
func (s *Server) rotateIntermediateIfDue(ctx context.Context) {
	if !s.ca.IntermediateDue(s.now()) {
		return
	}
	if _, _, err := s.rotateIntermediate(ctx, byServer, "intermediate_due", ""); err != nil {
		s.log.Error("intermediate CA rotation failed", "err", err)
	}
}

// rotateIntermediate replaces the intermediate CA now and records it (actor, reason code,
// free text) in the audit log; it returns the new and the previous certificate. The
// event is appended after the new key is written and before it is installed: without
// the event there is no rotation (finishPendingRotation settles a crash in between).
func (s *Server) rotateIntermediate(ctx context.Context, actor func(audit.Event) audit.Event, reason, text string) (cert, prev *x509.Certificate, err error) {
	prev = s.ca.Intermediates()[0]
	cert, err = s.ca.RotateIntermediateWith(func(next *x509.Certificate) error {
		detail := map[string]string{"previous_serial": ca.SerialHex(prev),
			"previous_not_after": prev.NotAfter.UTC().Format(time.RFC3339), "not_after": next.NotAfter.UTC().Format(time.RFC3339)}
		if text != "" {
			detail["text"] = text
		}
		ev := actor(audit.Event{Kind: audit.KindCARotation, ID: caRotationID(next), Subject: "intermediate", Serial: ca.SerialHex(next),
			Outcome: "rotated", Reason: reason, Detail: detail})
		st, err := s.staged(ev)
		if err == nil {
			err = s.appendStaged(ctx, st)
		}
		if err != nil {
			return fmt.Errorf("server: intermediate CA not rotated: its audit event could not be appended: %v", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	s.log.Info("intermediate CA rotated", "serial", ca.SerialHex(cert), "not_after", cert.NotAfter, "previous_serial", ca.SerialHex(prev), "reason", reason)
	return cert, prev, nil
}

// caRotationID is the id of the ca_rotation event that installs intermediate next.
func caRotationID(next *x509.Certificate) string { return "ca_rotation-" + ca.SerialHex(next) }

// byServer marks an event as the server's own doing.
func byServer(ev audit.Event) audit.Event { ev.Actor = "server"; return ev }

// finishPendingRotation settles an intermediate rotation a crash interrupted between its
// audit event and its install: installed when the audit log holds the event, discarded
// otherwise (then it never happened).
func (s *Server) finishPendingRotation(ctx context.Context) error {
	next := s.ca.PendingIntermediate()
	if next == nil {
		return nil
	}
	install := false
	if s.cfg.Audit != nil {
		_, err := s.cfg.Audit.Lookup(ctx, caRotationID(next))
		switch {
		case err == nil:
			install = true
		case !errors.Is(err, audit.ErrNotFound):
			return err
		}
	}
	s.log.Info("interrupted intermediate CA rotation settled", "serial", ca.SerialHex(next), "installed", install)
	return s.ca.FinishPendingIntermediate(ca.SerialHex(next), install)
}

func (s *Server) rotateServerSVID(ctx context.Context) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	cert, err := s.issuer.IssueWith(ctx, ca.X509Request{
		PublicKey: key.Public(), ID: s.serverID, TTL: serverSVIDTTL, DNSNames: s.cfg.DNSNames, IPs: s.cfg.IPs,
	}, "", "server")
	if err != nil {
		return fmt.Errorf("server: own svid: %w", err)
	}
	chain := append([]*x509.Certificate{cert}, s.ca.ChainFor(cert)...)
	sv := &x509svid.SVID{ID: s.serverID, Certificates: chain, PrivateKey: key}
	tc := &tls.Certificate{PrivateKey: key, Leaf: cert}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	s.svid.Store(sv)
	s.tlsCert.Store(tc)
	return nil
}

// refreshAdmin writes the admin credential (an X509-SVID for spiffe://TD/warden/admin)
// into AdminDir when it is missing or past half its life, or always when force is set.
func (s *Server) refreshAdmin(ctx context.Context, force bool) error {
	dir := s.AdminDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if !force {
		if sv, err := x509svid.Load(filepath.Join(dir, "admin.pem"), filepath.Join(dir, "admin_key.pem")); err == nil {
			leaf := sv.Certificates[0]
			half := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
			if _, _, verr := x509svid.Verify(sv.Certificates, s.ca.X509Bundle()); verr == nil && s.now().Before(half) {
				return nil
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	cert, err := s.issuer.IssueWith(ctx, ca.X509Request{PublicKey: key.Public(), ID: s.adminID, TTL: adminTTL}, "", "admin")
	if err != nil {
		return fmt.Errorf("server: admin credential: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{
		{"bundle.pem", ca.CertsPEM(s.ca.Root())},
		{"admin_key.pem", ca.KeyPEM(key)},
		{"admin.pem", ca.CertsPEM(append([]*x509.Certificate{cert}, s.ca.ChainFor(cert)...)...)},
	}
	for _, f := range files {
		if err := ca.WriteFileAtomic(filepath.Join(dir, f.name), f.data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
