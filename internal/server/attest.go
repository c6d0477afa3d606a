package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/enroll"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/truststate"
)

// AttestConfig turns on runtime attestation (docs/attestation.md): the challenge endpoint,
// appraisal of the evidence of every enroll and renew, results and fail-closed actions in
// the trust state, and event-driven challenges. Zero values take the defaults.
type AttestConfig struct {
	Verifier *attest.Verifier // default attest.NewVerifier(attest.Config{})
	// Nonces and Activations keep issued challenges until they are answered. Default:
	// attest_* tables in the server's own database (SQLite or PostgreSQL backend), so a
	// challenge from one replica is answered at another and survives a restart; with
	// another backend, in memory (attest.NewMemoryNonces(60s, 16), one replica only).
	Nonces      attest.NonceStore
	Activations attest.ActivationStore
	Policy      *attest.Policy // default attest.DefaultPolicy()
	// Require lists the classes that must present affirming evidence at enrollment.
	// nil means the default: transactional and regulated. An agent enrolled with evidence
	// must present fresh evidence at every renewal, whatever its class.
	Require map[string]bool
	// ChallengeTimeout is how long an agent has to answer an event-driven challenge
	// before its silence counts as stale_evidence; default 30s.
	ChallengeTimeout time.Duration
	// Triggers configures Observe (event-driven re-attestation); default
	// attest.DefaultTriggerConfig().
	Triggers *attest.TriggerConfig
	// MaxPending bounds the credential-activation challenges held in memory (when they
	// are); default 10000.
	MaxPending int
}

// DefaultRequire is the default AttestConfig.Require.
func DefaultRequire() map[string]bool {
	return map[string]bool{attest.ClassTransactional: true, attest.ClassRegulated: true}
}

// attestor is the server's verifier state.
type attestor struct {
	cfg      AttestConfig
	verifier *attest.Verifier
	nonces   attest.NonceStore
	acts     attest.ActivationStore
	policy   attest.Policy
	require  map[string]bool
	triggers attest.TriggerConfig

	mu       sync.Mutex
	triggerS map[string]attest.TriggerState
}

func newAttestor(cfg AttestConfig) *attestor {
	a := &attestor{cfg: cfg, verifier: cfg.Verifier, nonces: cfg.Nonces, acts: cfg.Activations, require: cfg.Require,
		triggerS: map[string]attest.TriggerState{}}
	if a.verifier == nil {
		a.verifier = attest.NewVerifier(attest.Config{})
	}
	if a.cfg.MaxPending <= 0 {
		a.cfg.MaxPending = 10000
	}
	if a.nonces == nil {
		a.nonces = attest.NewMemoryNonces(60*time.Second, 16)
	}
	if a.acts == nil {
		a.acts = attest.NewMemoryActivations(a.cfg.MaxPending)
	}
	a.policy = attest.DefaultPolicy()
	if cfg.Policy != nil {
		a.policy = *cfg.Policy
	}
	if a.require == nil {
		a.require = DefaultRequire()
	}
	a.triggers = attest.DefaultTriggerConfig()
	if cfg.Triggers != nil {
		a.triggers = *cfg.Triggers
	}
	if a.cfg.ChallengeTimeout <= 0 {
		a.cfg.ChallengeTimeout = 30 * time.Second
	}
	return a
}

// enrolledKeys are the TPM keys bound to an entry by its first affirming attestation,
// kept in the entry's Attrs under "attestation_keys" (beside the reference values).
type enrolledKeys struct {
	AKPublic []byte `json:"ak_public"`
	EKPublic []byte `json:"ek_public"`
}

const keysAttr = "attestation_keys"

func keysFromAttrs(attrs []byte) (enrolledKeys, bool) {
	var m map[string]json.RawMessage
	if len(bytes.TrimSpace(attrs)) == 0 || json.Unmarshal(attrs, &m) != nil {
		return enrolledKeys{}, false
	}
	var k enrolledKeys
	if raw, ok := m[keysAttr]; !ok || json.Unmarshal(raw, &k) != nil || len(k.AKPublic) == 0 {
		return enrolledKeys{}, false
	}
	return k, true
}

func attrsWithKeys(attrs []byte, k enrolledKeys) ([]byte, error) {
	m := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(attrs)) > 0 {
		if err := json.Unmarshal(attrs, &m); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(k)
	if err != nil {
		return nil, err
	}
	m[keysAttr] = b
	return json.Marshal(m)
}

