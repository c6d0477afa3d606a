package gate

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
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
		tc := tlsconfig.MTLSServerConfig(g.cfg.SVID, g.cfg.Bundle, tlsconfig.AuthorizeMemberOf(g.cfg.Self.TrustDomain()))
		tc.MinVersion = tls.VersionTLS13
		tc.NextProtos = []string{"h2", "http/1.1"}
		ln = tls.NewListener(ln, tc)
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
