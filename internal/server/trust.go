package server

import (
	"fmt"
	"net/http"
	"time"
)

// heartbeat keeps idle watch streams (and the proxies between) from timing out.
const heartbeat = 15 * time.Second

func (s *Server) handleTrustState(w http.ResponseWriter, r *http.Request) {
	ts, _ := s.trust.Current()
	w.Header().Set("Content-Type", "application/jose")
	w.Header().Set("Warden-Trust-State-Version", fmt.Sprint(ts.Version))
	_, _ = w.Write(ts.Signed)
}

// handleTrustWatch streams every new trust-state version as a server-sent event
// (event "trust-state", id = version, data = the signed document), the current one first.
func (s *Server) handleTrustWatch(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream: no overall write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	updates := s.trust.Watch(r.Context())
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case ts, ok := <-updates:
			if !ok {
				return
			}
			if _, err := fmt.Fprintf(w, "event: trust-state\nid: %d\ndata: %s\n\n", ts.Version, ts.Signed); err != nil {
				return
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