// enrollSubject is the nonce subject of an enrolling agent: its join token's hash.
func enrollSubject(tok enroll.Token) string { return "token:" + hex.EncodeToString(tok.Hash()) }

// handleAttestChallenge issues a nonce and, given EK and AK, a credential challenge. An
// enrolling agent authenticates with its join token (checked against the pin, not
// consumed: the enroll call consumes it), a renewing agent with its SVID over mTLS.
func (s *Server) handleAttestChallenge(w http.ResponseWriter, r *http.Request) {
	a := s.att
	if a == nil {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "attestation is not configured on this control plane")
		return
	}
	var req api.AttestChallengeRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	var subject string
	bound := false // the agent's TPM keys are already bound to its entry: no activation
	if id, ok := peerID(r); ok && req.Token == "" {
		if !s.peerCurrent(w, r) {
			return
		}
		_, doc := s.trust.Current()
		if rev, revoked := doc.IsRevoked(id.String(), serialOf(r)); revoked {
			s.fail(w, r, http.StatusForbidden, api.ReasonIdentityRevoked, id.String()+" is revoked: "+rev.Reason)
			return
		}
		subject = id.String()
		entry, err := s.cfg.Store.GetEntryBySPIFFEID(r.Context(), subject)
		if errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, http.StatusForbidden, api.ReasonUnknownIdentity, subject+" has no registration entry")
			return
		} else if err != nil {
			s.internal(w, r, err)
			return
		}
		_, bound = keysFromAttrs(entry.Attrs)
	} else {
		tok, err := enroll.ParseToken(req.Token)
		if err != nil {
			s.fail(w, r, http.StatusUnauthorized, api.ReasonTokenInvalid, "a join token (or a client X509-SVID) is required")
			return
		}
		pin := s.ca.RootPin()
		if subtle.ConstantTimeCompare(tok.Pin[:], pin[:]) != 1 {
			s.fail(w, r, http.StatusUnauthorized, api.ReasonTokenInvalid, "join token is for another trust domain")
			return
		}
		subject = enrollSubject(tok)
	}
	now := s.now()
	var resp api.AttestChallengeResponse
	var pend *attest.PendingActivation
	if !bound && (len(req.EKPublic) > 0 || len(req.AKPublic) > 0) {
		ch, p, err := a.verifier.MakeCredential(req.EKPublic, req.AKPublic)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
			return
		}
		resp.CredBlob, resp.EncSecret, pend = ch.CredBlob, ch.EncSecret, &p
	}
	ch, ok := s.issueNonce(w, r, subject, now)
	if !ok {
		return
	}
	if pend != nil {
		err := a.acts.PutActivation(r.Context(), ch.Nonce, *pend, ch.ExpiresAt)
		if errors.Is(err, attest.ErrTooManyChallenges) {
			s.fail(w, r, http.StatusTooManyRequests, api.ReasonBusy, "too many outstanding challenges")
			return
		} else if err != nil {
			s.internal(w, r, err)
			return
		}
	}
	resp.Nonce, resp.ExpiresAt = ch.Nonce, ch.ExpiresAt
	writeJSON(w, http.StatusOK, resp)
}

// issueNonce issues a challenge nonce to subject (busy when it has too many outstanding).
// On a refusal it has answered.
func (s *Server) issueNonce(w http.ResponseWriter, r *http.Request, subject string, now time.Time) (attest.Challenge, bool) {
	ch, err := s.att.nonces.Issue(r.Context(), subject, now)
	if errors.Is(err, attest.ErrTooManyChallenges) {
		s.fail(w, r, http.StatusTooManyRequests, api.ReasonBusy, "too many outstanding challenges for this agent")
		return ch, false
	} else if err != nil {
		s.internal(w, r, err)
		return ch, false
	}
	return ch, true
}

