package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/truststate"
)

// Live controls (docs/operator-guide.md, "Incident runbook"): kill switches, incident
// mode and zone states are fields of the signed trust state; each handler writes one new
// version and records who did it and why. Gates follow the watch stream and apply the
// change to the next request.

var (
	actionRE   = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)
	workflowRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$`)
)

// errConflict aborts a trust-state update whose precondition no longer holds; the
// handler answers 409 with its message.
type errConflict struct{ msg string }

func (e *errConflict) Error() string { return e.msg }

// errNoChange aborts an update that would change nothing.
var errNoChange = errors.New("no change")

// actorOf is who makes an admin change: the credential's verified SPIFFE ID and the
// operator name the caller declared.
func actorOf(r *http.Request, operator string) truststate.Actor {
	return truststate.Actor{By: peerString(r), Operator: strings.TrimSpace(operator)}
}

// operatorEvent makes ev the audit record of an operator's change made by request r
// (adminEvent: actor is the SPIFFE ID of the credential, authenticated), with
// detail.operator the person the caller named (declared, not verified). With r nil it is
// a change the server makes itself (actor "server").
func operatorEvent(r *http.Request, a truststate.Actor, ev audit.Event) audit.Event {
	if ev.Detail == nil {
		ev.Detail = map[string]string{}
	}
	if a.Operator != "" {
		ev.Detail["operator"] = a.Operator
	}
	if r == nil {
		return ev
	}
	return adminEvent(r, ev)
}

// checkText validates an operator's reason (required) and name (optional).
func checkText(reason, operator string) error {
	if strings.TrimSpace(reason) == "" || len(reason) > api.MaxReasonBytes || !utf8.ValidString(reason) {
		return fmt.Errorf("a reason of 1..%d bytes of UTF-8 is required", api.MaxReasonBytes)
	}
	if len(operator) > api.MaxOperatorBytes || !utf8.ValidString(operator) ||
		strings.IndexFunc(operator, func(r rune) bool { return unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("operator: at most %d printable bytes", api.MaxOperatorBytes)
	}
	return nil
}

// answerCommit answers the outcome of commitTrust.
func (s *Server) answerCommit(w http.ResponseWriter, r *http.Request, doc *truststate.Document, err error, out api.LiveChangeResponse) {
	var c *errConflict
	switch {
	case errors.As(err, &c):
		s.fail(w, r, http.StatusConflict, api.ReasonConflict, c.msg)
	case errors.Is(err, errNoChange):
		s.fail(w, r, http.StatusConflict, api.ReasonConflict, "nothing to change")
	case err != nil:
		s.changeFailed(w, r, err)
	default:
		out.Version = doc.Version
		writeJSON(w, http.StatusOK, out)
	}
}

// checkScope validates a kill switch's scope and value.
func (s *Server) checkScope(scope, value string) error {
	if value == "*" {
		if slices.Contains(api.KillSwitchScopes, scope) {
			return nil
		}
	}
	switch scope {
	case "action":
		if actionRE.MatchString(value) && len(value) <= 128 {
			return nil
		}
		return errors.New("action must be an action name such as payment.release, or *")
	case "agent":
		if nameRE.MatchString(value) {
			return nil
		}
		if _, err := spiffeid.FromString(value); err == nil {
			return nil
		}
		return errors.New("agent must be a SPIFFE ID or an agent name, or *")
	case "workflow":
		if workflowRE.MatchString(value) {
			return nil
		}
		return errors.New("workflow must be a workflow name or id ([A-Za-z0-9._:/-], at most 128), or *")
	case "zone":
		if nameRE.MatchString(value) {
			return nil
		}
		return errors.New("zone must match [a-z0-9][a-z0-9-]{0,62}, or *")
	}
	return fmt.Errorf("scope must be one of %s", strings.Join(api.KillSwitchScopes, ", "))
}

func newSwitchID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "ks-" + hex.EncodeToString(b[:])
}

// killSwitchEvent is the audit record of a switch engaged or released.
func killSwitchEvent(r *http.Request, k truststate.KillSwitch, outcome, reason, text string, actor truststate.Actor) audit.Event {
	detail := map[string]string{"id": k.ID, "scope": k.Scope, "value": k.Value, "text": text}
	if !k.Expires.IsZero() {
		detail["expires"] = k.Expires.UTC().Format(time.RFC3339)
	}
	if outcome == "released" {
		detail["engaged_at"] = k.At.UTC().Format(time.RFC3339)
		detail["engaged_reason"] = k.Reason
	}
	return operatorEvent(r, actor, audit.Event{Kind: audit.KindKillSwitch, Subject: k.Scope + ":" + k.Value,
		Outcome: outcome, Reason: reason, Detail: detail})
}

// handleKillSwitchEngage: POST /v1/admin/killswitches.
func (s *Server) handleKillSwitchEngage(w http.ResponseWriter, r *http.Request) {
	var req api.KillSwitchRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	err := checkText(req.Reason, req.Operator)
	if err == nil {
		err = s.checkScope(req.Scope, req.Value)
	}
	if err == nil && (req.TTLSec < 0 || req.TTLSec > int64(30*24*time.Hour/time.Second)) {
		err = errors.New("ttl_s must be between 0 (none) and 30 days")
	}
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
		return
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	k := truststate.KillSwitch{ID: newSwitchID(), Scope: req.Scope, Value: req.Value, Reason: req.Reason, At: now,
		Actor: actorOf(r, req.Operator)}
	if req.TTLSec > 0 {
		k.Expires = now.Add(time.Duration(req.TTLSec) * time.Second)
	}
	doc, err := s.commitTrust(r.Context(), func(d *truststate.Document) ([]audit.Event, error) {
		active := activeSwitches(d.KillSwitches, now)
		for _, o := range active {
			if o.Scope == k.Scope && o.Value == k.Value {
				return nil, &errConflict{fmt.Sprintf("a kill switch on %s %s is already engaged (%s, since %s by %s)",
					o.Scope, o.Value, o.ID, o.At.Format(time.RFC3339), o.Actor)}
			}
		}
		if len(active) >= api.MaxKillSwitches {
			return nil, &errConflict{fmt.Sprintf("%d kill switches are engaged: release some first", len(active))}
		}
		d.KillSwitches = append(d.KillSwitches, k)
		return []audit.Event{killSwitchEvent(r, k, "engaged", "operator_engage", req.Reason, k.Actor)}, nil
	})
	if err == nil {
		s.log.Info("kill switch engaged", "id", k.ID, "scope", k.Scope, "value", k.Value, "reason", k.Reason, "by", k.Actor.String(), "version", doc.Version)
	}
	s.answerCommit(w, r, doc, err, api.LiveChangeResponse{ID: k.ID})
}

// handleKillSwitchRelease: POST /v1/admin/killswitches/release.
func (s *Server) handleKillSwitchRelease(w http.ResponseWriter, r *http.Request) {
	var req api.KillSwitchRelease
	if !s.readJSON(w, r, &req) {
		return
	}
	err := checkText(req.Reason, req.Operator)
	if err == nil && (req.ID == "") == (req.Scope == "" && req.Value == "") {
		err = errors.New("name exactly one of id, or scope and value")
	}
	if err == nil && req.ID == "" {
		err = s.checkScope(req.Scope, req.Value)
	}
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
		return
	}
	actor := actorOf(r, req.Operator)
	var released []string
	doc, err := s.commitTrust(r.Context(), func(d *truststate.Document) ([]audit.Event, error) {
		released = nil
		var evs []audit.Event
		var keep []truststate.KillSwitch
		for _, k := range d.KillSwitches {
			if (req.ID != "" && k.ID == req.ID) || (req.ID == "" && k.Scope == req.Scope && k.Value == req.Value) {
				released = append(released, k.ID)
				evs = append(evs, killSwitchEvent(r, k, "released", "operator_release", req.Reason, actor))
				continue
			}
			keep = append(keep, k)
		}
		if len(released) == 0 {
			what := req.ID
			if what == "" {
				what = req.Scope + " " + req.Value
			}
			return nil, &errConflict{"no kill switch is engaged on " + what}
		}
		d.KillSwitches = keep
		return evs, nil
	})
	if err == nil {
		s.log.Info("kill switch released", "ids", released, "reason", req.Reason, "by", actor.String(), "version", doc.Version)
	}
	s.answerCommit(w, r, doc, err, api.LiveChangeResponse{Released: released})
}

// activeSwitches drops the switches whose ttl has passed.
func activeSwitches(ks []truststate.KillSwitch, now time.Time) []truststate.KillSwitch {
	return slices.DeleteFunc(slices.Clone(ks), func(k truststate.KillSwitch) bool { return !k.Active(now) })
}

// expireKillSwitches removes switches whose ttl has passed from the trust state and
// records each as released (reason ttl_expired). Gates stop applying a switch at its
// expiry by themselves; this keeps the document and `warden status` tidy.
func (s *Server) expireKillSwitches(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.now()
		_, cur := s.trust.Current()
		if !slices.ContainsFunc(cur.KillSwitches, func(k truststate.KillSwitch) bool { return !k.Active(now) }) {
			continue
		}
		_, err := s.commitTrust(ctx, func(d *truststate.Document) ([]audit.Event, error) {
			var evs []audit.Event
			for _, k := range d.KillSwitches {
				if !k.Active(now) {
					evs = append(evs, killSwitchEvent(nil, k, "released", "ttl_expired", "ttl of the switch passed", truststate.Actor{}))
				}
			}
			if len(evs) == 0 {
				return nil, errNoChange // another replica did it
			}
			d.KillSwitches = activeSwitches(d.KillSwitches, now)
			return evs, nil
		})
		if err != nil && !errors.Is(err, errNoChange) && ctx.Err() == nil {
			s.log.Error("expiring kill switches failed", "err", err)
		}
	}
}

// checkResponder accepts a SPIFFE ID or an agent name.
func checkResponder(v string) error {
	if nameRE.MatchString(v) {
		return nil
	}
	if _, err := spiffeid.FromString(v); err == nil {
		return nil
	}
	return fmt.Errorf("responder %q: want a SPIFFE ID or an agent name", v)
}

// handleIncident: POST /v1/admin/incident/{op}, op start or end.
func (s *Server) handleIncident(w http.ResponseWriter, r *http.Request) {
	op := r.PathValue("op")
	if op != "start" && op != "end" {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "unknown incident operation "+op)
		return
	}
	var req api.IncidentRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	err := checkText(req.Reason, req.Operator)
	if err == nil && op == "end" && (len(req.Responders) > 0 || req.Zone != "") {
		err = errors.New("responders and zone belong to start")
	}
	if err == nil && len(req.Responders) > api.MaxResponders {
		err = fmt.Errorf("at most %d responders", api.MaxResponders)
	}
	for _, v := range req.Responders {
		if err == nil {
			err = checkResponder(v)
		}
	}
	if err == nil && req.Zone != "" && !nameRE.MatchString(req.Zone) {
		err = errors.New("zone must match [a-z0-9][a-z0-9-]{0,62}")
	}
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
		return
	}
	actor := actorOf(r, req.Operator)
	now := s.now().UTC().Truncate(time.Millisecond)
	doc, err := s.commitTrust(r.Context(), func(d *truststate.Document) ([]audit.Event, error) {
		detail := map[string]string{"text": req.Reason}
		if op == "start" {
			if d.IncidentMode {
				since, by := "", ""
				if d.Incident != nil {
					since, by = d.Incident.Since.Format(time.RFC3339), d.Incident.Actor.String()
				}
				return nil, &errConflict{fmt.Sprintf("an incident is already in force (since %s by %s): end it first", since, by)}
			}
			d.IncidentMode = true
			d.Responders = slices.Clone(req.Responders)
			d.Incident = &truststate.Incident{Reason: req.Reason, Since: now, Zone: req.Zone, Actor: actor}
			detail["responders"] = strings.Join(req.Responders, ",")
			detail["zone"] = req.Zone
			return []audit.Event{operatorEvent(r, actor, audit.Event{Kind: audit.KindIncidentMode, Subject: incidentSubject(req.Zone),
				Outcome: "started", Reason: "operator_start", Detail: detail})}, nil
		}
		if !d.IncidentMode {
			return nil, &errConflict{"no incident is in force"}
		}
		zone := ""
		if d.Incident != nil {
			zone = d.Incident.Zone
			detail["started_at"] = d.Incident.Since.UTC().Format(time.RFC3339)
			detail["started_reason"] = d.Incident.Reason
		}
		d.IncidentMode, d.Responders, d.Incident = false, nil, nil
		return []audit.Event{operatorEvent(r, actor, audit.Event{Kind: audit.KindIncidentMode, Subject: incidentSubject(zone),
			Outcome: "ended", Reason: "operator_end", Detail: detail})}, nil
	})
	if err == nil {
		s.log.Info("incident "+op, "reason", req.Reason, "responders", req.Responders, "zone", req.Zone, "by", actor.String(), "version", doc.Version)
	}
	s.answerCommit(w, r, doc, err, api.LiveChangeResponse{})
}

func incidentSubject(zone string) string {
	if zone == "" {
		return "trust-domain"
	}
	return "zone:" + zone
}

// handleZoneSet: PUT /v1/admin/zones/{name}.
func (s *Server) handleZoneSet(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.ZoneRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	err := checkText(req.Reason, req.Operator)
	if err == nil && !nameRE.MatchString(name) {
		err = errors.New("zone must match [a-z0-9][a-z0-9-]{0,62}")
	}
	state := truststate.NormalZoneState(req.State)
	if err == nil && (req.State == "" || !slices.Contains(truststate.ZoneStates, state)) {
		err = fmt.Errorf("state must be one of %s", strings.Join(truststate.ZoneStates, ", "))
	}
	var staleness time.Duration
	if err == nil && req.MaxStaleness != "" {
		staleness, err = time.ParseDuration(req.MaxStaleness)
		if err != nil || staleness < 0 || staleness > 24*time.Hour {
			err = errors.New("max_staleness must be a duration between 0 (none) and 24h, e.g. 2m")
		}
	}
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
		return
	}
	actor := actorOf(r, req.Operator)
	now := s.now().UTC().Truncate(time.Millisecond)
	doc, err := s.commitTrust(r.Context(), func(d *truststate.Document) ([]audit.Event, error) {
		prev, had := d.Zones[name]
		z := truststate.Zone{State: state, MaxStaleness: prev.MaxStaleness, Reason: req.Reason, Since: now, Actor: actor}
		switch {
		case req.MaxStaleness == "":
		case staleness == 0:
			z.MaxStaleness = ""
		default:
			z.MaxStaleness = staleness.String()
		}
		if state == truststate.ZoneNormal && z.MaxStaleness == "" {
			delete(d.Zones, name) // a normal zone with no bound is the default: keep the document small
			if len(d.Zones) == 0 {
				d.Zones = nil
			}
		} else {
			d.Zones = setKey(d.Zones, name, z)
		}
		detail := map[string]string{"state": state, "max_staleness": z.MaxStaleness, "text": req.Reason,
			"previous_state": truststate.NormalZoneState(prev.State)}
		if had {
			detail["previous_max_staleness"] = prev.MaxStaleness
		}
		return []audit.Event{operatorEvent(r, actor, audit.Event{Kind: audit.KindZone, Subject: "zone:" + name,
			Outcome: state, Reason: "operator_set", Detail: detail})}, nil
	})
	if err == nil {
		s.log.Info("zone set", "zone", name, "state", state, "max_staleness", req.MaxStaleness, "reason", req.Reason, "by", actor.String(), "version", doc.Version)
	}
	s.answerCommit(w, r, doc, err, api.LiveChangeResponse{})
}

// handleStatus: GET /v1/admin/status.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	_, d := s.trust.Current()
	now := s.now()
	st := api.Status{
		TrustStateVersion: d.Version, IssuedAt: d.IssuedAt, PolicyRevision: d.PolicyRevision,
		KillSwitches: activeSwitches(d.KillSwitches, now), Incident: d.Incident, Responders: d.Responders,
		Zones: d.Zones, Agents: d.Agents, RevokedIDs: len(d.RevokedIDs), RevokedSerials: len(d.RevokedSerials),
		Challenges: d.Challenges,
	}
	if st.KillSwitches == nil {
		st.KillSwitches = []truststate.KillSwitch{}
	}
	if d.IncidentMode && st.Incident == nil {
		st.Incident = &truststate.Incident{Reason: "(set before incidents were recorded)"}
	}
	writeJSON(w, http.StatusOK, st)
}
