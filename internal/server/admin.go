package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/enroll"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/telemetry"
	"github.com/warden-a2a/warden/internal/truststate"
)

// Classes of agents (ARCHITECTURE.md, role-aware fail-closed).
var Classes = []string{"read-only", "advisory", "transactional", "regulated"}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// MaxTokenTTL bounds join-token lifetimes.
const MaxTokenTTL = 24 * time.Hour

func (s *Server) handleCreateEntry(w http.ResponseWriter, r *http.Request) {
	var req api.Entry
	if !s.readJSON(w, r, &req) {
		return
	}
	guards, err := s.resolveGuards(r.Context(), &req)
	if err == nil {
		err = validateEntry(req)
	}
	if err == nil {
		err = checkAttrs(req.Attrs)
	}
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
		return
	}
	if guards != "" {
		if req.Attrs, err = attrsWithGuards(req.Attrs, guards); err != nil {
			s.internal(w, r, err)
			return
		}
	}
	// Agents are spiffe://TD/agent/NAME; gates that act for others (file approvals for
	// the agents behind them, front legacy systems) are spiffe://TD/gate/NAME.
	kind := req.Kind
	if kind == "" {
		kind = "agent"
	}
	id := spiffeid.RequireFromPath(s.td, "/"+kind+"/"+req.Name)
	e := store.Entry{
		Name: req.Name, SPIFFEID: id.String(), Role: req.Role, Class: req.Class, Zone: req.Zone,
		CreatedAt: s.now().UTC(), Attrs: req.Attrs,
	}
	ev := adminEvent(r, audit.Event{Kind: audit.KindEntry, Subject: e.SPIFFEID, Outcome: "created", Reason: "operator_create_entry",
		Detail: entryDetail(e)})
	err = s.commit(r.Context(), func(ctx context.Context, st ...store.Event) error { return s.cfg.Store.CreateEntry(ctx, e, st...) }, ev)
	if errors.Is(err, store.ErrExists) {
		s.fail(w, r, http.StatusConflict, api.ReasonConflict, "entry "+req.Name+" already exists")
		return
	} else if err != nil {
		s.changeFailed(w, r, err)
		return
	}
	s.log.Info("entry created", "name", e.Name, "spiffe_id", e.SPIFFEID, "class", e.Class, "zone", e.Zone)
	if err := s.syncDirectory(r.Context()); err != nil {
		s.log.Error("directory update failed", "err", err) // the entry exists; the next change or restart retries
	}
	writeJSON(w, http.StatusCreated, s.apiEntry(e))
}

// entryDetail is what an entry event records of e: its attributes, and the SHA-256 of
// its attrs and of the attestation reference values in them (the values themselves can
// be large; the digest names the exact version).
func entryDetail(e store.Entry) map[string]string {
	d := map[string]string{"name": e.Name, "role": e.Role, "class": e.Class, "zone": e.Zone}
	if len(e.Attrs) > 0 {
		d["attrs_sha256"] = sha256Hex(e.Attrs)
	}
	if refs := refsOf(e.Attrs); refs != nil {
		d["reference_values_sha256"] = sha256Hex(refs)
	}
	return d
}

