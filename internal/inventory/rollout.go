package inventory

import (
	"fmt"
	"sort"
	"strings"
)

// chokepoints ranks dependencies by the number of workflows that depend on them. A
// workflow depends on a dependency when one of its interactions names it in `via`, or
// when its source or destination agent uses it.
func (a *analyzer) chokepoints() {
	c := a.c
	agentDeps := make([][]int, len(a.agents))
	for di, d := range c.Dependencies {
		for _, u := range distinctUsers(d) {
			if ai, ok := a.idx[u]; ok {
				agentDeps[ai] = append(agentDeps[ai], di)
			}
		}
	}
	depIdx := make(map[string]int, len(c.Dependencies))
	for di, d := range c.Dependencies {
		if _, dup := depIdx[d.Name]; !dup {
			depIdx[d.Name] = di
		}
	}
	wfs := make([]map[string]bool, len(c.Dependencies))
	sens := make([]map[string]bool, len(c.Dependencies))
	for i := range c.Interactions {
		in := &c.Interactions[i]
		wf := in.WorkflowName()
		mark := func(di int) {
			if wfs[di] == nil {
				wfs[di], sens[di] = map[string]bool{}, map[string]bool{}
			}
			wfs[di][wf] = true
			if classRank[in.Classification] >= classRank[Transactional] {
				sens[di][wf] = true
			}
		}
		for _, name := range []string{in.From, in.To} {
			if ai, ok := a.idx[name]; ok {
				for _, di := range agentDeps[ai] {
					mark(di)
				}
			}
		}
		for _, v := range in.Via {
			if di, ok := depIdx[v]; ok {
				mark(di)
			}
		}
	}
	out := make([]Chokepoint, 0, len(c.Dependencies))
	for di, d := range c.Dependencies {
		users := distinctUsers(d)
		if users == nil {
			users = []string{}
		}
		out = append(out, Chokepoint{Name: d.Name, Kind: d.Kind, Line: d.Line, Users: users,
			Workflows: len(wfs[di]), SensitiveWorkflows: len(sens[di]), Shared: len(users) > 1})
	}
	sort.SliceStable(out, func(i, j int) bool {
		x, y := out[i], out[j]
		if x.Workflows != y.Workflows {
			return x.Workflows > y.Workflows
		}
		if x.SensitiveWorkflows != y.SensitiveWorkflows {
			return x.SensitiveWorkflows > y.SensitiveWorkflows
		}
		if len(x.Users) != len(y.Users) {
			return len(x.Users) > len(y.Users)
		}
		return x.Name < y.Name
	})
	a.r.Chokepoints = out
}

// Controls by classification, cumulative: the strongest controls go first to the
// workflows that move money, inventory or compliance records (source document, phases
// 2-4: identity and mTLS everywhere, then signed intents, attestation where the stakes
// are highest).
var controls = map[string]string{
	ReadOnly:      "SPIFFE identity + mTLS",
	Advisory:      "SPIFFE identity + mTLS + signed intents",
	Transactional: "SPIFFE identity + mTLS + signed intents + fresh attestation",
	Regulated:     "SPIFFE identity + mTLS + signed intents + fresh attestation + two approvals + audit review",
}

type wfAgg struct {
	name        string
	class       string
	crit        string
	boundary    []string
	shared      map[string]bool
	noReq       int
	reach       int
	undeclared  bool
	interaction int
}

