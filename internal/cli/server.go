package cli

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/store/storeopen"
	"github.com/warden-a2a/warden/internal/telemetry"
	"github.com/warden-a2a/warden/internal/witness"
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func defaultDataDir() string { return envOr("WARDEN_DATA_DIR", "warden-data") }

// storeSpec is the store to open: --store, or the embedded SQLite file in the data dir.
func storeSpec(spec, dataDir string) string {
	if spec != "" {
		return spec
	}
	return filepath.Join(dataDir, "warden.db")
}

func newServerCmd() *cobra.Command {
	var (
		dataDir, listen, td, storeFlag string
		ttl                            time.Duration
		approvalRetention              time.Duration
		recoverWindow                  time.Duration
		dnsNames                       []string
		lf                             logFlags
		af                             serverAttestFlags
		metricsListen                  string
		web                            serverWebFlags
		witnesses                      []string
		checkpointInterval             time.Duration
		policyKeys                     []string
		catalog                        string
		anomalyQuarantine              int
		anomalyWindow                  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: CA, enrollment, renewal, bundle and trust state",
		Long: `Run the Warden control plane.

On first start it creates the trust domain's root and intermediate CA (ECDSA P-256) in
DATA_DIR/ca and an admin credential in DATA_DIR/admin, which the entry, token, revoke,
quarantine, suspend and restore commands use. The embedded store is DATA_DIR/warden.db
(SQLite); --store postgres://... shares one PostgreSQL between several replicas (they must
also share DATA_DIR/ca and DATA_DIR/audit).

The audit log's checkpoints are signed at start, every --checkpoint-interval and at stop;
each --witness URL=KEYFILE (a 'warden witness') cosigns them (docs/audit-events.md).

Runtime attestation is on by default (docs/attestation.md): transactional and regulated
agents enrol only with affirming TPM evidence against their entry's reference values, every
renewal of an attested agent carries fresh evidence, and a failed attestation applies the
class's fail-closed action in the trust state. Attestation nonces and pending credential
challenges are kept in the store's database, so any replica answers a challenge another
issued. --tpm-ek-roots makes EK certificates in evidence count only when they chain to
the given TPM manufacturers' roots (hardware claim genuine_hw).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log, err := lf.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return err
			}
			st, err := storeopen.Open(ctx, storeSpec(storeFlag, dataDir))
			if err != nil {
				return err
			}
			defer st.Close()
			attCfg, err := af.config()
			if err != nil {
				return exitCode(2, err)
			}
			cosigners, err := witnessClients(witnesses)
			if err != nil {
				return exitCode(2, err)
			}
			if checkpointInterval <= 0 {
				return exitCode(2, fmt.Errorf("--checkpoint-interval must be positive"))
			}
			auditLog, err := server.OpenAuditWith(ctx, st, dataDir, td, server.AuditOptions{
				CheckpointInterval: checkpointInterval, Witnesses: cosigners, Logger: log})
			if err != nil {
				return err
			}
			defer auditLog.Close()
			if err := web.check(); err != nil {
				return exitCode(2, err)
			}
			cfg := server.Config{TrustDomain: td, DataDir: dataDir, Store: st, SVIDTTL: ttl, Logger: log, Attestation: attCfg, Audit: auditLog, ApprovalRetention: approvalRetention, RecoverWindow: recoverWindow}
			if err := web.apply(&cfg); err != nil {
				return exitCode(2, err)
			}
			cfg.Catalog, cfg.AnomalyQuarantine, cfg.AnomalyWindow = catalog, anomalyQuarantine, anomalyWindow
			for _, p := range policyKeys {
				b, err := os.ReadFile(p)
				if err != nil {
					return exitCode(2, fmt.Errorf("--policy-public-key: %w", err))
				}
				k, err := policy.ParsePublicKey(b)
				if err != nil {
					return exitCode(2, fmt.Errorf("--policy-public-key %s: %w", p, err))
				}
				cfg.PolicyKeys = append(cfg.PolicyKeys, k)
			}
			var reg *prometheus.Registry
			if metricsListen != "" {
				reg = prometheus.NewRegistry()
				cfg.Metrics = telemetry.NewMetrics(reg)
			}
			for _, n := range dnsNames {
				if ip := net.ParseIP(n); ip != nil {
					cfg.IPs = append(cfg.IPs, ip)
				} else {
					cfg.DNSNames = append(cfg.DNSNames, n)
				}
			}
			srv, err := server.New(ctx, cfg)
			if err != nil {
				return err
			}
			if reg != nil {
				stop, err := serveObservability(ctx, metricsListen, reg, func() error { return srv.Ready(ctx) }, log)
				if err != nil {
					return err
				}
				defer stop()
			}
			onSIGHUP(ctx, func() {
				log.Info("SIGHUP: the server has no configuration file to reload; flags take effect at restart")
			})
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "warden server: %s, trust domain %s, admin credential in %s\n", "https://"+ln.Addr().String(), td, srv.AdminDir())
			return web.serve(ctx, srv, ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", defaultDataDir(), "data directory (CA keys, admin credential, embedded store)")
	f.StringVar(&listen, "listen", envOr("WARDEN_LISTEN", "127.0.0.1:8443"), "address to listen on")
	f.StringVar(&td, "trust-domain", envOr("WARDEN_TRUST_DOMAIN", "supplychain.example"), "SPIFFE trust domain")
	f.StringVar(&storeFlag, "store", os.Getenv("WARDEN_STORE"), "store: a SQLite path or postgres://... (default DATA_DIR/warden.db)")
	f.DurationVar(&ttl, "svid-ttl", 15*time.Minute, "lifetime of agent X509-SVIDs (at most 24h)")
	f.DurationVar(&approvalRetention, "approval-retention", 30*24*time.Hour, "delete approval requests this long after they expired (negative: keep them)")
	f.DurationVar(&recoverWindow, "recover-window", server.DefaultRecoverWindow, "how long after expiry a TPM-attested agent may recover its SVID with fresh evidence (negative: off)")
	f.StringSliceVar(&dnsNames, "san", nil, "extra DNS name or IP for the server certificate (default localhost, 127.0.0.1, ::1)")
	lf.register(cmd)
	f.StringVar(&metricsListen, "metrics-listen", os.Getenv("WARDEN_METRICS_LISTEN"), "serve Prometheus /metrics on this address (plain HTTP; keep it on a private interface)")
	f.StringArrayVar(&witnesses, "witness", nil, "witness that cosigns every audit checkpoint, as URL=VERIFIER_KEY_FILE (repeatable; see warden witness)")
	f.DurationVar(&checkpointInterval, "checkpoint-interval", 10*time.Second, "sign an audit checkpoint (and have the witnesses cosign it) this often")
	f.StringVar(&catalog, "catalog", "", "workflow catalog (docs/catalog.md): a change of an agent's declared dependencies pushes it a re-attestation challenge")
	f.IntVar(&anomalyQuarantine, "anomaly-quarantine", 0, "quarantine an agent after this many anomalies within --anomaly-window (0: anomalies only challenge)")
	f.DurationVar(&anomalyWindow, "anomaly-window", 10*time.Minute, "window of --anomaly-quarantine")
	f.StringSliceVar(&policyKeys, "policy-public-key", nil, "Ed25519 public key (PEM) that verifies pushed policy bundles; repeat during a key rotation")
	af.register(cmd)
	web.register(cmd)
	return cmd
}

// serverWebFlags: the Web PKI listener (https_web bundle endpoint, OIDC discovery, JWKS)
// and the key schedule of JWT-SVIDs.
type serverWebFlags struct {
	listen, cert, key, issuer string
	jwtRotation, refreshHint  time.Duration
	fedRoots                  string        // PEM roots of https_web bundle endpoints (default: system)
	fedMinRefresh             time.Duration // floor of foreign bundle refreshes
}

func (w *serverWebFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&w.listen, "web-listen", os.Getenv("WARDEN_WEB_LISTEN"), "serve the https_web bundle endpoint, OIDC discovery and JWKS on this address (needs --web-cert, --web-key)")
	f.StringVar(&w.cert, "web-cert", "", "Web PKI certificate chain (PEM) of the web listener; re-read when it changes")
	f.StringVar(&w.key, "web-key", "", "private key (PEM) of --web-cert")
	f.StringVar(&w.issuer, "jwt-issuer", os.Getenv("WARDEN_JWT_ISSUER"), "iss of JWT-SVIDs and issuer of the OIDC discovery document, an https URL (default: the API URL)")
	f.DurationVar(&w.jwtRotation, "jwt-key-rotation", 24*time.Hour, "how long a JWT-SVID key signs before its successor takes over")
	f.DurationVar(&w.refreshHint, "bundle-refresh-hint", 5*time.Minute, "refresh_hint of the served SPIFFE bundle")
	f.StringVar(&w.fedRoots, "federation-web-roots", "", "PEM file of the roots that authenticate https_web bundle endpoints of federated trust domains (default: the system's)")
	f.DurationVar(&w.fedMinRefresh, "federation-min-refresh", 30*time.Second, "fetch a federated bundle at most this often, whatever its refresh hint")
}

// apply puts the web, JWT and federation settings into cfg.
func (w *serverWebFlags) apply(cfg *server.Config) error {
	cfg.JWTIssuer, cfg.JWTKeyRotation, cfg.BundleRefreshHint = w.issuer, w.jwtRotation, w.refreshHint
	cfg.FederationMinRefresh = w.fedMinRefresh
	if w.fedRoots != "" {
		b, err := os.ReadFile(w.fedRoots)
		if err != nil {
			return fmt.Errorf("--federation-web-roots: %w", err)
		}
		cfg.FederationWebRoots = x509.NewCertPool()
		if !cfg.FederationWebRoots.AppendCertsFromPEM(b) {
			return fmt.Errorf("--federation-web-roots: no certificate in %s", w.fedRoots)
		}
	}
	return nil
}

func (w *serverWebFlags) check() error {
	if (w.listen == "") != (w.cert == "" && w.key == "") || (w.listen != "" && (w.cert == "" || w.key == "")) {
		return fmt.Errorf("--web-listen, --web-cert and --web-key go together")
	}
	return nil
}

// serve runs the API on ln and, when configured, the web listener, until ctx ends or
// either fails.
func (w *serverWebFlags) serve(ctx context.Context, srv *server.Server, ln net.Listener) error {
	if w.listen == "" {
		return srv.Serve(ctx, ln)
	}
	wln, err := net.Listen("tcp", w.listen)
	if err != nil {
		return fmt.Errorf("--web-listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	webErr := make(chan error, 1)
	go func() { webErr <- srv.ServeWeb(ctx, wln, w.cert, w.key); cancel() }()
	err = srv.Serve(ctx, ln)
	cancel()
	if werr := <-webErr; err == nil {
		err = werr
	}
	return err
}

// witnessClients parses --witness URL=KEYFILE flags.
func witnessClients(specs []string) ([]audit.Cosigner, error) {
	var out []audit.Cosigner
	for _, spec := range specs {
		i := strings.LastIndex(spec, "=")
		if i < 0 {
			return nil, fmt.Errorf("--witness %q: want URL=VERIFIER_KEY_FILE", spec)
		}
		b, err := os.ReadFile(spec[i+1:])
		if err != nil {
			return nil, fmt.Errorf("--witness %q: %w", spec, err)
		}
		key, err := audit.NewCosignatureVerifier(string(b))
		if err != nil {
			return nil, fmt.Errorf("--witness %q: %w", spec, err)
		}
		c, err := witness.NewClient(spec[:i], key, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