// refsOf returns the raw attestation reference values in attrs, or nil.
func refsOf(attrs []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(attrs, &m) != nil {
		return nil
	}
	return m["attestation"] // attest.RefsFromAttrs reads the same key
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func validateEntry(e api.Entry) error {
	if !nameRE.MatchString(e.Name) {
		return errors.New("name must match [a-z0-9][a-z0-9-]{0,62}")
	}
	if e.Kind != "" && e.Kind != "agent" && e.Kind != "gate" {
		return errors.New("kind must be agent or gate")
	}
	if strings.TrimSpace(e.Role) == "" {
		return errors.New("role is required")
	}
	ok := false
	for _, c := range Classes {
		ok = ok || c == e.Class
	}
	if !ok {
		return fmt.Errorf("class must be one of %s", strings.Join(Classes, ", "))
	}
	if !nameRE.MatchString(e.Zone) {
		return errors.New("zone must match [a-z0-9][a-z0-9-]{0,62}")
	}
	return nil
}

func (s *Server) apiEntry(e store.Entry) api.Entry {
	_, doc := s.trust.Current()
	status := doc.Status(e.SPIFFEID)
	if _, revoked := doc.IsRevoked(e.SPIFFEID, ""); revoked {
		status = "revoked"
	}
	kind := "agent"
	if strings.Contains(e.SPIFFEID, "/gate/") {
		kind = "gate"
	}
	return api.Entry{Name: e.Name, Kind: kind, SPIFFEID: e.SPIFFEID, Role: e.Role, Class: e.Class, Zone: e.Zone,
		Guards: guardsOf(e.Attrs), Attrs: e.Attrs, CreatedAt: e.CreatedAt, Status: status}
}

func (s *Server) handleListEntries(w http.ResponseWriter, r *http.Request) {
	entries, err := s.cfg.Store.ListEntries(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := make([]api.Entry, 0, len(entries))
	for _, e := range entries {
		out = append(out, s.apiEntry(e))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDeleteEntry(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	e, err := s.cfg.Store.GetEntry(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "no entry "+name)
		return
	} else if err != nil {
		s.internal(w, r, err)
		return
	}
	ev := adminEvent(r, audit.Event{Kind: audit.KindEntry, Subject: e.SPIFFEID, Outcome: "deleted", Reason: "operator_delete_entry",
		Detail: entryDetail(e)})
	err = s.commit(r.Context(), func(ctx context.Context, st ...store.Event) error { return s.cfg.Store.DeleteEntry(ctx, name, st...) }, ev)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "no entry "+name)
		return
	} else if err != nil {
		s.changeFailed(w, r, err)
		return
	}
	s.log.Info("entry deleted", "name", name)
	if err := s.syncDirectory(r.Context()); err != nil {
		s.log.Error("directory update failed", "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	var req api.TokenRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	ttl := time.Duration(req.TTLSec) * time.Second
	if ttl <= 0 || ttl > MaxTokenTTL {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, fmt.Sprintf("ttl must be between 1s and %s", MaxTokenTTL))
		return
	}
	tok, secret := enroll.NewToken(s.ca.RootPin())
	now := s.now().UTC()
	jt := store.JoinToken{Hash: tok.Hash(), EntryName: req.Entry, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	// The event names the entry's SPIFFE ID; without the entry there is no token (and a
	// failed look-up, a client hanging up, makes none either).
	entry, err := s.cfg.Store.GetEntry(r.Context(), req.Entry)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "no entry "+req.Entry)
		return
	} else if err != nil {
		s.internal(w, r, err)
		return
	}
	// Never the secret, nor its hash (the stored look-up key).
	ev := adminEvent(r, audit.Event{Kind: audit.KindJoinToken, Subject: entry.SPIFFEID, Outcome: "created", Reason: "operator_create_token",
		Detail: map[string]string{"entry": req.Entry, "expires_at": jt.ExpiresAt.Format(time.RFC3339), "ttl_s": strconv.Itoa(req.TTLSec)}})
	err = s.commit(r.Context(), func(ctx context.Context, st ...store.Event) error { return s.cfg.Store.CreateJoinToken(ctx, jt, st...) }, ev)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "no entry "+req.Entry)
		return
	} else if err != nil {
		s.changeFailed(w, r, err)
		return
	}
	s.log.Info("join token created", "entry", req.Entry, "expires_at", jt.ExpiresAt) // never the token
	writeJSON(w, http.StatusCreated, api.TokenResponse{Token: secret, Entry: req.Entry, ExpiresAt: jt.ExpiresAt})
}