// appraise checks the evidence slot of an enroll or renew. It returns the result and
// whether attestation took place at all (false: no evidence, and none required).
func (s *Server) appraise(ctx context.Context, entry store.Entry, subject string, slot json.RawMessage) (attest.Result, bool) {
	a, now := s.att, s.now()
	keys, hasKeys := keysFromAttrs(entry.Attrs)
	if len(bytes.TrimSpace(slot)) == 0 || string(bytes.TrimSpace(slot)) == "null" {
		if a.require[entry.Class] || hasKeys {
			why := "class " + entry.Class + " requires attestation evidence"
			if hasKeys {
				why = "the agent enrolled with a TPM: every renewal carries fresh evidence"
			}
			return attest.Refused(attest.ReasonEvidenceRequired, nil, now, why), true
		}
		return attest.Result{Tier: attest.TierNone, Time: now}, false
	}
	ae, ev, err := parseSlot(slot)
	if err != nil {
		return attest.Refused(attest.ReasonMalformed, slot, now, err.Error()), true
	}
	ch, err := a.nonces.Consume(ctx, subject, ev.Nonce, now)
	if err != nil {
		return attest.Refused(attest.ReasonForNonceError(err), ae.Evidence, now, err.Error()), true
	}
	refs, _ := attest.RefsFromAttrs(entry.Attrs) // none or invalid: no_reference_values
	req := attest.Request{Evidence: ae.Evidence, Refs: refs, Nonce: ch.Nonce, IssuedAt: ch.IssuedAt, Now: now}
	pend, havePend, err := a.acts.TakeActivation(ctx, ch.Nonce, now)
	if err != nil {
		return attest.Refused(attest.ReasonVerifierError, ae.Evidence, now, "credential activation state unavailable: "+err.Error()), true
	}
	if hasKeys {
		req.EnrolledAK, req.EnrolledEK = keys.AKPublic, keys.EKPublic
	} else if havePend {
		req.Activation = &attest.Activation{Pending: pend, Response: ae.Activation}
	}
	return a.verifier.Appraise(req), true
}

// parseSlot strictly parses the evidence slot of an enroll or renew request (untrusted):
// one {evidence, activation} object, no unknown fields, no trailing data, and evidence
// that attest.ParseEvidence accepts.
func parseSlot(slot []byte) (api.AttestationEvidence, *attest.Evidence, error) {
	var ae api.AttestationEvidence
	dec := json.NewDecoder(bytes.NewReader(slot))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ae); err != nil || len(ae.Evidence) == 0 || dec.More() {
		return ae, nil, errors.New("evidence slot is not one {evidence, activation} object")
	}
	if len(ae.Activation) > 64 {
		return ae, nil, errors.New("activation secret longer than 64 bytes")
	}
	ev, err := attest.ParseEvidence(ae.Evidence)
	if err != nil {
		return ae, nil, err
	}
	return ae, ev, nil
}

// recordResult writes the result into the trust state and, when it is not affirming,
// the class's fail-closed action (applyAction false: an enrollment, refused instead).
// It returns the decision.
func (s *Server) recordResult(ctx context.Context, entry store.Entry, res attest.Result, applyAction bool) (attest.Decision, error) {
	return s.recordResultIf(ctx, entry, res, applyAction, nil)
}

