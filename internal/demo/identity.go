package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/proc"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// identitySteps are the rows of the identity layer.
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

// enrolAll enrols every agent with TPM evidence through the CLI: each has its own
// simulated TPM and measured binary, its entry approves exactly that binary, and its
// `warden enroll --watch` keeps running as a child.
func enrolAll(ctx context.Context, e *env) {
	for _, spec := range Agents {
		s := Step{Name: "enrol " + spec.Name + " with TPM evidence", Kind: "workflow", Expected: "allow"}
		a, err := e.Enrol(ctx, spec)
		if a != nil {
			s.Command = commands(a.Commands...)
		}
		if err == nil {
			e.agents[spec.Name] = a
			sv, _, ferr := a.Files()
			if err = ferr; err == nil {
				s.Reason = fmt.Sprintf("%s enrolled with a TPM quote, SVID serial %x until %s in %s; enroll --watch keeps it fresh",
					sv.ID, sv.Certificates[0].SerialNumber, sv.Certificates[0].NotAfter.Format(time.TimeOnly), e.show(a.Dir))
			}
		}
		obs, reason, id := outcome(err)
		s.Observed, s.DecisionID = obs, id
		if err != nil {
			s.Reason = reason
		}
		e.record(s)
	}
}

// agent returns an enrolled agent, or an error naming the one missing.
func (e *env) agent(name string) (*Agent, error) {
	if a := e.agents[name]; a != nil {
		return a, nil
	}
	return nil, fmt.Errorf("%s is not enrolled", name)
}

// serveAgent runs an mTLS HTTPS endpoint with an agent's SVID files that accepts any SVID
// of the trust domain and answers with the caller's SPIFFE ID.
func (e *env) serveAgent(name string) (addr string, stop func(), err error) {
	a, err := e.agent(name)
	if err != nil {
		return "", nil, err
	}
	sv, b, err := a.Files()
	if err != nil {
		return "", nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsconfig.MTLSServerConfig(sv, b, tlsconfig.AuthorizeMemberOf(e.TD)))
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
		fmt.Fprintf(w, "hello %s, this is %s", id, name)
	})}
	go func() { _ = hs.Serve(ln) }()
	return ln.Addr().String(), func() { _ = hs.Close() }, nil
}

func callAgent(ctx context.Context, tlsConf *tls.Config, addr string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr, nil)
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
	addr, stop, err := e.serveAgent("vendor-portal")
	if err == nil {
		defer stop()
		s.Command = commands("# in process: an HTTPS endpoint with vendor-portal's SVID files, accepting any SVID of "+TrustDomain,
			"curl -sk --cert $DIR/agents/procurement/svid.pem --key $DIR/agents/procurement/svid_key.pem https://"+addr+"/")
		var a *Agent
		if a, err = e.agent("procurement"); err == nil {
			sv, bundle, ferr := a.Files()
			if err = ferr; err == nil {
				s.Reason, err = callAgent(ctx, tlsconfig.MTLSClientConfig(sv, bundle, tlsconfig.AuthorizeID(e.ID("vendor-portal"))), addr)
			}
		}
	}
	if err != nil {
		s.Observed, s.Reason, s.DecisionID = outcome(err)
	} else {
		s.Observed = "allow"
	}
	e.record(s)
}

// selfSigned is an attacker's certificate claiming id, signed by its own key.
func selfSigned(id spiffeid.ID) (der []byte, conf *tls.Config) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "procurement"}, URIs: []*url.URL{id.URL()},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, _ = x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	return der, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// selfSignedCommand is the attacker's tool on the command line.
func selfSignedCommand(id spiffeid.ID, addr string) string {
	return commands("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=procurement -addext subjectAltName=URI:"+id.String()+" -keyout fake.key -out fake.pem",
		"curl -sk --cert fake.pem --key fake.key https://"+addr+"/")
}

// selfSignedImpersonation: an attacker mints a self-signed certificate claiming
// procurement's SPIFFE ID and calls vendor-portal.
func selfSignedImpersonation(ctx context.Context, e *env) {
	s := Step{Name: "impersonate procurement with a self-signed certificate", Kind: "attack", Expected: "deny"}
	addr, stop, err := e.serveAgent("vendor-portal")
	if err != nil {
		s.Observed, s.Reason, _ = outcome(err)
		e.record(s)
		return
	}
	defer stop()
	s.Command = selfSignedCommand(e.ID("procurement"), addr)
	_, conf := selfSigned(e.ID("procurement"))
	if _, err = callAgent(ctx, conf, addr); err == nil {
		s.Observed, s.Reason = "allow", "vendor-portal accepted a self-signed certificate"
	} else {
		s.Observed, s.Reason = "deny", "untrusted_certificate: TLS handshake refused ("+lastLine(err)+")"
	}
	e.record(s)
}

