package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// TrustDomain of the demo's supply chain.
const TrustDomain = "supplychain.example"

// Agent is one supply-chain agent of the demo.
type Agent struct {
	Name, Role, Class, Zone string
}

// Agents are the supply-chain agents the demo enrols.
var Agents = []Agent{
	{"demand-planner", "forecasting", "advisory", "cloud"},
	{"procurement", "procurement", "transactional", "cloud"},
	{"vendor-portal", "vendor-portal", "transactional", "partner-edge"},
	{"logistics", "shipping", "transactional", "cloud"},
	{"compliance", "compliance", "regulated", "cloud"},
	{"payment-release", "payments", "regulated", "finance"},
}

// Config configures Run.
type Config struct {
	DataDir string    // where the server's data, agents' credentials and report.json go
	Out     io.Writer // the readable table
	Logger  *slog.Logger
}

// env is what the steps share.
type env struct {
	cfg    Config
	srv    *server.Server
	admin  *adminclient.Client
	td     spiffeid.TrustDomain
	agents map[string]*sdk.Source
	tpms   map[string]*attest.Attester // each agent's simulated TPM (attest.go)
	bins   map[string]string           // each agent's measured binary
	seeds  map[string]int64            // each agent's simulated TPM seed
	vendor *tpmVendor                  // the TPM vendor whose EK roots the control plane trusts
	audit  *audit.Log                  // the control plane's audit log
	store  *sqlite.Store
	report Report
}

// Run plays the story and writes DataDir/report.json. The returned report's OK says
// whether every step's observed outcome matched its expectation; err is for failures of
// the demo itself (it could not start).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	st, err := sqlite.Open(filepath.Join(cfg.DataDir, "warden.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	auditLog, err := server.OpenAudit(ctx, st, cfg.DataDir, TrustDomain, 0, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer auditLog.Close()
	// A stand-in TPM vendor PKI: the control plane trusts its EK certificates.
	vendor, err := newTPMVendor("Demo TPM Vendor")
	if err != nil {
		return nil, err
	}
	roots, inters := vendor.pools()
	srv, err := server.New(ctx, server.Config{TrustDomain: TrustDomain, DataDir: cfg.DataDir, Store: st, Logger: cfg.Logger,
		Attestation: &server.AttestConfig{ChallengeTimeout: challengeTimeout,
			Verifier: attest.NewVerifier(attest.Config{EKRoots: roots, EKIntermediates: inters})}, Audit: auditLog})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	defer func() { stop(); <-done }()
	for srv.URL() == "" {
		time.Sleep(5 * time.Millisecond)
	}
	admin, err := adminclient.Load(srv.AdminDir(), srv.URL())
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, srv: srv, admin: admin, td: spiffeid.RequireTrustDomainFromString(TrustDomain), agents: map[string]*sdk.Source{},
		tpms: map[string]*attest.Attester{}, bins: map[string]string{}, seeds: map[string]int64{}, vendor: vendor}
	defer e.closeTPMs()
	fmt.Fprintf(cfg.Out, "Warden demo: control plane %s, trust domain %s, data in %s\n\n", srv.URL(), TrustDomain, cfg.DataDir)

	e.audit, e.store = auditLog, st
	e.printInventory()
	// The story in order: identities, the purchase-order workflow through the gates, then
	// the runtime-drift attacks (they leave agents quarantined or suspended), and the
	// audit steps close it, verifying what the others recorded.
	for _, group := range [][]func(context.Context, *env){identitySteps, {gateStory}, attestSteps, auditSteps} {
		for _, step := range group {
			step(ctx, e)
		}
	}

	e.report.OK = len(e.report.Steps) > 0
	for _, s := range e.report.Steps {
		e.report.OK = e.report.OK && s.Observed == s.Expected
	}
	b, _ := json.MarshalIndent(&e.report, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	printTable(cfg.Out, &e.report)
	return &e.report, nil
}

func (e *env) record(s Step) {
	e.report.Steps = append(e.report.Steps, s)
}

// outcome turns an error into a step's observed outcome and reason.
func outcome(err error) (observed, reason, decisionID string) {
	if err == nil {
		return "allow", "", ""
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return "deny", ae.Code + ": " + ae.Message, ae.RequestID
	}
	return "deny", err.Error(), ""
}

