package policy

import (
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go"
	cedarast "github.com/cedar-policy/cedar-go/ast"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
)

// Engine is a loaded, checked policy bundle. It is immutable except for its
// rate-limit buckets and safe for concurrent use. Build one with Load or LoadFS.
type Engine struct {
	ps            *cedar.PolicySet
	meta          map[cedar.PolicyID]*policyMeta
	actions       types.EntityMap // action entities with their groups
	actionInfo    map[string]ActionInfo
	resourceTypes []string
	schema        *resolved.Schema
	exceptions    []Exception
	limits        *limiter
	revision      string
	src           source
	schemaCanon   string

	// byAction holds, per action name, only the policies whose scope can match it;
	// evaluating those is the same decision as evaluating all (a policy whose
	// action scope excludes the action is false for it) and much faster.
	byAction map[string]policySlice
	all      policySlice

	// Memoized Cedar values (see cache.go).
	principals   *keyedEntityCache[Agent]
	resources    *keyedEntityCache[resourceKey]
	attestations *boundedCache[Attestation, types.Record]
	trusts       *boundedCache[trustKey, types.Record]
}

// policySlice is a cedar.PolicyIterator over a fixed list.
type policySlice []policyEntry

type policyEntry struct {
	id cedar.PolicyID
	p  *cedar.Policy
}

func (s policySlice) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, e := range s {
			if !yield(e.id, e.p) {
				return
			}
		}
	}
}

// without returns the slice minus the given ids.
func (s policySlice) without(skip map[string]bool) policySlice {
	out := make(policySlice, 0, len(s))
	for _, e := range s {
		if !skip[string(e.id)] {
			out = append(out, e)
		}
	}
	return out
}

// index builds byAction from each policy's action scope.
func (e *Engine) index() {
	for _, m := range e.meta {
		m.ids = []string{m.ID}
		m.annMap = map[string]map[string]string{m.ID: m.Annotations}
		if m.Remedy != "" {
			m.obligations = []string{m.Remedy}
		}
		m.allowSentence = "Allowed by " + e.sentence(m.ids)
		m.denySentence = "Denied by " + e.sentence(m.ids)
	}
	e.principals = newKeyedEntityCache[Agent](4096)
	e.resources = newKeyedEntityCache[resourceKey](16384)
	e.attestations = newBoundedCache[Attestation, types.Record](4096)
	e.trusts = newBoundedCache[trustKey, types.Record](1024)
	ids := slices.Sorted(maps.Keys(e.meta))
	for _, id := range ids {
		e.all = append(e.all, policyEntry{id, e.ps.Get(id)})
	}
	e.byAction = map[string]policySlice{}
	for name := range e.actionInfo {
		uid := types.NewEntityUID("Action", types.String(name))
		for _, pe := range e.all {
			if e.scopeMayMatch((*ast.Policy)(pe.p.AST()).Action, uid) {
				e.byAction[name] = append(e.byAction[name], policyEntry{pe.id, e.withoutActionScope(pe.p)})
			}
		}
	}
}

// withoutActionScope returns p with its action scope widened to "action", for use
// only in the per-action list of an action the scope was shown to match
// (scopeMayMatch is exact for the static action hierarchy): the decision is the
// same and the evaluator skips the set membership test on every call.
func (e *Engine) withoutActionScope(p *cedar.Policy) *cedar.Policy {
	a := *(*ast.Policy)(p.AST())
	if _, all := a.Action.(ast.ScopeTypeAll); all {
		return p
	}
	a.Action = ast.ScopeTypeAll{}
	return cedar.NewPolicyFromAST((*cedarast.Policy)(&a))
}

func (e *Engine) scopeMayMatch(sc ast.IsActionScopeNode, uid types.EntityUID) bool {
	switch s := sc.(type) {
	case ast.ScopeTypeAll:
		return true
	case ast.ScopeTypeEq:
		return s.Entity == uid
	case ast.ScopeTypeIn:
		return e.actionIn(uid, s.Entity)
	case ast.ScopeTypeInSet:
		for _, g := range s.Entities {
			if e.actionIn(uid, g) {
				return true
			}
		}
		return false
	}
	return true // unknown scope kind: keep the policy, never drop one
}