// reusedJoinToken: procurement's join token, already spent by its enroll, used again.
func reusedJoinToken(ctx context.Context, e *env) {
	s := Step{Name: "reuse procurement's join token", Kind: "attack", Expected: "deny"}
	a, err := e.agent("procurement")
	if err != nil {
		s.Observed, s.Reason, _ = outcome(err)
		e.record(s)
		return
	}
	r := e.Procs.Run(ctx, []string{"enroll", "--server", e.URL, "--out", filepath.Join(e.Dir, "attacker")}, "WARDEN_JOIN_TOKEN="+a.Token)
	s.Command = "WARDEN_JOIN_TOKEN=$PROCUREMENTS_SPENT_TOKEN " + r.Command
	e.recordCLI(s, r)
}

// recordCLI records a step whose outcome is a CLI command's: deny when it exits
// non-zero, with its error message as the reason.
func (e *env) recordCLI(s Step, r proc.Result) {
	if r.Code == 0 {
		s.Observed, s.Reason = "allow", strings.TrimSpace(r.Stdout)
	} else {
		s.Observed, s.Reason = "deny", r.Message()
	}
	e.record(s)
}

// csrForAnotherIdentity: a token for logistics-edge, used with a CSR that asks for
// payment-release's SPIFFE ID.
func csrForAnotherIdentity(ctx context.Context, e *env) {
	s := Step{Name: "enrol with a CSR asking for payment-release's identity", Kind: "attack", Expected: "deny"}
	err := func() error {
		r := e.Admin(ctx, "entry", "create", "--name", "logistics-edge", "--role", "shipping", "--class", "transactional", "--zone", "edge")
		s.Command = r.Command
		if r.Err != nil {
			return r.Err
		}
		tok, err := e.Token(ctx, "logistics-edge")
		s.Command = commands(s.Command, "TOKEN=$("+tok.Command+")",
			"# in process: POST /v1/enroll with $TOKEN and a CSR whose URI SAN is "+e.ID("payment-release").String())
		if err != nil {
			return err
		}
		return enrollWithCSRFor(ctx, e.URL, strings.TrimSpace(tok.Stdout), e.ID("payment-release"))
	}()
	s.Observed, s.Reason, s.DecisionID = outcome(err)
	e.record(s)
}

// rotation: the operator's challenge makes logistics' enroll --watch renew at once; it
// renews over mTLS with its current SVID (and a fresh quote) and replaces its files.
func rotation(ctx context.Context, e *env) {
	s := Step{Name: "logistics' enroll --watch renews its SVID over mTLS (rotation, files replaced)", Kind: "workflow", Expected: "allow"}
	before, after, cmd, err := e.renewNow(ctx, "logistics", "rotation drill")
	s.Command = cmd
	s.Observed, s.Reason, s.DecisionID = outcome(err)
	if err == nil {
		s.Reason = fmt.Sprintf("serial %s -> %s, files in %s replaced by enroll --watch", before, after, e.show(e.agents["logistics"].Dir))
	}
	e.record(s)
}

// renewNow pushes an attestation challenge to name (`warden attest challenge`), which
// makes its enroll --watch renew at once, and waits for the new SVID on disk.
func (e *env) renewNow(ctx context.Context, name, reason string) (before, after, cmd string, err error) {
	a, err := e.agent(name)
	if err != nil {
		return "", "", "", err
	}
	before = a.Serial()
	r := e.Admin(ctx, "attest", "challenge", "--id", a.ID.String(), "--reason", reason)
	if r.Err != nil {
		return before, "", r.Command, r.Err
	}
	if err := a.WaitRotated(ctx, 30*time.Second, before); err != nil {
		return before, "", r.Command, err
	}
	return before, a.Serial(), r.Command, nil
}

// caRotation: the operator replaces the intermediate CA (as after a suspected key leak);
// logistics' next SVID chains through the new intermediate to the unchanged root, and
// every agent still holding an SVID from the old one goes on working through the gates.
func caRotation(ctx context.Context, e *env) {
	s := Step{Name: "operator rotates the intermediate CA; logistics renews through the new one", Kind: "workflow", Expected: "allow"}
	r := e.Admin(ctx, "ca", "rotate", "--reason", "demo: intermediate key rotation drill")
	err := r.Err
	var serial, prev string
	if err == nil {
		// "intermediate CA <serial> (until ...) replaces <previous>"
		f := strings.Fields(r.Stdout)
		if len(f) < 6 {
			err = fmt.Errorf("unexpected output of %s: %q", r.Command, r.Stdout)
		} else {
			serial, prev = f[2], f[len(f)-1]
		}
	}
	var renewCmd string
	if err == nil {
		_, _, renewCmd, err = e.renewNow(ctx, "logistics", "renew through the new intermediate")
	}
	if err == nil {
		var sv *x509svid.SVID
		a := e.agents["logistics"]
		sv, bundle, ferr := a.Files()
		switch {
		case ferr != nil:
			err = ferr
		case fmt.Sprintf("%x", sv.Certificates[len(sv.Certificates)-1].SerialNumber.Bytes()) != serial:
			err = fmt.Errorf("renewed SVID chains through intermediate %x, not the new %s", sv.Certificates[len(sv.Certificates)-1].SerialNumber.Bytes(), serial)
		default:
			if _, _, verr := x509svid.Verify(sv.Certificates, bundle); verr != nil {
				err = fmt.Errorf("renewed SVID does not verify against the unchanged bundle: %w", verr)
			}
		}
	}
	s.Command = commands(r.Command, renewCmd)
	s.Observed, s.Reason, s.DecisionID = outcome(err)
	if err == nil {
		s.Reason = fmt.Sprintf("intermediate %.12s -> %.12s; SVIDs of the old one stay valid until they expire", prev, serial)
	}
	e.record(s)
}

