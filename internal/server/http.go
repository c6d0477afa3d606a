package server

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
)

type ctxKey int

const requestIDKey ctxKey = 0

// Handler returns the API's HTTP handler (routing, request ids, access log).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathBundle, s.handleBundle)
	mux.HandleFunc("GET "+api.PathBundlePEM, s.handleBundlePEM)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.HandleFunc("GET "+api.PathJWKS, s.handleJWKS)
	mux.HandleFunc("GET "+api.PathOIDCDiscovery, s.handleOIDCDiscovery)
	mux.HandleFunc("POST "+api.PathEnroll, s.handleEnroll)
	mux.HandleFunc("POST "+api.PathRenew, s.agent(s.handleRenew))
	mux.HandleFunc("POST "+api.PathRecoverChallenge, s.handleRecoverChallenge)
	mux.HandleFunc("POST "+api.PathRecover, s.handleRecover)
	mux.HandleFunc("POST "+api.PathJWTSVID, s.agent(s.handleJWTSVID))
	mux.HandleFunc("GET "+api.PathTrustState, s.agent(s.handleTrustState))
	mux.HandleFunc("GET "+api.PathTrustStateWatch, s.agent(s.handleTrustWatch))
	mux.HandleFunc("POST "+api.PathAuditEvents, s.agent(s.handleAuditEvents))
	mux.HandleFunc("GET "+api.PathAdminEntries, s.admin(s.handleListEntries))
	mux.HandleFunc("POST "+api.PathAdminEntries, s.admin(s.handleCreateEntry))
	mux.HandleFunc("DELETE "+api.PathAdminEntries+"/{name}", s.admin(s.handleDeleteEntry))
	mux.HandleFunc("POST "+api.PathAdminTokens, s.admin(s.handleCreateToken))
	mux.HandleFunc("POST "+api.PathAdminTrust+"{op}", s.admin(s.handleTrustChange))
	mux.HandleFunc("PUT "+api.PathAdminEntries+"/{name}/attrs", s.admin(s.handleSetEntryAttrs))
	mux.HandleFunc("POST "+api.PathAttestChallenge, s.handleAttestChallenge)
	mux.HandleFunc("POST "+api.PathAdminAttestChallenge, s.admin(s.handleAdminChallenge))
	mux.HandleFunc("POST "+api.PathAdminCARotate, s.admin(s.handleCARotate))
	mux.HandleFunc("GET "+api.PathAuditSearch, s.auditReader(s.handleAuditSearch))
	mux.HandleFunc("POST "+api.PathAdminAuditors, s.admin(s.handleCreateAuditor))
	mux.HandleFunc("POST "+api.PathAdminKillSwitches, s.admin(s.handleKillSwitchEngage))
	mux.HandleFunc("POST "+api.PathAdminKillSwitchRelease, s.admin(s.handleKillSwitchRelease))
	mux.HandleFunc("POST "+api.PathAdminIncident+"{op}", s.admin(s.handleIncident))
	mux.HandleFunc("PUT "+api.PathAdminZones+"{name}", s.admin(s.handleZoneSet))
	mux.HandleFunc("GET "+api.PathAdminStatus, s.admin(s.handleStatus))
	mux.HandleFunc("GET "+api.PathAdminFederation, s.admin(s.handleListFederation))
	mux.HandleFunc("POST "+api.PathAdminFederation, s.admin(s.handleAddFederation))
	mux.HandleFunc("DELETE "+api.PathAdminFederation+"/{td}", s.admin(s.handleRemoveFederation))
	mux.HandleFunc("POST "+api.PathAdminPolicyBundles, s.admin(s.handlePolicyPush))
	mux.HandleFunc("GET "+api.PathAdminPolicy, s.admin(s.handlePolicyStatus))
	mux.HandleFunc("GET "+api.PathPolicyBundles+"{revision}", s.agent(s.handlePolicyBundle))
	mux.HandleFunc("POST "+api.PathGateHeartbeat, s.agent(s.handleGateHeartbeat))
	mux.HandleFunc("GET "+api.PathAdminGates, s.admin(s.handleGates))
	mux.HandleFunc("POST "+api.PathWorkflowBegin, s.agent(s.handleWorkflowBegin))
	mux.HandleFunc("POST "+api.PathWorkflowFinish, s.agent(s.handleWorkflowFinish))
	s.approvalRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path+
			" (the API is under /v1/ at the server's base URL: give --server / server: as https://host:port with no path)")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(contextWithRequestID(r.Context(), id))
		sw := &statusWriter{ResponseWriter: w, status: 200}
		if s.readOnlyAuditor(sw, r) {
			s.accessRefused(r, sw) // whatever the path: an auditor's refusals are access events
		} else {
			mux.ServeHTTP(sw, r)
			s.auditRequest(r, sw)
		}
		// The access log names the caller and the outcome, never a token or key. Every
		// refusal is logged with its reason; successes only at debug level.
		level := slog.LevelDebug
		if sw.status >= 400 {
			level = slog.LevelWarn
		}
		s.log.Log(r.Context(), level, "request", "id", id, "method", r.Method, "path", r.URL.Path, "status", sw.status, "reason", sw.reason, "peer", peerString(r), "remote", r.RemoteAddr)
	})
}

