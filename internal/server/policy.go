package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/fleet"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/truststate"
)

// Central policy distribution (docs/policy.md, "Central distribution"): an operator pushes
// a bundle signed with the organisation's policy key; the server verifies it with the
// keys it is configured with (Config.PolicyKeys), compiles it, stores it by revision and
// names the revision in the trust state. Gates fetch the bundle by revision, verify the
// signature again with their own key, and swap it in.

var revisionRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// openFleet opens the fleet tables in the store's database (nil for other backends).
func openFleet(ctx context.Context, st any) (*fleet.Store, error) {
	switch b := st.(type) {
	case *sqlite.Store:
		return fleet.NewSQLite(ctx, b.DB())
	case *postgres.Store:
		return fleet.NewPostgres(ctx, b.DB())
	}
	return nil, nil
}

// verifyBundle checks raw with every configured policy key: the first key that verifies
// it decides; a bundle no key verifies is refused with ErrBundleSignature.
func verifyBundle(raw []byte, keys []ed25519.PublicKey) (*policy.Engine, error) {
	err := error(policy.ErrBundleSignature)
	for _, k := range keys {
		var e *policy.Engine
		e, err = policy.ReadBundle(raw, k, policy.Options{})
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, policy.ErrBundleSignature) {
			return nil, err // verified, but does not compile or its revision lies
		}
	}
	return nil, err
}

// bundleEvent is the audit record of a push, activated or refused.
func bundleEvent(r *http.Request, a truststate.Actor, outcome, reason, revision string, detail map[string]string) audit.Event {
	if detail == nil {
		detail = map[string]string{}
	}
	detail["revision"] = revision
	return operatorEvent(r, a, audit.Event{Kind: audit.KindPolicyBundle, Subject: "policy", Outcome: outcome,
		Reason: reason, Detail: detail})
}

// handlePolicyPush: POST /v1/admin/policy/bundles.
func (s *Server) handlePolicyPush(w http.ResponseWriter, r *http.Request) {
	var req api.PolicyPush
	if !s.readJSONLimit(w, r, &req, api.MaxBundleBytes+api.MaxBodyBytes) {
		return
	}
	if err := checkText(req.Reason, req.Operator); err != nil {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
		return
	}
	actor := actorOf(r, req.Operator)
	refuse := func(status int, code, msg, revision string) {
		s.emit(r.Context(), bundleEvent(r, actor, "refused", code, revision, map[string]string{"text": req.Reason, "error": msg}))
		s.fail(w, r, status, code, msg)
	}
	if s.fleet == nil {
		s.fail(w, r, http.StatusServiceUnavailable, api.ReasonInternal, "this store backend keeps no policy bundles")
		return
	}
	if len(s.cfg.PolicyKeys) == 0 {
		refuse(http.StatusConflict, api.ReasonNoPolicyKey, "the control plane has no policy public key (warden server --policy-public-key): it cannot verify bundles", "")
		return
	}
	if len(req.Bundle) == 0 || len(req.Bundle) > api.MaxBundleBytes {
		refuse(http.StatusBadRequest, api.ReasonBundleInvalid, fmt.Sprintf("bundle must be 1..%d bytes", api.MaxBundleBytes), "")
		return
	}
	claimed, keyID, created, _ := policy.BundleMeta(req.Bundle)
	e, err := verifyBundle(req.Bundle, s.cfg.PolicyKeys)
	if errors.Is(err, policy.ErrBundleSignature) {
		refuse(http.StatusBadRequest, api.ReasonBundleSignature, "no policy key of this control plane verifies the bundle's signature (key_id "+keyID+")", claimed)
		return
	}
	if err != nil {
		refuse(http.StatusBadRequest, api.ReasonBundleInvalid, err.Error(), claimed)
		return
	}
	rev := e.Revision()
	now := s.now().UTC().Truncate(time.Millisecond)
	if err := s.fleet.PutBundle(r.Context(), fleet.Bundle{Revision: rev, Signed: req.Bundle, KeyID: keyID, Created: created, Pushed: now}); err != nil {
		s.internal(w, r, err)
		return
	}
	// Stored first, activated second: a crash between leaves a stored bundle nobody
	// enforces, and a repeated push activates it.
	out := api.PolicyPushResponse{Revision: rev, KeyID: keyID}
	var prev string
	doc, err := s.commitTrust(r.Context(), func(d *truststate.Document) ([]audit.Event, error) {
		if d.PolicyRevision == rev {
			return nil, errNoChange
		}
		prev = d.PolicyRevision
		d.PolicyRevision = rev
		return []audit.Event{bundleEvent(r, actor, "activated", "operator_push", rev, map[string]string{"previous_revision": prev,
			"key_id": keyID, "created": created.UTC().Format(time.RFC3339), "text": req.Reason,
			"policies": strconv.Itoa(len(e.Policies()))})}, nil
	})
	if errors.Is(err, errNoChange) {
		_, cur := s.trust.Current()
		out.Version, out.Unchanged = cur.Version, true
		writeJSON(w, http.StatusOK, out)
		return
	}
	if err != nil {
		s.changeFailed(w, r, err)
		return
	}
	out.Version = doc.Version
	// What an agent may do changed: its runtime state is checked again (policy_changed).
	s.challengePolicyChange(context.WithoutCancel(r.Context()), prev, e)
	s.log.Info("policy bundle activated", "revision", rev, "key_id", keyID, "reason", req.Reason, "by", actor.String(), "version", doc.Version)
	writeJSON(w, http.StatusOK, out)
}

// handlePolicyBundle: GET /v1/policy/bundles/{revision}, the signed bundle as pushed.
func (s *Server) handlePolicyBundle(w http.ResponseWriter, r *http.Request) {
	rev := r.PathValue("revision")
	if !revisionRE.MatchString(rev) {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "revision must be 64 lower-case hex digits")
		return
	}
	if s.fleet == nil {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "no policy bundles on this control plane")
		return
	}
	b, err := s.fleet.GetBundle(r.Context(), rev)
	if errors.Is(err, fleet.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "no bundle with revision "+rev)
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable") // a revision names its content
	_, _ = w.Write(b.Signed)
}

// handlePolicyStatus: GET /v1/admin/policy.
func (s *Server) handlePolicyStatus(w http.ResponseWriter, r *http.Request) {
	_, d := s.trust.Current()
	out := api.PolicyStatus{Revision: d.PolicyRevision, Bundles: []api.PolicyBundleInfo{}}
	if s.fleet != nil {
		bs, err := s.fleet.ListBundles(r.Context(), 50)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		for _, b := range bs {
			out.Bundles = append(out.Bundles, api.PolicyBundleInfo{Revision: b.Revision, KeyID: b.KeyID, Created: b.Created,
				Pushed: b.Pushed, Active: b.Revision == d.PolicyRevision})
		}
	}
	writeJSON(w, http.StatusOK, out)
}