// recordResultIf is recordResult that writes nothing when cond (if given) is false for
// the newest trust state.
func (s *Server) recordResultIf(ctx context.Context, entry store.Entry, res attest.Result, applyAction bool, cond func(*truststate.Document) bool) (attest.Decision, error) {
	now := s.now()
	d := s.att.policy.Decide(res, entry.Class, entry.Role, now)
	if res.Tier == attest.TierNone && res.Reason == attest.ReasonNone {
		d = attest.Decision{Action: attest.ActionAllow, Rule: "not-required"} // enrolled without evidence: tier none
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	rec := truststate.Attestation{Tier: res.Tier.String(), Reason: string(res.Reason), EvidenceDigest: res.EvidenceDigest,
		At: res.Time.UTC(), ResultID: hex.EncodeToString(idb[:]), Action: string(d.Action)}
	if d.Action != attest.ActionAllow && !applyAction {
		rec.Action = "refuse"
	}
	reason := rec.Reason
	if reason == "" {
		reason = "attestation_" + rec.Tier
	}
	ev := audit.Event{Kind: audit.KindAttestation, ID: "attestation-" + rec.ResultID, Subject: entry.SPIFFEID,
		Outcome: rec.Tier, Reason: reason, Detail: map[string]string{"action": rec.Action, "rule": d.Rule,
			"evidence_digest": rec.EvidenceDigest, "result_id": rec.ResultID,
			"hardware": strconv.Itoa(int(res.TrustVector.Hardware))}} // AR4SI: 2 genuine_hw, 97 unrecognized_hw
	errSkip := errors.New("skip")
	_, err := s.commitTrust(ctx, func(doc *truststate.Document) ([]audit.Event, error) {
		if cond != nil && !cond(doc) {
			return nil, errSkip
		}
		// A weaker negative result never replaces a stronger one: stale_evidence (tier
		// none) after a tampered binary (contraindicated) would otherwise wipe the
		// reason the agent is held. The result is still audited; the record keeps the
		// stronger one until an affirming result replaces it.
		if prev, ok := doc.Attestations[entry.SPIFFEID]; ok && weakerNegative(rec.Tier, prev.Tier) {
			ev.Detail["kept_result_id"] = prev.ResultID
			ev.Detail["kept_tier"] = prev.Tier
		} else {
			doc.Attestations = setKey(doc.Attestations, entry.SPIFFEID, rec)
		}
		delete(doc.Challenges, entry.SPIFFEID)
		// An affirming quote lifts a review hold (an operator's restore is the other way).
		if res.Tier == attest.TierAffirming && d.Action == attest.ActionAllow && doc.Status(entry.SPIFFEID) == truststate.StatusReview {
			delete(doc.Agents, entry.SPIFFEID)
			ev.Detail["released"] = truststate.StatusReview
		}
		if d.Action == attest.ActionAllow || !applyAction {
			return []audit.Event{ev}, nil
		}
		status := map[attest.Action]string{attest.ActionQuarantine: truststate.StatusQuarantined,
			attest.ActionReview: truststate.StatusReview}[d.Action]
		if status == "" {
			status = truststate.StatusSuspended
		}
		if statusRank(doc.Status(entry.SPIFFEID)) < statusRank(status) { // never weaken a stricter status
			doc.Agents = setKey(doc.Agents, entry.SPIFFEID, truststate.AgentState{Status: status,
				Reason: "attestation " + string(d.Reason) + " (" + d.Rule + ", result " + rec.ResultID + ")", Since: now.UTC()})
		}
		return []audit.Event{ev}, nil
	})
	if errors.Is(err, errSkip) {
		return d, nil
	}
	s.log.Info("attestation result", "spiffe_id", entry.SPIFFEID, "tier", rec.Tier, "reason", rec.Reason,
		"action", rec.Action, "rule", d.Rule, "result_id", rec.ResultID, "evidence_digest", rec.EvidenceDigest, "detail", res.Detail)
	return d, err
}

// negativeRank orders the tiers that are not affirming by how much they say against an
// agent: contraindicated > warning > none. Affirming ranks 0.
func negativeRank(tier string) int {
	switch tier {
	case attest.TierNone.String():
		return 1
	case attest.TierWarning.String():
		return 2
	case attest.TierContraindicated.String():
		return 3
	}
	return 0
}

// weakerNegative reports whether a new result of tier next says less against the agent
// than the recorded one of tier prev, both negative: it must not replace it.
func weakerNegative(next, prev string) bool {
	n := negativeRank(next)
	return n > 0 && n < negativeRank(prev)
}

func statusRank(s string) int {
	switch s {
	case truststate.StatusQuarantined:
		return 1
	case truststate.StatusReview:
		return 2
	case truststate.StatusSuspended:
		return 3
	}
	return 0
}

// attestIssue runs attestation for an enroll (renewal false) or renew before an SVID is
// issued. It answers the refusal itself and returns false when no SVID may be issued.
func (s *Server) attestIssue(w http.ResponseWriter, r *http.Request, entry store.Entry, subject string, slot json.RawMessage, renewal bool) bool {
	res, attested := s.appraise(r.Context(), entry, subject, slot)
	if !attested {
		if !renewal { // tier none at enrollment, recorded so gates see it
			if _, err := s.recordResult(r.Context(), entry, res, false); err != nil {
				s.internal(w, r, err)
				return false
			}
		}
		return true
	}
	d, err := s.recordResult(r.Context(), entry, res, renewal)
	if err != nil {
		s.internal(w, r, err)
		return false
	}
	if d.Action != attest.ActionAllow {
		msg := string(res.Reason) + ": " + res.Detail
		if renewal {
			msg += fmt.Sprintf(" (trust state: %s, %s)", d.Action, d.Rule)
		}
		if sw, ok := w.(*statusWriter); ok {
			sw.reason = api.ReasonAttestation
		}
		writeJSON(w, http.StatusForbidden, &api.Error{Code: api.ReasonAttestation, Message: msg,
			RequestID: requestID(r), Attestation: string(res.Reason)})
		return false
	}
	if _, has := keysFromAttrs(entry.Attrs); !has {
		_, ev, err := parseSlot(slot) // parsed once already: affirming evidence
		if err != nil {
			s.internal(w, r, err)
			return false
		}
		attrs, err := attrsWithKeys(entry.Attrs, enrolledKeys{AKPublic: ev.AKPublic, EKPublic: ev.EKPublic})
		if err == nil {
			bound := entry
			bound.Attrs = attrs
			detail := entryDetail(bound)
			detail["previous_attrs_sha256"] = sha256Hex(entry.Attrs)
			err = s.commit(r.Context(), func(ctx context.Context, st ...store.Event) error {
				return s.cfg.Store.UpdateEntryAttrs(ctx, entry.Name, attrs, st...)
			}, audit.Event{Kind: audit.KindEntry, Subject: entry.SPIFFEID, Outcome: "updated", Reason: "attestation_keys_bound", Detail: detail})
		}
		if err != nil {
			s.changeFailed(w, r, err)
			return false
		}
	}
	return true
}

// Challenge pushes an event-driven re-attestation challenge to the agent through the
// trust state. The agent (sdk.Source) sees it on the trust-state stream and renews with
// fresh evidence; without an affirming answer by the deadline the class's fail-closed
// action applies (reason stale_evidence). rule names the trigger ("admin", or an
// attest.TriggerRule).
func (s *Server) Challenge(ctx context.Context, spiffeID, rule string) (int64, time.Time, error) {
	return s.challenge(ctx, spiffeID, rule, byServer)
}

// challenge is Challenge with the actor of its audit event (the server, or an admin).
func (s *Server) challenge(ctx context.Context, spiffeID, rule string, actor func(audit.Event) audit.Event) (int64, time.Time, error) {
	if s.att == nil {
		return 0, time.Time{}, errors.New("server: attestation is not configured")
	}
	if _, err := s.cfg.Store.GetEntryBySPIFFEID(ctx, spiffeID); err != nil {
		return 0, time.Time{}, err
	}
	now := s.now().UTC()
	c := truststate.Challenge{Rule: rule, At: now, Deadline: now.Add(s.att.cfg.ChallengeTimeout)}
	ev := actor(audit.Event{Kind: audit.KindAttestation, Subject: spiffeID, Outcome: "challenged", Reason: "challenge_pushed",
		Detail: map[string]string{"rule": rule, "deadline": c.Deadline.Format(time.RFC3339)}})
	doc, err := s.commitTrust(ctx, func(d *truststate.Document) ([]audit.Event, error) {
		d.Challenges = setKey(d.Challenges, spiffeID, c)
		return []audit.Event{ev}, nil
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	s.log.Info("attestation challenge pushed", "spiffe_id", spiffeID, "rule", rule, "deadline", c.Deadline, "version", doc.Version)
	return doc.Version, c.Deadline, nil
}

// Observe is the trigger hook for gates: it feeds one observed call of an agent to the
// trigger rules (attest.EvaluateTrigger, per-agent state in memory) and pushes a
// challenge when one fires. It returns the rule that fired, or "".
func (s *Server) Observe(ctx context.Context, spiffeID string, o attest.Observation) (attest.TriggerRule, error) {
	if s.att == nil {
		return "", nil
	}
	a := s.att
	a.mu.Lock()
	st, rule := attest.EvaluateTrigger(a.triggers, a.triggerS[spiffeID], o)
	a.triggerS[spiffeID] = st
	a.mu.Unlock()
	if rule == "" {
		return "", nil
	}
	_, _, err := s.Challenge(ctx, spiffeID, string(rule))
	return rule, err
}

func (s *Server) handleAdminChallenge(w http.ResponseWriter, r *http.Request) {
	var req api.AdminChallengeRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	id, err := spiffeid.FromString(req.ID)
	if err != nil || id.TrustDomain() != s.td {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "id must be a SPIFFE ID of trust domain "+s.td.Name())
		return
	}
	if req.Reason == "" {
		req.Reason = "admin"
	}
	v, deadline, err := s.challenge(r.Context(), id.String(), req.Reason, func(ev audit.Event) audit.Event { return adminEvent(r, ev) })
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "no entry for "+id.String())
	case err != nil && s.att == nil:
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, err.Error())
	case err != nil:
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, api.AdminChallengeResponse{Version: v, Deadline: deadline})
	}
}