// revocation: the operator revokes demand-planner; a watcher on the trust-state stream
// must see it within a second of the control plane signing it, and demand-planner's
// renewal is refused.
func revocation(ctx context.Context, e *env) {
	id := e.ID("demand-planner")
	watch := Step{Name: "revocation of demand-planner reaches the trust-state stream within 1s", Kind: "workflow", Expected: "allow"}
	if a := e.agents["demand-planner"]; a != nil {
		a.Watch.ExpectExit() // its enroll --watch stops at its next renewal: refused
	}
	seen, doc, err := e.ChangeAndWatch(ctx, 30*time.Second, func() error {
		res := e.Admin(ctx, "revoke", "--id", id.String(), "--reason", "demo: key exposed in a log")
		watch.Command = res.Command
		return res.Err
	}, func(d *truststate.Document) bool { _, ok := d.IsRevoked(id.String(), ""); return ok })
	switch {
	case err != nil:
		watch.Observed, watch.Reason, watch.DecisionID = outcome(err)
	default:
		push := time.Since(doc.IssuedAt)
		watch.Observed = "allow"
		if push > time.Second {
			watch.Observed = "deny"
		}
		watch.Reason = fmt.Sprintf("trust state version %d verified by a watcher %s after the control plane signed it (%s after `warden revoke` started)",
			doc.Version, push.Round(time.Millisecond), seen.Round(time.Millisecond))
	}
	e.record(watch)

	s := Step{Name: "revoked demand-planner tries to renew", Kind: "attack", Expected: "deny",
		Command: "# in process: the renewal demand-planner's enroll --watch makes at half-life, made now (sdk.Source.Renew)"}
	a, err := e.agent("demand-planner")
	if err == nil {
		if err = e.Renew(ctx, a); err == nil {
			err = errors.New("a revoked agent renewed")
			s.Observed, s.Reason = "allow", err.Error()
		}
	}
	if s.Observed == "" {
		s.Observed, s.Reason, s.DecisionID = outcome(err)
	}
	e.record(s)

	// Its SVID is still valid for minutes; the control plane refuses it anyway, and the
	// refusal is an access event in the audit log under the request id.
	js := Step{Name: "revoked demand-planner asks for a JWT-SVID for the ERP", Kind: "attack", Expected: "deny",
		Command: "curl -sk --cert $DIR/agents/demand-planner/svid.pem --key $DIR/agents/demand-planner/svid_key.pem -d '{\"audience\":[\"erp\"]}' " + e.URL + api.PathJWTSVID}
	if a != nil {
		var src *sdk.Source
		if src, err = a.Source(e.URL, nil); err == nil {
			var jwt api.JWTSVIDResponse
			err = api.Do(ctx, src.HTTPClient(), http.MethodPost, e.URL+api.PathJWTSVID, api.JWTSVIDRequest{Audience: []string{"erp"}}, &jwt)
			src.HTTPClient().CloseIdleConnections()
			if err == nil {
				js.Observed, js.Reason = "allow", "a revoked agent got a JWT-SVID"
			}
		}
	}
	if js.Observed == "" {
		js.Observed, js.Reason, js.DecisionID = outcome(err)
	}
	e.record(js)
}

func suspension(ctx context.Context, e *env) {
	s := Step{Name: "suspended payment-release tries to renew", Kind: "attack", Expected: "deny"}
	id := e.ID("payment-release")
	r := e.Admin(ctx, "suspend", "--id", id.String(), "--reason", "demo: runtime drift suspected")
	s.Command = commands(r.Command, "# in process: payment-release's renewal (sdk.Source.Renew), as its enroll --watch would make it")
	err := r.Err
	if err == nil {
		var a *Agent
		if a, err = e.agent("payment-release"); err == nil {
			if err = e.Renew(ctx, a); err == nil {
				err = errors.New("a suspended agent renewed")
				s.Observed, s.Reason = "allow", err.Error()
				e.record(s)
				return
			}
		}
	}
	s.Observed, s.Reason, s.DecisionID = outcome(err)
	// Lift it again so later steps start from a healthy payment agent.
	rr := e.Admin(ctx, "restore", "--id", id.String(), "--reason", "demo: cleared")
	s.Command = commands(s.Command, rr.Command)
	e.record(s)
}