func printTable(w io.Writer, r *Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tKIND\tSTEP\tEXPECTED\tOBSERVED\tREASON")
	for _, s := range r.Steps {
		mark := "ok"
		if s.Observed != s.Expected {
			mark = "FAIL"
		}
		reason := s.Reason
		if len(reason) > 90 {
			reason = reason[:87] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", mark, s.Kind, s.Name, s.Expected, s.Observed, reason)
	}
	_ = tw.Flush()
	verdict := "every step behaved as expected"
	if !r.OK {
		verdict = "SOME STEPS DID NOT BEHAVE AS EXPECTED"
	}
	fmt.Fprintf(w, "\n%d steps: %s\n", len(r.Steps), verdict)
}

// identitySteps are the rows of the identity layer (issue 2).
var identitySteps = []func(context.Context, *env){
	enrolAll,
	mtlsCall,
	selfSignedImpersonation,
	reusedJoinToken,
	csrForAnotherIdentity,
	rotation,
	caRotation,
	revocation,
	suspension,
}

// enrolAll enrols every agent with TPM evidence: each has its own simulated TPM and
// measured binary, and its entry approves exactly that binary.
func enrolAll(ctx context.Context, e *env) {
	for i, a := range Agents {
		s := Step{Name: "enrol " + a.Name + " with TPM evidence", Kind: "workflow", Expected: "allow"}
		err := func() error {
			dir := filepath.Join(e.cfg.DataDir, "agents", a.Name)
			tpm, attrs, err := e.agentTPM(a.Name, int64(1000+i))
			if err != nil {
				return err
			}
			if _, err := e.admin.CreateEntry(ctx, api.Entry{Name: a.Name, Role: a.Role, Class: a.Class, Zone: a.Zone, Attrs: attrs}); err != nil {
				return err
			}
			tok, err := e.admin.CreateToken(ctx, a.Name, 10*time.Minute)
			if err != nil {
				return err
			}
			svid, bundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: e.srv.URL(), Token: tok.Token, Attester: tpm})
			if err != nil {
				return err
			}
			if err := sdk.WriteFiles(dir, svid, bundle); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, "join_token_used"), []byte(tok.Token), 0o600); err != nil {
				return err
			}
			src, err := sdk.NewSource(sdk.SourceConfig{ServerURL: e.srv.URL(), SVID: svid, Bundle: bundle, Dir: dir, Attester: tpm})
			if err != nil {
				return err
			}
			e.agents[a.Name] = src
			s.Reason = fmt.Sprintf("%s attested (affirming, AK in the EK's TPM), SVID serial %x until %s", svid.ID, svid.Certificates[0].SerialNumber, svid.Certificates[0].NotAfter.Format(time.TimeOnly))
			return nil
		}()
		if err != nil {
			s.Observed, s.Reason, s.DecisionID = outcome(err)
		} else {
			s.Observed = "allow"
		}
		e.record(s)
	}
}

// serveAgent runs an mTLS HTTPS endpoint for an agent that accepts any SVID of the trust
// domain and answers with the caller's SPIFFE ID.
func serveAgent(e *env, name string) (url string, stop func(), err error) {
	src := e.agents[name]
	if src == nil {
		return "", nil, fmt.Errorf("%s is not enrolled", name)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsconfig.MTLSServerConfig(src, src, tlsconfig.AuthorizeMemberOf(e.td)))
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
		fmt.Fprintf(w, "hello %s, this is %s", id, name)
	})}
	go func() { _ = hs.Serve(ln) }()
	return "https://" + ln.Addr().String(), func() { _ = hs.Close() }, nil
}

