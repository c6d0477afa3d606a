package gate

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/audit"
)

// Serve serves the gate on ln until ctx ends. Inbound and legacy gates wrap ln in TLS 1.3
// with mutual authentication: the gate presents its current SVID (asked for on every
// handshake, so rotation needs no restart) and accepts any X509-SVID of its trust domain
// that chains to the bundle; who may do what is decided per request. Outbound gates serve
// plain HTTP to the local agent (a unix socket with SO_PEERCRED, or loopback with the
// per-process secret).
func (g *Gate) Serve(ctx context.Context, ln net.Listener) error {
	l := g.cfg.Limits
	ln = &limitListener{Listener: ln, perPeer: l.MaxConnsPerPeer, total: l.MaxConns, open: map[string]int{}}
	srv := &http.Server{
		Handler:           g.handler,
		ReadHeaderTimeout: l.ReadHeaderTimeout, // slowloris: headers (and the TLS handshake) in time
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.cfg.Logger.Handler(), slog.LevelDebug), // handshake failures
	}
	if g.cfg.Mode == ModeOutbound {
		srv.ConnContext = ConnContext
	} else {
		tc := tlsconfig.MTLSServerConfig(g.cfg.SVID, g.cfg.Bundle, g.authorizeCaller) // own + federated trust domains
		tc.MinVersion = tls.VersionTLS13
		tc.NextProtos = []string{"h2", "http/1.1"}
		ln = tls.NewListener(ln, g.auditedTLS(tc))
		// The TLS handshake is bounded by ReadHeaderTimeout (http.Server
		// tlsHandshakeTimeout): a client that connects and sends nothing is cut.
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// limitListener caps open connections in total and per remote address (IP for TCP; one
// bucket for a unix socket). Connections over the cap are closed at once.
type limitListener struct {
	net.Listener
	perPeer, total int

	mu   sync.Mutex
	open map[string]int
	n    int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := c.RemoteAddr().String()
		if host, _, err := net.SplitHostPort(key); err == nil {
			key = host
		}
		l.mu.Lock()
		if l.n >= l.total || l.open[key] >= l.perPeer {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.n++
		l.open[key]++
		l.mu.Unlock()
		return &limitConn{Conn: c, l: l, key: key}, nil
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	key  string
	once sync.Once
}

func (c *limitConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.n--
		if c.l.open[c.key]--; c.l.open[c.key] <= 0 {
			delete(c.l.open, c.key)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// auditedTLS makes every handshake the gate refuses a decision like any other: an audit
// event with a decision id and a reason (untrusted_certificate, no_peer_certificate). A
// client without a certificate is asked for one and refused in the same place, so that
// it is recorded too; go-spiffe's verification still decides. The caller only sees the
// TLS alert: a handshake has no room for a decision id. At most tlsAuditPerSecond such
// events are written per second; the next one written counts the ones left out.
func (g *Gate) auditedTLS(base *tls.Config) *tls.Config {
	verify := base.VerifyPeerCertificate
	lim := &audit.PerSecond{N: tlsAuditPerSecond}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			c := base.Clone()
			c.ClientAuth = tls.RequestClientCert
			remote := hi.Conn.RemoteAddr().String()
			c.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
				if len(raw) == 0 {
					err := errors.New("gate: the client sent no certificate")
					g.recordHandshakeRefusal(lim, remote, nil, ReasonNoPeerCert, err)
					return err
				}
				if err := verify(raw, chains); err != nil {
					g.recordHandshakeRefusal(lim, remote, raw[0], ReasonUntrustedCert, err)
					return err
				}
				return nil
			}
			return c, nil
		},
	}
}

const tlsAuditPerSecond = 50

func (g *Gate) recordHandshakeRefusal(lim *audit.PerSecond, remote string, leaf []byte, reason string, err error) {
	now := g.cfg.Now()
	ok, dropped := lim.Take(time.Now())
	if !ok {
		g.cfg.Logger.Debug("gate: handshake refused, audit event rate-limited", "remote", remote, "reason", reason)
		return
	}
	ev := Event{DecisionID: newDecisionID(), Time: now, Gate: g.cfg.Self.String(), Mode: g.cfg.Mode, Reason: reason}
	msg := "TLS handshake from " + remote + " refused"
	if leaf != nil {
		sum := sha256.Sum256(leaf)
		ev.CallerCertSHA256 = hex.EncodeToString(sum[:])
		if cert, perr := x509.ParseCertificate(leaf); perr == nil {
			if id, ierr := x509svid.IDFromCert(cert); ierr == nil {
				// Claimed, not proven: kept out of Peer, which holds verified identities.
				msg += ": certificate claims " + id.String()
			}
		}
	}
	ev.Message = msg + ": " + err.Error()
	if dropped > 0 {
		ev.Message += " (" + strconv.Itoa(dropped) + " earlier handshake refusals not recorded: over " + strconv.Itoa(tlsAuditPerSecond) + "/s)"
	}
	if rerr := g.cfg.Audit.Record(context.Background(), ev); rerr != nil {
		g.cfg.Logger.Error("gate: audit sink failed for a refused handshake", "decision_id", ev.DecisionID, "err", rerr)
	}
}
