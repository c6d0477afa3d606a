package server

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/fleet"
)

// Gate heartbeats (docs/gate.md, "Heartbeats"): every gate reports what it enforces; the
// last report of each is kept in the fleet tables and `warden gates` lists them with
// their flags.

// maxReportText bounds the free-text fields of a report.
const maxReportText = 512

func checkReport(g *api.GateReport) error {
	switch g.Mode {
	case "inbound", "outbound", "legacy":
	default:
		return fmt.Errorf("mode %q: want inbound, outbound or legacy", g.Mode)
	}
	for name, v := range map[string]string{"zone": g.Zone, "policy_revision": g.PolicyRevision, "policy_source": g.PolicySource, "last_error": g.LastError} {
		if len(v) > maxReportText || !utf8.ValidString(v) {
			return fmt.Errorf("%s: at most %d bytes of UTF-8", name, maxReportText)
		}
	}
	if g.PolicyRevision != "" && !revisionRE.MatchString(g.PolicyRevision) {
		return fmt.Errorf("policy_revision must be 64 lower-case hex digits")
	}
	if g.TrustStateVersion < 0 || g.TrustStateAgeMS < 0 || g.MaxStalenessMS < 0 || g.SpoolDepth < 0 || g.IntervalMS < 0 {
		return fmt.Errorf("negative numbers")
	}
	return nil
}

// handleGateHeartbeat: POST /v1/gates/heartbeat, mTLS with the gate's SVID; the gate is
// the certificate's SPIFFE ID.
func (s *Server) handleGateHeartbeat(w http.ResponseWriter, r *http.Request) {
	var rep api.GateReport
	if !s.readJSONLimit(w, r, &rep, api.MaxReportBytes) {
		return
	}
	if err := checkReport(&rep); err != nil {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
		return
	}
	if s.fleet == nil {
		s.fail(w, r, http.StatusServiceUnavailable, api.ReasonInternal, "this store backend keeps no gate reports")
		return
	}
	rep.LastError = strings.ToValidUTF8(rep.LastError, "")
	if err := s.fleet.PutReport(r.Context(), peerString(r), rep, s.now().UTC()); err != nil {
		s.internal(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleGates: GET /v1/admin/gates.
func (s *Server) handleGates(w http.ResponseWriter, r *http.Request) {
	out := []api.GateStatus{}
	if s.fleet != nil {
		gs, err := s.fleet.Reports(r.Context())
		if err != nil {
			s.internal(w, r, err)
			return
		}
		_, d := s.trust.Current()
		cur := fleet.Current{PolicyRevision: d.PolicyRevision, Version: d.Version, IssuedAt: d.IssuedAt}
		now := s.now()
		for i := range gs {
			fleet.Flag(&gs[i], cur, now)
		}
		out = append(out, gs...)
	}
	writeJSON(w, http.StatusOK, out)
}