// enforceChallenges applies stale_evidence to every challenge past its deadline, until
// ctx ends.
func (s *Server) enforceChallenges(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, doc := s.trust.Current()
		now := s.now()
		for id, c := range doc.Challenges {
			if now.Before(c.Deadline) {
				continue
			}
			entry, err := s.cfg.Store.GetEntryBySPIFFEID(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				_, err = s.trust.Update(ctx, func(d *truststate.Document) error { delete(d.Challenges, id); return nil })
			} else if err == nil {
				res := attest.Refused(attest.ReasonStaleEvidence, nil, now, "challenge ("+c.Rule+") not answered by "+c.Deadline.Format(time.RFC3339))
				_, err = s.recordResultIf(ctx, entry, res, true, func(d *truststate.Document) bool {
					cur, ok := d.Challenges[id] // still pending: not answered meanwhile
					return ok && cur.At.Equal(c.At)
				})
			}
			if err != nil && ctx.Err() == nil {
				s.log.Warn("challenge enforcement failed", "spiffe_id", id, "err", err)
			}
		}
	}
}

// checkAttrs validates operator-supplied entry attributes: a JSON object whose reference
// values (key "attestation"), if present, parse; the server-managed TPM binding
// ("attestation_keys") cannot be set by hand.
func checkAttrs(attrs []byte) error {
	if len(bytes.TrimSpace(attrs)) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(attrs, &m); err != nil {
		return errors.New("attrs must be a JSON object")
	}
	for _, k := range []string{keysAttr, guardsAttr} {
		if _, ok := m[k]; ok {
			return errors.New("attrs." + k + " is managed by the control plane")
		}
	}
	if _, err := attest.RefsFromAttrs(attrs); err != nil && !errors.Is(err, attest.ErrNoReferenceValues) {
		return err
	}
	return nil
}

