package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/warden-a2a/warden/internal/api"
)

// The Web PKI listener serves what parties outside the trust domain fetch with ordinary
// HTTPS: the https_web SPIFFE bundle endpoint (SPIFFE Federation §5.2.1), the OpenID
// Connect discovery document and the JWKS. It presents an operator-supplied certificate
// (from a public CA, typically by ACME), re-read when its files change, requires no
// client certificate (Federation §5.2.1.3: servers MUST NOT require client
// authentication) and accepts TLS 1.2 and 1.3 (Mozilla "intermediate", §5).

// WebHandler returns the handler of the Web PKI listener: GET /v1/bundle, /v1/jwks and
// /.well-known/openid-configuration; everything else is 404.
func (s *Server) WebHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathBundle, s.handleBundle)
	mux.HandleFunc("GET "+api.PathJWKS, s.handleJWKS)
	mux.HandleFunc("GET "+api.PathOIDCDiscovery, s.handleOIDCDiscovery)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// ServeWeb serves WebHandler on ln with the certificate and key in certFile and keyFile
// (PEM; the chain in certFile, leaf first) until ctx ends.
func (s *Server) ServeWeb(ctx context.Context, ln net.Listener, certFile, keyFile string) error {
	cr, err := newCertReloader(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("server: web listener: %w", err)
	}
	hs := &http.Server{
		Handler: s.WebHandler(),
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cr.get(), nil },
		},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	s.log.Info("warden web listener (https_web bundle endpoint, OIDC discovery)", "url", "https://"+ln.Addr().String())
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = hs.Shutdown(sctx)
		cancel()
		<-errc
	case err = <-errc:
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// certReloader holds a certificate loaded from files and loads it again when either
// file's modification time or size changes (checked at most once a second), so a
// renewed certificate is served without a restart. A pair that fails to load keeps the
// previous one in service.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile}
	stamp, err := c.fileStamp()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	c.cert, c.stamp, c.checked = &cert, stamp, time.Now()
	return c, nil
}

func (c *certReloader) fileStamp() (string, error) {
	var stamp string
	for _, p := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return stamp, nil
}

func (c *certReloader) get() *tls.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) < time.Second {
		return c.cert
	}
	c.checked = time.Now()
	stamp, err := c.fileStamp()
	if err != nil || stamp == c.stamp {
		return c.cert
	}
	if cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile); err == nil {
		c.cert, c.stamp = &cert, stamp
	}
	return c.cert
}