func (e *Engine) actionIn(uid, group types.EntityUID) bool {
	if uid == group {
		return true
	}
	seen := map[types.EntityUID]bool{}
	var walk func(u types.EntityUID) bool
	walk = func(u types.EntityUID) bool {
		if seen[u] {
			return false
		}
		seen[u] = true
		for p := range e.actions[u].Parents.All() {
			if p == group || walk(p) {
				return true
			}
		}
		return false
	}
	return walk(uid)
}

// Revision is the bundle revision: hex SHA-256 of the canonical schema, policies,
// exceptions and rate limits (see computeRevision in load.go).
func (e *Engine) Revision() string { return e.revision }

// Actions lists every action of the schema (not the pure groups), sorted by name.
func (e *Engine) Actions() []ActionInfo {
	out := slices.Collect(maps.Values(e.actionInfo))
	slices.SortFunc(out, func(a, b ActionInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ResourceTypes lists every resource entity type of the schema, sorted.
func (e *Engine) ResourceTypes() []string { return slices.Clone(e.resourceTypes) }

// Exceptions lists the bundle's exceptions sorted by id, expired ones included.
func (e *Engine) Exceptions() []Exception { return slices.Clone(e.exceptions) }

// RateLimits lists the bundle's rate-limit rules in file order.
func (e *Engine) RateLimits() []RateLimit { return slices.Clone(e.limits.limits) }

// PolicyInfo describes one policy of the bundle.
type PolicyInfo struct {
	ID          string
	Effect      string // "permit" or "forbid"
	File        string
	Line        int
	Annotations map[string]string
	Text        string // canonical Cedar text
}

// Policies lists the bundle's policies (exception permits included) sorted by id.
func (e *Engine) Policies() []PolicyInfo {
	var out []PolicyInfo
	for _, pe := range e.all {
		m := e.meta[pe.id]
		eff := "permit"
		if m.Forbid {
			eff = "forbid"
		}
		out = append(out, PolicyInfo{ID: m.ID, Effect: eff, File: m.File, Line: m.Line, Annotations: maps.Clone(m.Annotations), Text: m.Text})
	}
	return out
}

// Decide evaluates req at time now and consumes a rate-limit token when allowed.
// It never performs I/O and never returns an error: every failure is a denial
// with a Code. A nil Engine denies with CodeNoPolicy.
func (e *Engine) Decide(req Request, now time.Time) Decision {
	return e.decide(&req, now, true)
}

// WhatIf decides req like Decide but takes no rate-limit token, so it changes no
// state: for what-if queries, blast radius and policy tooling. A rate limit is
// never the reason for a WhatIf denial.
func (e *Engine) WhatIf(req Request, now time.Time) Decision {
	return e.decide(&req, now, false)
}

// MayPerform answers the blast-radius question "may this agent ever do action on
// a resource of type resourceType?" by deciding RepresentativeRequest(agent,
// action, resourceType) under an empty trust view. It takes no rate-limit token.
// An allow means: under the most favourable context some call is allowed. An
// active exception scoped to one resource of that type counts: the agent can then
// act on that one resource, and the decision names the exception.
func (e *Engine) MayPerform(agent Agent, action, resourceType string, now time.Time) Decision {
	req := RepresentativeRequest(agent, action, resourceType)
	d := e.decide(&req, now, false)
	if d.Allow || e == nil {
		return d
	}
	for i := range e.exceptions {
		x := &e.exceptions[i]
		if x.resID == "" || !x.Active(now) || x.Scope.Principal != agent.SPIFFEID ||
			x.Scope.Action != action || x.resType != resourceType {
			continue
		}
		one := req
		one.Resource.ID = x.resID
		if xd := e.decide(&one, now, false); xd.Allow {
			return xd
		}
	}
	return d
}

// RepresentativeRequest builds the most favourable request for (agent, action,
// resourceType) without a concrete resource: an open resource with amount 0 and
// id "*", internal data, a fresh affirming attestation, two approvals, a healthy
// zone and no incident. Callers may adjust fields before Decide.
func RepresentativeRequest(agent Agent, action, resourceType string) Request {
	return Request{
		Agent:    agent,
		Action:   action,
		Resource: Resource{Type: resourceType, ID: "*", Status: "open"},
		Context: CallContext{
			Purpose: "blast-radius", DataSensitivity: "internal", Currency: "EUR",
			Attestation: Attestation{Tier: "affirming", AgeSeconds: 0},
			Approvers:   []string{"representative-approver-1", "representative-approver-2"},
		},
	}
}

func (e *Engine) decide(req *Request, now time.Time, consume bool) Decision {
	if e == nil {
		return Decision{Code: CodeNoPolicy, Reason: "Denied: no policy bundle is loaded."}
	}
	d := Decision{Revision: e.revision}
	tv := &req.Trust
	if tv.AgentStatus[req.Agent.SPIFFEID] == AgentSuspended {
		d.Code = CodeAgentSuspended
		d.PolicyIDs = []string{"trust-state:agent-suspended"}
		d.Reason = fmt.Sprintf("Denied: agent %s is suspended in the trust state.", agentLabel(&req.Agent))
		return d
	}
	for _, ks := range tv.KillSwitches {
		if !ks.Expires.IsZero() && !now.Before(ks.Expires) {
			continue // released by its ttl
		}
		if killMatches(&ks, req) {
			d.Code = CodeKillSwitch
			d.PolicyIDs = []string{"kill-switch:" + ks.Scope + ":" + ks.Value}
			why := ks.Reason
			if why == "" {
				why = "no reason given"
			}
			d.Reason = fmt.Sprintf("Denied by the kill switch on %s %s: %s.", ks.Scope, ks.Value, strings.TrimSuffix(why, "."))
			return d
		}
	}

	policies, ok := e.byAction[req.Action]
	if !ok {
		d.Code = CodeDefaultDeny
		d.Reason = fmt.Sprintf("Denied by default: %q is not an action of the schema.", req.Action)
		return d
	}
	// A request outside the schema is refused before Cedar: an Invoice action on an
	// Order, or an anonymous caller, could otherwise slip past policies that
	// constrain the resource type or the principal.
	if req.Agent.SPIFFEID == "" {
		d.Code = CodeInvalidRequest
		d.Reason = "Denied: the request has no caller SPIFFE ID."
		return d
	}
	if !slices.Contains(e.actionInfo[req.Action].ResourceTypes, req.Resource.Type) {
		d.Code = CodeInvalidRequest
		d.Reason = fmt.Sprintf("Denied: %s applies to %s, not to %q.", req.Action,
			strings.Join(e.actionInfo[req.Action].ResourceTypes, ", "), req.Resource.Type)
		return d
	}
	var waived map[string]bool
	var exc []string
	for i := range e.exceptions {
		x := &e.exceptions[i]
		if len(x.Waives) > 0 && x.Active(now) && x.matches(req) {
			if waived == nil {
				waived = map[string]bool{}
			}
			for _, w := range x.Waives {
				waived[w] = true
			}
			exc = append(exc, x.ID)
		}
	}
	if waived != nil {
		policies = policies.without(waived)
	}

	creq, ents := e.build(req, now)
	dec, diag := cedar.Authorize(policies, ents, creq)

	if len(diag.Errors) > 0 {
		d.Code = CodeEvaluationError
		var ids, msgs []string
		for _, er := range diag.Errors {
			ids = append(ids, string(er.PolicyID))
			msgs = append(msgs, er.String())
		}
		d.PolicyIDs, d.Errors = ids, msgs
		d.Reason = fmt.Sprintf("Denied because policy %s could not be evaluated (an evaluation error denies).", strings.Join(ids, ", "))
		e.annotate(&d)
		return d
	}
	single := len(diag.Reasons) == 1
	if single {
		// The common case: one determining policy; its slices, maps and sentences are
		// precomputed at load time and shared (read-only) by every such decision.
		m := e.meta[diag.Reasons[0].PolicyID]
		d.PolicyIDs, d.Annotations, d.Obligations = m.ids, m.annMap, m.obligations
	} else {
		for _, r := range diag.Reasons {
			d.PolicyIDs = append(d.PolicyIDs, string(r.PolicyID))
		}
		e.annotate(&d)
	}
	if dec == cedar.Deny {
		if len(d.PolicyIDs) == 0 {
			d.Code = CodeDefaultDeny
			d.Reason = fmt.Sprintf("Denied by default: no policy permits %s to %s on %s.", agentLabel(&req.Agent), req.Action, resLabel(&req.Resource))
			return d
		}
		d.Code = CodePolicyDeny
		if c := e.meta[cedar.PolicyID(d.PolicyIDs[0])].Code; c != "" {
			d.Code = c
		}
		if single {
			d.Reason = e.meta[diag.Reasons[0].PolicyID].denySentence
		} else {
			d.Reason = "Denied by " + e.sentence(d.PolicyIDs)
		}
		return d
	}

	if r := e.limits.rule(&req.Agent, req.Action); r != nil && consume {
		key := req.Agent.SPIFFEID
		if key == "" {
			key = req.Agent.Name
		}
		if !e.limits.take(r, key, req.Action, now) {
			return Decision{
				Code: CodeRateLimited, Revision: e.revision,
				PolicyIDs: []string{"ratelimit:" + r.ID},
				Reason: fmt.Sprintf("Denied by rate limit %s: %s may call %s at most %s (burst %d).",
					r.ID, agentLabel(&req.Agent), req.Action, r.Rate, r.Burst),
			}
		}
	}
	d.Allow = true
	d.Code = CodeAllow
	onlyExceptions := true
	for _, id := range d.PolicyIDs {
		if e.meta[cedar.PolicyID(id)].Exception == nil {
			onlyExceptions = false
		}
	}
	if onlyExceptions || len(exc) > 0 {
		d.Code = CodeException
	}
	if single {
		d.Reason = e.meta[diag.Reasons[0].PolicyID].allowSentence
	} else {
		d.Reason = "Allowed by " + e.sentence(d.PolicyIDs)
	}
	if len(exc) > 0 {
		d.Reason = strings.TrimSuffix(d.Reason, ".") + fmt.Sprintf(" (forbids waived by exception %s).", strings.Join(exc, ", "))
	}
	return d
}

// annotate fills annotations and obligations from the determining policies.
func (e *Engine) annotate(d *Decision) {
	if len(d.PolicyIDs) == 0 {
		return
	}
	d.Annotations = make(map[string]map[string]string, len(d.PolicyIDs))
	for _, id := range d.PolicyIDs {
		m := e.meta[cedar.PolicyID(id)]
		if m == nil {
			continue
		}
		d.Annotations[id] = m.Annotations
		if m.Remedy != "" && !slices.Contains(d.Obligations, m.Remedy) {
			d.Obligations = append(d.Obligations, m.Remedy)
		}
	}
}

// sentence renders "<id>: <reason>." or "<id1>, <id2>: <reason1>; <reason2>.".
func (e *Engine) sentence(ids []string) string {
	var reasons []string
	for _, id := range ids {
		if m := e.meta[cedar.PolicyID(id)]; m != nil && m.Reason != "" {
			reasons = append(reasons, strings.TrimSuffix(m.Reason, "."))
		}
	}
	return strings.Join(ids, ", ") + ": " + strings.Join(reasons, "; ") + "."
}

func killMatches(ks *KillSwitch, req *Request) bool {
	v := ks.Value
	if v == "" {
		return true // a malformed switch fails closed: it stops everything
	}
	switch ks.Scope {
	case "action":
		return v == "*" || v == req.Action
	case "workflow":
		return v == "*" || (req.Workflow != "" && v == req.Workflow)
	case "agent":
		return v == "*" || (req.Agent.SPIFFEID != "" && v == req.Agent.SPIFFEID) || (req.Agent.Name != "" && v == req.Agent.Name)
	case "zone":
		return v == "*" || (req.Agent.Zone != "" && v == req.Agent.Zone)
	}
	return true // an unknown scope fails closed: it stops everything
}

func agentLabel(a *Agent) string {
	n := a.Name
	if n == "" {
		n = a.SPIFFEID
	}
	if a.Role != "" {
		return fmt.Sprintf("%s (role %s)", n, a.Role)
	}
	return n
}

func resLabel(r *Resource) string {
	if r.ID == "" {
		return r.Type
	}
	return fmt.Sprintf("%s %s", r.Type, r.ID)
}