// handleSetEntryAttrs replaces an entry's attributes (PUT /v1/admin/entries/{name}/attrs),
// keeping the TPM binding and the guarded agent the control plane recorded.
func (s *Server) handleSetEntryAttrs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var attrs json.RawMessage
	if !s.readJSON(w, r, &attrs) {
		return
	}
	if err := checkAttrs(attrs); err != nil {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
		return
	}
	entry, err := s.cfg.Store.GetEntry(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "no entry "+name)
		return
	} else if err != nil {
		s.internal(w, r, err)
		return
	}
	next := []byte(attrs)
	if k, ok := keysFromAttrs(entry.Attrs); ok {
		if next, err = attrsWithKeys(next, k); err != nil {
			s.internal(w, r, err)
			return
		}
	}
	if g := guardsOf(entry.Attrs); g != "" {
		if next, err = attrsWithGuards(next, g); err != nil {
			s.internal(w, r, err)
			return
		}
	}
	prev := entryDetail(entry)
	updated := entry
	updated.Attrs = next
	detail := entryDetail(updated)
	for _, k := range []string{"attrs_sha256", "reference_values_sha256"} {
		if v, ok := prev[k]; ok {
			detail["previous_"+k] = v
		}
	}
	ev := adminEvent(r, audit.Event{Kind: audit.KindEntry, Subject: entry.SPIFFEID, Outcome: "updated", Reason: "operator_update_attrs", Detail: detail})
	err = s.commit(r.Context(), func(ctx context.Context, st ...store.Event) error {
		return s.cfg.Store.UpdateEntryAttrs(ctx, name, next, st...)
	}, ev)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, "no entry "+name)
		return
	} else if err != nil {
		s.changeFailed(w, r, err)
		return
	}
	entry.Attrs = next
	s.log.Info("entry attrs updated", "name", name)
	// New reference values: an agent running under the old ones proves itself against
	// the new ones now, not at its next renewal.
	if _, doc := s.trust.Current(); s.att != nil && prev["reference_values_sha256"] != detail["reference_values_sha256"] {
		if _, attested := doc.Attestations[entry.SPIFFEID]; attested {
			if _, _, err := s.Challenge(r.Context(), entry.SPIFFEID, TriggerRefsChanged); err != nil {
				s.log.Info("reference values changed: no challenge pushed", "spiffe_id", entry.SPIFFEID, "err", err)
			}
		}
	}
	writeJSON(w, http.StatusOK, s.apiEntry(entry))
}