// handleTrustChange revokes, quarantines, suspends or restores an identity by writing a
// new trust-state version.
func (s *Server) handleTrustChange(w http.ResponseWriter, r *http.Request) {
	op := r.PathValue("op")
	var req api.TrustChange
	if !s.readJSON(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Reason) == "" {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "a reason is required")
		return
	}
	if req.ID != "" {
		id, err := spiffeid.FromString(req.ID)
		if err != nil || !s.mayChangeTrustOf(op, id) {
			s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "id must be a SPIFFE ID of trust domain "+s.td.Name()+" or of a federated trust domain")
			return
		}
	}
	now := s.now().UTC()
	var apply func(d *truststate.Document) error
	switch op {
	case "revoke":
		if (req.ID == "") == (req.Serial == "") {
			s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "revoke needs exactly one of id or serial")
			return
		}
		apply = func(d *truststate.Document) error {
			rev := truststate.Revocation{Reason: req.Reason, At: now}
			if req.ID != "" {
				d.RevokedIDs = setKey(d.RevokedIDs, req.ID, rev)
			} else {
				d.RevokedSerials = setKey(d.RevokedSerials, strings.ToLower(req.Serial), rev)
			}
			return nil
		}
	case "quarantine", "suspend":
		status := map[string]string{"quarantine": truststate.StatusQuarantined, "suspend": truststate.StatusSuspended}[op]
		if req.ID == "" {
			s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "id is required")
			return
		}
		apply = func(d *truststate.Document) error {
			d.Agents = setKey(d.Agents, req.ID, truststate.AgentState{Status: status, Reason: req.Reason, Since: now})
			return nil
		}
	case "restore":
		if req.ID == "" {
			s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "id is required")
			return
		}
		apply = func(d *truststate.Document) error {
			delete(d.Agents, req.ID)
			delete(d.RevokedIDs, req.ID)
			return nil
		}
	default:
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "unknown trust operation "+op)
		return
	}
	subject := req.ID
	if subject == "" {
		subject = "serial:" + strings.ToLower(req.Serial)
	}
	kind, outcome := trustEventKind(op)
	ev := adminEvent(r, audit.Event{Kind: kind, Subject: subject, Serial: strings.ToLower(req.Serial), Outcome: outcome,
		Reason: "operator_" + op, Detail: map[string]string{"text": req.Reason}})
	doc, err := s.commitTrust(r.Context(), func(d *truststate.Document) ([]audit.Event, error) {
		return []audit.Event{ev}, apply(d)
	})
	if err != nil {
		s.changeFailed(w, r, err)
		return
	}
	s.log.Info("trust state changed", "op", op, "id", req.ID, "serial", req.Serial, "reason", req.Reason, "version", doc.Version)
	if m := s.cfg.Metrics; m != nil && op == "revoke" {
		m.SVIDEvent(telemetry.SVIDRevoked)
	}
	writeJSON(w, http.StatusOK, api.TrustChangeResponse{Version: doc.Version})
}

// trustEventKind is the audit kind and outcome of an operator's trust-state change.
func trustEventKind(op string) (audit.Kind, string) {
	switch op {
	case "quarantine":
		return audit.KindQuarantine, "engaged"
	case "suspend":
		return audit.KindSuspension, "engaged"
	case "restore":
		return audit.KindQuarantine, "released"
	}
	return audit.KindRevocation, "revoked"
}

// mayChangeTrustOf: identities of this trust domain, and of a federated one — a
// partner's agents are revoked, quarantined and suspended here like ours, for every gate
// of this trust domain. An identity of a trust domain no longer federated can still be
// restored (its entries stay until then).
func (s *Server) mayChangeTrustOf(op string, id spiffeid.ID) bool {
	if id.TrustDomain() == s.td {
		return true
	}
	_, doc := s.trust.Current()
	if _, ok := doc.Federation[id.TrustDomain().Name()]; ok {
		return true
	}
	_, revoked := doc.RevokedIDs[id.String()]
	_, listed := doc.Agents[id.String()]
	return op == "restore" && (revoked || listed)
}

func setKey[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

// handleCARotate replaces the intermediate CA at an operator's request (an incident, a
// key-handling policy): POST /v1/admin/ca/rotate {"reason": "..."}. A reason is required;
// it goes to the ca_rotation audit event. Existing SVIDs stay valid until they expire
// (revoke their serials or identities if the old intermediate key is suspected).
func (s *Server) handleCARotate(w http.ResponseWriter, r *http.Request) {
	var req api.CARotateRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 512 {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "a reason of 1..512 bytes is required")
		return
	}
	cert, prev, err := s.rotateIntermediate(r.Context(), func(ev audit.Event) audit.Event { return adminEvent(r, ev) }, "operator_rotate", req.Reason)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	// The server's own SVID moves to the new intermediate at once.
	if err := s.rotateServerSVID(r.Context()); err != nil {
		s.log.Error("server svid rotation after CA rotation failed", "err", err)
	}
	writeJSON(w, http.StatusOK, api.CARotateResponse{Serial: ca.SerialHex(cert), NotAfter: cert.NotAfter, PreviousSerial: ca.SerialHex(prev)})
}
