package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/warden-a2a/warden/internal/store"
)

// Ready reports whether the server can serve: nil, or the first reason it cannot. Ready
// means its store answers within two seconds and its own SVID (the TLS certificate every
// client verifies) has not expired. `warden server` serves it as /readyz, with /healthz
// (the process answers), on the API listener and on --metrics-listen.
func (s *Server) Ready(ctx context.Context) error {
	if tc := s.tlsCert.Load(); tc == nil || tc.Leaf == nil {
		return errors.New("no server SVID yet")
	} else if now := s.now(); !now.Before(tc.Leaf.NotAfter) {
		return fmt.Errorf("the server's own SVID expired at %s", tc.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.cfg.Store.LatestTrustState(ctx); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.Ready(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
