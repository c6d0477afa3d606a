package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/inventory"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/truststate"
)

// Event-driven re-attestation fed by what the control plane sees (docs/attestation.md,
// "Triggers"): the first higher-class action of an agent (from the decisions gates ship),
// a change of the dependencies the catalog declares for an agent (Config.Catalog,
// re-read when it changes), a change of an agent's reference values (warden entry refs)
// and a policy push that changes what an agent may do. Each fired rule pushes a
// challenge; repeated anomalies of one agent may quarantine it (Config.AnomalyQuarantine).

// Trigger rules of the control plane beyond attest's.
const (
	TriggerRefsChanged   = "reference_values_changed"
	TriggerPolicyChanged = "policy_changed"
)

// dependencyDigests maps every catalog agent's SPIFFE ID to a digest of the dependencies
// the catalog declares it uses (name, kind, access).
func dependencyDigests(c *inventory.Catalog) map[string]string {
	uses := map[string][]string{}
	for _, d := range c.Dependencies {
		for _, u := range d.UsedBy {
			uses[u.Agent] = append(uses[u.Agent], d.Name+"\x00"+d.Kind+"\x00"+u.Access)
		}
	}
	out := map[string]string{}
	for i := range c.Agents {
		a := &c.Agents[i]
		l := uses[a.Name]
		sort.Strings(l)
		sum := sha256.Sum256([]byte(strings.Join(l, "\n")))
		out[a.Identity] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// watchCatalog reads Config.Catalog at start and whenever it changes (polled every
// interval) and feeds each agent's dependency digest to the dependency_change rule: the
// first read sets the baseline, a later change challenges the agents it concerns.
func (s *Server) watchCatalog(ctx context.Context, interval time.Duration) {
	var stamp string
	for {
		if st, err := os.Stat(s.cfg.Catalog); err == nil {
			now := fmt.Sprint(st.Size(), st.ModTime().UnixNano())
			if now != stamp {
				stamp = now
				if c, err := inventory.Load(s.cfg.Catalog); err != nil {
					s.log.Warn("catalog not read; dependency triggers keep the last one", "path", s.cfg.Catalog, "err", err)
				} else {
					for id, digest := range dependencyDigests(c) {
						o := attest.Observation{Time: s.now(), DependencyDigest: digest}
						if rule, err := s.Observe(ctx, id, o); rule != "" || err != nil {
							s.log.Info("attestation trigger", "spiffe_id", id, "rule", rule, "err", err)
						}
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// maxPolicyDiffAgents bounds the agents a policy push is diffed for (agents × actions ×
// resource types decisions).
const maxPolicyDiffAgents = 5000

// challengePolicyChange challenges every registered agent whose possible actions differ
// between the bundle of revision prev and e (the one just pushed): what it may do changed,
// so its runtime state is checked again before it acts under the new rules.
func (s *Server) challengePolicyChange(ctx context.Context, prev string, e *policy.Engine) {
	if s.att == nil || prev == "" || s.fleet == nil {
		return
	}
	b, err := s.fleet.GetBundle(ctx, prev)
	if err != nil {
		s.log.Info("policy change: previous bundle not found; no trigger", "revision", prev, "err", err)
		return
	}
	old, err := verifyBundle(b.Signed, s.cfg.PolicyKeys)
	if err != nil {
		s.log.Info("policy change: previous bundle does not verify; no trigger", "revision", prev, "err", err)
		return
	}
	_, doc := s.trust.Current()
	if len(doc.Directory) > maxPolicyDiffAgents {
		s.log.Warn("policy change: too many agents to diff; no per-agent trigger", "agents", len(doc.Directory))
		return
	}
	now := s.now()
	var changed []string
	for id, d := range doc.Directory {
		if strings.Contains(id, "/gate/") {
			continue
		}
		a := policy.Agent{SPIFFEID: id, Name: d.Name, Role: d.Role, Class: d.Class, Zone: d.Zone, TrustDomain: s.td.Name()}
		if !slices.Equal(mayDo(old, a, now), mayDo(e, a, now)) {
			changed = append(changed, id)
		}
	}
	if err := s.challengeMany(ctx, changed, TriggerPolicyChanged); err != nil {
		s.log.Error("policy change: challenges not pushed", "agents", len(changed), "err", err)
	}
}

// challengeMany pushes one challenge per agent of ids in a single trust-state version.
func (s *Server) challengeMany(ctx context.Context, ids []string, rule string) error {
	if len(ids) == 0 || s.att == nil {
		return nil
	}
	sort.Strings(ids)
	now := s.now().UTC()
	c := truststate.Challenge{Rule: rule, At: now, Deadline: now.Add(s.att.cfg.ChallengeTimeout)}
	doc, err := s.commitTrust(ctx, func(d *truststate.Document) ([]audit.Event, error) {
		evs := make([]audit.Event, 0, len(ids))
		for _, id := range ids {
			d.Challenges = setKey(d.Challenges, id, c)
			evs = append(evs, byServer(audit.Event{Kind: audit.KindAttestation, Subject: id, Outcome: "challenged", Reason: "challenge_pushed",
				Detail: map[string]string{"rule": rule, "deadline": c.Deadline.Format(time.RFC3339)}}))
		}
		return evs, nil
	})
	if err != nil {
		return err
	}
	s.log.Info("attestation challenges pushed", "rule", rule, "agents", len(ids), "version", doc.Version)
	return nil
}

// mayDo lists "action resourceType" pairs e lets a do under the most favourable context.
func mayDo(e *policy.Engine, a policy.Agent, now time.Time) []string {
	var out []string
	for _, act := range e.Actions() {
		for _, rt := range act.ResourceTypes {
			if e.MayPerform(a, act.Name, rt, now).Allow {
				out = append(out, act.Name+" "+rt)
			}
		}
	}
	return out
}

// anomalyCount remembers recent anomalies per agent for AnomalyQuarantine.
type anomalyCount struct{ times []time.Time }

// maybeQuarantine quarantines subject when it raised AnomalyQuarantine anomalies within
// AnomalyWindow (a suspended or already quarantined agent is left as it is). It reports
// whether it did.
func (s *Server) maybeQuarantine(ctx context.Context, ev audit.Event) bool {
	n := s.cfg.AnomalyQuarantine
	if n <= 0 {
		return false
	}
	win := s.cfg.AnomalyWindow
	if win <= 0 {
		win = 10 * time.Minute
	}
	now := s.now()
	s.anomMu.Lock()
	c := s.anomalies[ev.Subject]
	if c == nil {
		c = &anomalyCount{}
		s.anomalies[ev.Subject] = c
	}
	c.times = slices.DeleteFunc(append(c.times, now), func(t time.Time) bool { return now.Sub(t) > win })
	hit := len(c.times) >= n
	if hit {
		c.times = nil
	}
	s.anomMu.Unlock()
	if !hit {
		return false
	}
	since := now.UTC().Truncate(time.Millisecond)
	why := fmt.Sprintf("%d anomalies within %s, the last %s", n, win, ev.Reason)
	_, err := s.commitTrust(ctx, func(d *truststate.Document) ([]audit.Event, error) {
		if st := d.Status(ev.Subject); st != "active" {
			return nil, errNoChange // never weaken (or repeat) a status already set
		}
		d.Agents = setKey(d.Agents, ev.Subject, truststate.AgentState{Status: truststate.StatusQuarantined, Reason: why, Since: since})
		return []audit.Event{{Kind: audit.KindQuarantine, Subject: ev.Subject, Actor: "detector", Outcome: "engaged",
			Reason: "anomaly_threshold", Detail: map[string]string{"text": why, "anomaly_id": ev.ID}}}, nil
	})
	if err != nil {
		if err != errNoChange {
			s.log.Error("anomaly quarantine failed", "spiffe_id", ev.Subject, "err", err)
		}
		return false
	}
	s.log.Warn("agent quarantined after repeated anomalies", "spiffe_id", ev.Subject, "why", why)
	return true
}