// peerID returns the SPIFFE ID of the verified client certificate, if any.
func peerID(r *http.Request) (spiffeid.ID, bool) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return spiffeid.ID{}, false
	}
	id, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
	return id, err == nil
}

func peerString(r *http.Request) string {
	if id, ok := peerID(r); ok {
		return id.String()
	}
	return ""
}

// agent wraps a handler that needs a client X509-SVID of this trust domain whose identity
// and serial are not revoked (the handshake already verified the chain).
func (s *Server) agent(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := peerID(r)
		if !ok {
			s.fail(w, r, http.StatusUnauthorized, api.ReasonUnauthenticated, "a client X509-SVID is required")
			return
		}
		if !s.peerCurrent(w, r) {
			return
		}
		_, doc := s.trust.Current()
		if rev, revoked := doc.IsRevoked(id.String(), serialOf(r)); revoked {
			s.fail(w, r, http.StatusForbidden, api.ReasonIdentityRevoked, id.String()+" is revoked: "+rev.Reason)
			return
		}
		h(w, r)
	}
}

// peerCurrent refuses (svid_expired) a client certificate that has expired since the
// handshake verified it: a kept-alive connection may outlive it. On a refusal it has
// answered.
func (s *Server) peerCurrent(w http.ResponseWriter, r *http.Request) bool {
	leaf := r.TLS.PeerCertificates[0]
	if na := leaf.NotAfter; !s.now().Before(na) {
		id, _ := peerID(r)
		s.fail(w, r, http.StatusUnauthorized, api.ReasonSVIDExpired, id.String()+"'s certificate expired at "+na.UTC().Format(time.RFC3339)+" (a kept-alive connection outlived it)")
		return false
	}
	return true
}

// admin wraps a handler that only the admin credential may call.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return s.agent(func(w http.ResponseWriter, r *http.Request) {
		if id, _ := peerID(r); id != s.adminID {
			s.fail(w, r, http.StatusForbidden, api.ReasonForbidden, "the admin API needs the admin credential")
			return
		}
		h(w, r)
	})
}

func serialOf(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	return hex.EncodeToString(r.TLS.PeerCertificates[0].SerialNumber.Bytes())
}

// readJSON reads a bounded JSON body into v, refusing other content types, unknown fields
// and trailing data. On failure it has already answered.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	return s.readJSONLimit(w, r, v, api.MaxBodyBytes)
}

// readJSONLimit is readJSON with a body limit of its own (policy bundles are larger).
func (s *Server) readJSONLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		s.fail(w, r, http.StatusUnsupportedMediaType, api.ReasonUnsupportedMedia, "Content-Type must be application/json")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(w, r, http.StatusRequestEntityTooLarge, api.ReasonBodyTooLarge, fmt.Sprintf("request body larger than %d KiB", limit>>10))
		} else {
			s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "cannot read body")
		}
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		msg := "body is not the expected JSON object"
		if err != nil {
			msg += ": " + err.Error()
		}
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, msg)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers with an api.Error carrying a stable reason code.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if sw, ok := w.(*statusWriter); ok {
		sw.reason = code
	}
	writeJSON(w, status, &api.Error{Code: code, Message: msg, RequestID: requestID(r)})
}

type statusWriter struct {
	http.ResponseWriter
	status          int
	reason          string
	subject, serial string // set by handlers for the audit event (annotate)
}

func (w *statusWriter) WriteHeader(code int)        { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