// rollout orders workflows by risk. Score (0-100+):
//
//	25 x class rank (read-only 1 .. regulated 4)
//	+ 6 x criticality rank (low 1 .. critical 4)
//	+ 10 if a call crosses into partner, edge or legacy, or across trust domains
//	+ 5 per shared dependency its agents use (at most 3)
//	+ 15 if a transactional/regulated call has no approval or attestation requirement
//	+ up to 10 for the transitive blast radius of its riskiest source agent
func (a *analyzer) rollout() {
	c, r := a.c, a.r
	sensReach := map[string]int{}
	maxReach := 1
	for _, ar := range r.BlastRadius {
		sensReach[ar.Agent] = ar.TransitiveSensitive
		if ar.TransitiveSensitive > maxReach {
			maxReach = ar.TransitiveSensitive
		}
	}
	shared := map[string][]string{} // agent -> shared dependencies it uses
	for _, cp := range r.Chokepoints {
		if cp.Shared {
			for _, u := range cp.Users {
				shared[u] = append(shared[u], cp.Name)
			}
		}
	}
	noReq := map[int]bool{}
	for _, f := range r.Findings {
		if f.Code == CodeNoRequirement {
			noReq[f.Line] = true
		}
	}
	aggs := map[string]*wfAgg{}
	var order []string
	for i := range c.Interactions {
		in := &c.Interactions[i]
		name := in.WorkflowName()
		w := aggs[name]
		if w == nil {
			w = &wfAgg{name: name, shared: map[string]bool{}}
			aggs[name] = w
			order = append(order, name)
		}
		w.interaction++
		if classRank[in.Classification] > classRank[w.class] {
			w.class = in.Classification
		}
		if crits[in.Criticality] > crits[w.crit] {
			w.crit = in.Criticality
		}
		from, okF := c.Agent(in.From)
		to, okT := c.Agent(in.To)
		if okF && okT {
			for _, ag := range []*Agent{from, to} {
				if ag.Environment != EnvCloud && ag.Environment != "" && !contains(w.boundary, ag.Environment) {
					w.boundary = append(w.boundary, ag.Environment)
				}
			}
			if from.TrustDomain != to.TrustDomain && !contains(w.boundary, "cross-domain") {
				w.boundary = append(w.boundary, "cross-domain")
			}
		}
		for _, d := range shared[in.From] {
			w.shared[d] = true
		}
		for _, d := range shared[in.To] {
			w.shared[d] = true
		}
		for _, d := range in.Via {
			w.shared[d] = true
		}
		if noReq[in.Line] {
			w.noReq++
		}
		if sr := sensReach[in.From]; sr > w.reach {
			w.reach = sr
		}
	}
	steps := make([]RolloutStep, 0, len(aggs))
	for _, name := range order {
		w := aggs[name]
		s := RolloutStep{Workflow: name, Class: w.class, Criticality: w.crit, Controls: controls[w.class], Reasons: []string{}}
		if s.Class == "" {
			s.Class = "unclassified"
			s.Controls = "classify first; until then treat as regulated"
		}
		score := 25*classRank[w.class] + 6*crits[w.crit]
		if w.class == "" {
			score = 25 * classRank[Regulated] // unknown is treated as the worst
		}
		if len(w.boundary) > 0 {
			score += 10
			s.Reasons = append(s.Reasons, "crosses "+strings.Join(w.boundary, ", "))
		}
		if n := len(w.shared); n > 0 {
			score += 5 * min(n, 3)
			s.Reasons = append(s.Reasons, "shared dependencies: "+strings.Join(sortedKeys(w.shared), ", "))
		}
		if w.noReq > 0 {
			score += 15
			s.Reasons = append(s.Reasons, plural(w.noReq, "call", "calls")+" without approval or attestation requirement")
		}
		if w.reach > 0 {
			score += 10 * w.reach / maxReach
			s.Reasons = append(s.Reasons, fmt.Sprintf("source reaches %d sensitive capabilities", w.reach))
		}
		s.Score = score
		switch {
		case classRank[w.class] == 4 || w.class == "" || (classRank[w.class] == 3 && crits[w.crit] >= 3):
			s.Phase = 1
		case classRank[w.class] >= 2:
			s.Phase = 2
		default:
			s.Phase = 3
		}
		steps = append(steps, s)
	}
	sort.SliceStable(steps, func(i, j int) bool {
		if steps[i].Phase != steps[j].Phase {
			return steps[i].Phase < steps[j].Phase
		}
		if steps[i].Score != steps[j].Score {
			return steps[i].Score > steps[j].Score
		}
		return steps[i].Workflow < steps[j].Workflow
	})
	for i := range steps {
		steps[i].Rank = i + 1
	}
	r.Rollout = steps
}

// headlines are the few sentences the top of the report (and `warden demo`) shows.
func (a *analyzer) headlines() {
	r := a.r
	var h []string
	if len(r.BlastRadius) > 0 {
		top := r.BlastRadius[0]
		s := fmt.Sprintf("largest blast radius: %s reaches %s and %d transactional/regulated capabilities (%d directly)",
			top.Agent, plural(top.ReachableAgents, "other agent", "other agents"), top.TransitiveSensitive, top.DirectSensitive)
		switch {
		case top.Worst != "":
			s += "; e.g. " + top.Worst
		case len(top.Paths) > 0:
			s += "; e.g. " + top.Paths[0]
		}
		h = append(h, s)
	}
	for _, cp := range r.Chokepoints {
		if cp.Shared {
			h = append(h, fmt.Sprintf("top chokepoint: %s %s shared by %s (%s), %d workflows depend on it",
				cp.Kind, cp.Name, plural(len(cp.Users), "agent", "agents"), strings.Join(cp.Users, ", "), cp.Workflows))
			break
		}
	}
	h = append(h, fmt.Sprintf("catalog vs enforcement: %s allowed but undeclared, %s declared but denied",
		plural(len(r.Undeclared), "path", "paths"), plural(len(r.DeclaredDenied), "interaction", "interactions")))
	if len(r.Rollout) > 0 {
		h = append(h, fmt.Sprintf("roll out first: %s (%s; %s)", r.Rollout[0].Workflow, r.Rollout[0].Class, r.Rollout[0].Controls))
	}
	h = append(h, fmt.Sprintf("check: %s, %s", plural(r.Summary.Errors, "error", "errors"), plural(r.Summary.Warnings, "warning", "warnings")))
	r.Headlines = h
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