func callAgent(ctx context.Context, tlsConf *tls.Config, url string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

func mtlsCall(ctx context.Context, e *env) {
	s := Step{Name: "procurement -> vendor-portal over mTLS", Kind: "workflow", Expected: "allow"}
	target, stop, err := serveAgent(e, "vendor-portal")
	if err == nil {
		defer stop()
		src := e.agents["procurement"]
		var body string
		body, err = callAgent(ctx, tlsconfig.MTLSClientConfig(src, src, tlsconfig.AuthorizeID(spiffeid.RequireFromPath(e.td, "/agent/vendor-portal"))), target)
		s.Reason = body
	}
	if err != nil {
		s.Observed, s.Reason, s.DecisionID = outcome(err)
	} else {
		s.Observed = "allow"
	}
	e.record(s)
}

// selfSignedImpersonation: an attacker mints a self-signed certificate claiming
// procurement's SPIFFE ID and calls vendor-portal.
func selfSignedImpersonation(ctx context.Context, e *env) {
	s := Step{Name: "impersonate procurement with a self-signed certificate", Kind: "attack", Expected: "deny"}
	target, stop, err := serveAgent(e, "vendor-portal")
	if err != nil {
		s.Observed, s.Reason, _ = outcome(err)
		e.record(s)
		return
	}
	defer stop()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id := spiffeid.RequireFromPath(e.td, "/agent/procurement")
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "procurement"}, URIs: []*url.URL{id.URL()},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, _ := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	conf := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	_, err = callAgent(ctx, conf, target)
	if err == nil {
		s.Observed, s.Reason = "allow", "vendor-portal accepted a self-signed certificate"
	} else {
		s.Observed, s.Reason = "deny", "untrusted_certificate: TLS handshake refused ("+lastLine(err)+")"
	}
	e.record(s)
}

func lastLine(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

func reusedJoinToken(ctx context.Context, e *env) {
	s := Step{Name: "reuse procurement's join token", Kind: "attack", Expected: "deny"}
	tok, err := os.ReadFile(filepath.Join(e.cfg.DataDir, "agents", "procurement", "join_token_used"))
	if err == nil {
		_, _, err = sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: e.srv.URL(), Token: string(tok)})
	}
	s.Observed, s.Reason, s.DecisionID = outcome(err)
	e.record(s)
}

// csrForAnotherIdentity: a token for logistics, used with a CSR that asks for
// payment-release's SPIFFE ID.
func csrForAnotherIdentity(ctx context.Context, e *env) {
	s := Step{Name: "enrol with a CSR asking for payment-release's identity", Kind: "attack", Expected: "deny"}
	err := func() error {
		if _, err := e.admin.CreateEntry(ctx, api.Entry{Name: "logistics-edge", Role: "shipping", Class: "transactional", Zone: "edge"}); err != nil {
			return err
		}
		tok, err := e.admin.CreateToken(ctx, "logistics-edge", time.Minute)
		if err != nil {
			return err
		}
		return enrollWithCSRFor(ctx, e.srv.URL(), tok.Token, spiffeid.RequireFromPath(e.td, "/agent/payment-release"))
	}()
	s.Observed, s.Reason, s.DecisionID = outcome(err)
	e.record(s)
}

func rotation(ctx context.Context, e *env) {
	s := Step{Name: "logistics renews its SVID over mTLS (rotation)", Kind: "workflow", Expected: "allow"}
	src := e.agents["logistics"]
	before, _ := src.GetX509SVID()
	err := src.Renew(ctx)
	if err == nil {
		after, _ := src.GetX509SVID()
		s.Reason = fmt.Sprintf("serial %x -> %x", before.Certificates[0].SerialNumber, after.Certificates[0].SerialNumber)
	}
	obs, reason, id := outcome(err)
	s.Observed, s.DecisionID = obs, id
	if err != nil {
		s.Reason = reason
	}
	e.record(s)
}

// caRotation: the operator replaces the intermediate CA (as after a suspected key leak);
// logistics' next SVID chains through the new intermediate to the unchanged root, and
// every agent still holding an SVID from the old one goes on working through the gates.
func caRotation(ctx context.Context, e *env) {
	s := Step{Name: "operator rotates the intermediate CA; logistics renews through the new one", Kind: "workflow", Expected: "allow"}
	res, err := e.admin.RotateCA(ctx, "demo: intermediate key rotation drill")
	var sv *x509svid.SVID
	if err == nil {
		err = e.agents["logistics"].Renew(ctx)
	}
	if err == nil {
		sv, err = e.agents["logistics"].GetX509SVID()
	}
	if err == nil {
		if got := hex.EncodeToString(sv.Certificates[len(sv.Certificates)-1].SerialNumber.Bytes()); got != res.Serial {
			err = fmt.Errorf("renewed SVID chains through intermediate %s, not the new %s", got, res.Serial)
		} else if _, _, verr := x509svid.Verify(sv.Certificates, e.agents["logistics"]); verr != nil {
			err = fmt.Errorf("renewed SVID does not verify against the unchanged bundle: %w", verr)
		}
	}
	s.Observed, s.Reason, s.DecisionID = outcome(err)
	if err == nil {
		s.Reason = fmt.Sprintf("intermediate %s -> %s; SVIDs of the old one stay valid until they expire", res.PreviousSerial[:12], res.Serial[:12])
	}
	e.record(s)
}

