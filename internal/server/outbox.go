package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/truststate"
)

// A state change and its audit event commit together (the transactional outbox, see
// internal/store/outbox): the handler builds the event, the store write stages it in the
// same transaction, and only then is it appended to the Merkle log and removed from the
// outbox. The API answers success only after both. A crash between the commit and the
// append leaves the event staged; the next start appends it before serving
// (drainOutbox), and a running server retries every outboxRetry.
//
//	err := s.commit(ctx, func(ctx context.Context, st ...store.Event) error { return s.cfg.Store.CreateEntry(ctx, e, st...) },
//		adminEvent(r, audit.Event{Kind: audit.KindEntry, Subject: e.SPIFFEID, Outcome: "created"}))
//
//	doc, err := s.commitTrust(ctx, func(d *truststate.Document) ([]audit.Event, error) {
//		d.IncidentMode = true
//		return []audit.Event{adminEvent(r, audit.Event{Kind: audit.KindIncidentMode, Subject: "trust-domain", Outcome: "entered", Reason: "operator_incident"})}, nil
//	})

// errAuditPending: the change and its event are committed, but the event could not be
// appended to the audit log yet (it stays in the outbox and is appended later).
var errAuditPending = errors.New("server: change committed; its audit event is queued but not yet in the audit log")

// outboxRetry is how often a running server appends events left in the outbox by a
// failed append.
const outboxRetry = 2 * time.Second

// adminEvent returns ev as an admin action of the request's caller: actor is the SPIFFE
// ID of the client certificate (the admin credential), detail.credential_serial its
// serial and detail.request_id the request (the X-Request-Id answered).
func adminEvent(r *http.Request, ev audit.Event) audit.Event {
	ev.Actor = peerString(r)
	if ev.Actor == "" {
		ev.Actor = "unauthenticated"
	}
	d := make(map[string]string, len(ev.Detail)+2)
	for k, v := range ev.Detail {
		d[k] = v
	}
	if serial := serialOf(r); serial != "" {
		d["credential_serial"] = serial
	}
	d["request_id"] = requestID(r)
	ev.Detail = d
	return ev
}

// complete fills what every event carries: an id, the time, the schema version, an actor.
func (s *Server) complete(ev *audit.Event) {
	if ev.ID == "" {
		ev.ID = newEventID(string(ev.Kind))
	}
	if ev.Time.IsZero() {
		ev.Time = s.now().UTC()
	}
	ev.V = audit.SchemaVersion
	if ev.Actor == "" {
		ev.Actor = "server"
	}
}

// staged returns evs in their outbox form (canonical bytes), or none when this server
// keeps no audit log.
func (s *Server) staged(evs ...audit.Event) ([]store.Event, error) {
	if s.cfg.Audit == nil {
		return nil, nil
	}
	out := make([]store.Event, len(evs))
	for i := range evs {
		s.complete(&evs[i])
		data, err := evs[i].Canonical()
		if err != nil {
			return nil, err
		}
		out[i] = store.Event{ID: evs[i].ID, Data: data}
	}
	return out, nil
}

// publish appends staged events to the audit log and then removes them from the outbox.
// An error wraps errAuditPending: the events stay staged.
func (s *Server) publish(ctx context.Context, st []store.Event) error {
	if err := s.appendStaged(ctx, st); err != nil {
		return err
	}
	if err := s.deleteStaged(ctx, st); err != nil {
		// Appended already; a later drain appends them again, which is a no-op.
		s.log.Warn("outbox: delete after append failed", "err", err)
	}
	return nil
}

func (s *Server) appendStaged(ctx context.Context, st []store.Event) error {
	if len(st) == 0 || s.cfg.Audit == nil {
		return nil
	}
	// The change is committed: finish even if the caller has gone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	raw := make([][]byte, len(st))
	for i, e := range st {
		raw[i] = e.Data
	}
	if err := (audit.LogSink{Log: s.cfg.Audit}).Ship(ctx, raw); err != nil {
		return fmt.Errorf("%w: %v", errAuditPending, err)
	}
	return nil
}

func (s *Server) deleteStaged(ctx context.Context, st []store.Event) error {
	if len(st) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	ids := make([]string, len(st))
	for i, e := range st {
		ids[i] = e.ID
	}
	return s.cfg.Store.DeleteEvents(ctx, ids)
}

// changeTimeout bounds one audited change: its write and the append of its events. Both
// run on a context the caller's cancellation does not reach: a client that hangs up
// must not leave a committed change whose outcome the server never learnt.
const changeTimeout = 30 * time.Second

// commit runs write with evs staged in its transaction and returns once they are in the
// audit log. write gets the context to use and the staged events to pass to the store
// method it calls.
func (s *Server) commit(ctx context.Context, write func(ctx context.Context, staged ...store.Event) error, evs ...audit.Event) error {
	st, err := s.staged(evs...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), changeTimeout)
	defer cancel()
	if err := write(ctx, st...); err != nil {
		return err
	}
	return s.publish(ctx, st)
}

// commitTrust writes the next trust-state version made by apply together with the events
// apply returns (each gets detail.trust_state_version), and returns once they are in the
// audit log. apply may run more than once (another replica won the race) and must not
// have other side effects.
func (s *Server) commitTrust(ctx context.Context, apply func(d *truststate.Document) ([]audit.Event, error)) (*truststate.Document, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), changeTimeout)
	defer cancel()
	var st []store.Event
	doc, err := s.trust.UpdateAudited(ctx, func(d *truststate.Document) ([]store.Event, error) {
		evs, err := apply(d)
		if err != nil {
			return nil, err
		}
		for i := range evs {
			detail := make(map[string]string, len(evs[i].Detail)+1)
			for k, v := range evs[i].Detail {
				detail[k] = v
			}
			detail["trust_state_version"] = strconv.FormatInt(d.Version, 10)
			evs[i].Detail = detail
		}
		st, err = s.staged(evs...)
		return st, err
	})
	if err != nil {
		return nil, err
	}
	return doc, s.publish(ctx, st)
}

// drainOutbox appends every staged event to the audit log (those a crash or a failed
// append left behind) and removes them from the outbox.
func (s *Server) drainOutbox(ctx context.Context) error {
	if s.cfg.Audit == nil {
		return nil
	}
	total := 0
	for {
		st, err := s.cfg.Store.PendingEvents(ctx, 256)
		if err != nil {
			return err
		}
		if len(st) == 0 {
			if total > 0 {
				s.log.Info("outbox: staged audit events appended", "count", total)
			}
			return nil
		}
		if err := s.appendStaged(ctx, st); err != nil {
			return err
		}
		if err := s.deleteStaged(ctx, st); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		total += len(st)
	}
}

// retryOutbox drains the outbox every outboxRetry until ctx ends.
func (s *Server) retryOutbox(ctx context.Context) {
	t := time.NewTicker(outboxRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.drainOutbox(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("outbox: append of staged audit events failed", "err", err)
			}
		}
	}
}

// changeFailed answers a failed audited change: 503 audit_unavailable when the change
// is committed but its event is not yet in the log, else as an internal error.
func (s *Server) changeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errAuditPending) {
		s.log.Error("audit append failed; event queued in the outbox", "request_id", requestID(r), "err", err)
		s.fail(w, r, http.StatusServiceUnavailable, api.ReasonAuditUnavailable,
			"the change is committed but its audit event is not yet in the audit log; it is queued and will be appended (request "+requestID(r)+")")
		return
	}
	s.internal(w, r, err)
}