// revocation: the operator revokes demand-planner; a watcher on the trust-state stream
// must see it within a second, and demand-planner's renewal is refused.
func revocation(ctx context.Context, e *env) {
	id := spiffeid.RequireFromPath(e.td, "/agent/demand-planner")
	watch := Step{Name: "revocation of demand-planner reaches the trust-state stream within 1s", Kind: "workflow", Expected: "allow"}
	seen, version, err := revokeAndWatch(ctx, e, id)
	switch {
	case err != nil:
		watch.Observed, watch.Reason, watch.DecisionID = outcome(err)
	case seen > time.Second:
		watch.Observed, watch.Reason = "deny", fmt.Sprintf("seen after %s", seen)
	default:
		watch.Observed, watch.Reason = "allow", fmt.Sprintf("trust state version %d verified by a watcher %s after the revoke call", version, seen.Round(time.Millisecond))
	}
	e.record(watch)

	s := Step{Name: "revoked demand-planner tries to renew", Kind: "attack", Expected: "deny"}
	s.Observed, s.Reason, s.DecisionID = outcome(e.agents["demand-planner"].Renew(ctx))
	e.record(s)

	// Its SVID is still valid for a few minutes; the control plane refuses it anyway, and
	// the refusal is an access event in the audit log under the request id.
	js := Step{Name: "revoked demand-planner asks for a JWT-SVID for the ERP", Kind: "attack", Expected: "deny"}
	var jwt api.JWTSVIDResponse
	js.Observed, js.Reason, js.DecisionID = outcome(api.Do(ctx, e.agents["demand-planner"].HTTPClient(), http.MethodPost,
		e.srv.URL()+api.PathJWTSVID, api.JWTSVIDRequest{Audience: []string{"erp"}}, &jwt))
	e.record(js)
}

func suspension(ctx context.Context, e *env) {
	s := Step{Name: "suspended payment-release tries to renew", Kind: "attack", Expected: "deny"}
	id := spiffeid.RequireFromPath(e.td, "/agent/payment-release")
	_, err := e.admin.ChangeTrust(ctx, "suspend", api.TrustChange{ID: id.String(), Reason: "demo: runtime drift suspected"})
	if err == nil {
		err = e.agents["payment-release"].Renew(ctx)
	}
	s.Observed, s.Reason, s.DecisionID = outcome(err)
	e.record(s)
	// Lift it again so later steps start from a healthy payment agent.
	_, _ = e.admin.ChangeTrust(ctx, "restore", api.TrustChange{ID: id.String(), Reason: "demo: cleared"})
}

// revokeAndWatch opens the trust-state stream as compliance, revokes id, and returns how
// long until a verified document listing the revocation arrived.
func revokeAndWatch(ctx context.Context, e *env, id spiffeid.ID) (time.Duration, int64, error) {
	watcher := e.agents["compliance"]
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	f := truststate.NewFollower(truststate.FollowerConfig{
		URL: e.srv.URL(), Client: watcher.HTTPClient(), Bundle: watcher, TrustDomain: e.td,
	})
	updates := make(chan *truststate.Document, 16)
	go func() { _ = f.Run(ctx, func(d *truststate.Document) { updates <- d }) }()
	// Wait for the current version first, so the timing covers only the push.
	select {
	case <-updates:
	case <-ctx.Done():
		return 0, 0, errors.New("no trust state from the stream")
	}
	start := time.Now()
	if _, err := e.admin.ChangeTrust(ctx, "revoke", api.TrustChange{ID: id.String(), Reason: "demo: key exposed in a log"}); err != nil {
		return 0, 0, err
	}
	for {
		select {
		case d := <-updates:
			if _, ok := d.IsRevoked(id.String(), ""); ok {
				return time.Since(start), d.Version, nil
			}
		case <-ctx.Done():
			return 0, 0, errors.New("revocation not seen on the stream within 5s")
		}
	}
}
