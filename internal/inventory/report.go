package inventory

import (
	"fmt"
	"sort"
	"strings"
)

// Options configure Analyze.
type Options struct {
	// Authorizer decides what each agent may do; nil means NewCatalogAuthorizer.
	Authorizer Authorizer
	// Engine names the decision source in the report ("catalog", "cedar policies DIR").
	Engine string
	// Paths is how many agents of the blast-radius ranking get explained paths
	// (default 5).
	Paths int
}

// Report is the result of Analyze: what `warden inventory report` prints.
type Report struct {
	Catalog        string           `json:"catalog"`
	Engine         string           `json:"engine"`
	Summary        Summary          `json:"summary"`
	Headlines      []string         `json:"headlines"`
	BlastRadius    []AgentRisk      `json:"blast_radius"`
	Chokepoints    []Chokepoint     `json:"chokepoints"`
	Rollout        []RolloutStep    `json:"rollout"`
	Undeclared     []UndeclaredPath `json:"undeclared_paths"`
	DeclaredDenied []DeniedPath     `json:"declared_denied"`
	Findings       []Finding        `json:"findings"`
	Edges          []Edge           `json:"edges"`

	cat *Catalog
}

// Summary counts what the catalog holds.
type Summary struct {
	Agents             int `json:"agents"`
	Interactions       int `json:"interactions"`
	Workflows          int `json:"workflows"`
	Dependencies       int `json:"dependencies"`
	SharedDependencies int `json:"shared_dependencies"`
	Errors             int `json:"errors"`
	Warnings           int `json:"warnings"`
	Decisions          int `json:"decisions"` // questions put to the authorizer
}

// Capability is one thing an agent may do: ask To to perform Action.
type Capability struct {
	Action   string `json:"action"`
	To       string `json:"to"`
	Class    string `json:"class"`
	Declared bool   `json:"declared"`
}

// AgentRisk is one agent's blast radius.
type AgentRisk struct {
	Agent       string       `json:"agent"`
	Zone        string       `json:"zone"`
	Class       string       `json:"class"`
	Environment string       `json:"environment"`
	Direct      []Capability `json:"direct"`
	// DirectSensitive counts the transactional and regulated direct capabilities.
	DirectSensitive int `json:"direct_sensitive"`
	// ReachableAgents is how many other agents a compromise of this one can make act,
	// through calls, queues, databases and shared credentials, at any depth.
	ReachableAgents int `json:"reachable_agents"`
	// Transitive counts the capabilities of this agent and of every agent it reaches.
	Transitive          int `json:"transitive"`
	TransitiveSensitive int `json:"transitive_sensitive"`
	// Paths explains, for the top agents, how each reached agent with sensitive
	// capabilities is reached.
	Paths []string `json:"paths,omitempty"`
	// Worst is the path to the reached agent with the most regulated capabilities
	// (top agents only).
	Worst string `json:"worst,omitempty"`
}

// Chokepoint is a dependency and the workflows that depend on it.
type Chokepoint struct {
	Name               string   `json:"name"`
	Kind               string   `json:"kind"`
	Line               int      `json:"line"`
	Users              []string `json:"users"`
	Workflows          int      `json:"workflows"`
	SensitiveWorkflows int      `json:"sensitive_workflows"`
	Shared             bool     `json:"shared"`
}

// RolloutStep is one workflow in the order its controls should be rolled out.
type RolloutStep struct {
	Rank        int      `json:"rank"`
	Phase       int      `json:"phase"`
	Workflow    string   `json:"workflow"`
	Score       int      `json:"score"`
	Class       string   `json:"class"`
	Criticality string   `json:"criticality"`
	Controls    string   `json:"controls"`
	Reasons     []string `json:"reasons"`
}

// UndeclaredPath is an action the policies allow an agent that the catalog does not
// declare for it.
type UndeclaredPath struct {
	Agent       string   `json:"agent"`
	Action      string   `json:"action"`
	Resource    string   `json:"resource"`
	Servers     []string `json:"servers"` // agents that serve the action (first 10)
	ServerCount int      `json:"server_count"`
	Policies    []string `json:"policies"`
}

// DeniedPath is a declared interaction the policies deny.
type DeniedPath struct {
	Interaction string   `json:"interaction"`
	Line        int      `json:"line"`
	Policies    []string `json:"policies"`
}

// Edge is one drawn arrow: a declared interaction or an undeclared allowed path.
type Edge struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Action   string `json:"action"`
	Class    string `json:"class"`
	Declared bool   `json:"declared"`
	Allowed  bool   `json:"allowed"`
}

type actionInfo struct {
	name     string
	resource string
	class    string
	servers  []int
	label    int32
}

type analyzer struct {
	c       *Catalog
	az      Authorizer
	q       *asker
	r       *Report
	agents  []*Agent // valid, unique agents; index = graph node
	idx     map[string]int
	actions []*actionInfo
	labels  []string
	caps    [][]Capability
	g       *graph
}

// Analyze computes the report for c. It never fails: authorizer errors are findings
// (the request counts as denied) and invalid entries are skipped after being reported.
func Analyze(c *Catalog, opt Options) *Report {
	az := opt.Authorizer
	if az == nil {
		az = NewCatalogAuthorizer(c)
	}
	if opt.Engine == "" {
		opt.Engine = "catalog declarations (no policies given)"
	}
	if opt.Paths == 0 {
		opt.Paths = 5
	}
	r := &Report{Catalog: c.File, Engine: opt.Engine, cat: c}
	a := &analyzer{c: c, az: az, q: newAsker(az), r: r, idx: make(map[string]int, len(c.Agents))}
	a.collect()
	a.capabilities()
	r.Findings = check(c, a.q)
	for _, f := range r.Findings {
		if f.Severity == SevError {
			r.Summary.Errors++
		} else {
			r.Summary.Warnings++
		}
	}
	r.Summary.Decisions = a.q.n
	a.buildGraph()
	a.blastRadius(opt.Paths)
	a.chokepoints()
	a.rollout()
	a.headlines()
	// Empty lists, not null, in JSON.
	if r.Undeclared == nil {
		r.Undeclared = []UndeclaredPath{}
	}
	if r.DeclaredDenied == nil {
		r.DeclaredDenied = []DeniedPath{}
	}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	if r.Edges == nil {
		r.Edges = []Edge{}
	}
	for i := range r.BlastRadius {
		if r.BlastRadius[i].Direct == nil {
			r.BlastRadius[i].Direct = []Capability{}
		}
	}
	return r
}

func (a *analyzer) label(s string) int32 {
	a.labels = append(a.labels, s)
	return int32(len(a.labels) - 1)
}

func (a *analyzer) collect() {
	c := a.c
	for i := range c.Agents {
		ag := &c.Agents[i]
		if ag.Name == "" {
			continue
		}
		if _, dup := a.idx[ag.Name]; dup {
			continue
		}
		a.idx[ag.Name] = len(a.agents)
		a.agents = append(a.agents, ag)
	}
	byName := map[string]*actionInfo{}
	wfs := map[string]bool{}
	for i := range c.Interactions {
		in := &c.Interactions[i]
		wfs[in.WorkflowName()] = true
		to, ok := a.idx[in.To]
		if !ok || in.Action == "" {
			continue
		}
		ai := byName[in.Action]
		if ai == nil {
			ai = &actionInfo{name: in.Action, resource: in.ResourceType(), class: in.Classification, label: a.label(in.Action)}
			byName[in.Action] = ai
			a.actions = append(a.actions, ai)
		}
		if classRank[in.Classification] > classRank[ai.class] {
			ai.class = in.Classification
		}
		if n := len(ai.servers); n == 0 || ai.servers[n-1] != to {
			ai.servers = append(ai.servers, to)
		}
	}
	for _, ai := range a.actions {
		sort.Ints(ai.servers)
		ai.servers = uniqInts(ai.servers)
	}
	sort.Slice(a.actions, func(i, j int) bool { return a.actions[i].name < a.actions[j].name })
	r := a.r
	r.Summary.Agents = len(a.agents)
	r.Summary.Interactions = len(c.Interactions)
	r.Summary.Workflows = len(wfs)
	r.Summary.Dependencies = len(c.Dependencies)
	for _, d := range c.Dependencies {
		if len(distinctUsers(d)) > 1 {
			r.Summary.SharedDependencies++
		}
	}
}

// capabilities asks the authorizer, for every agent and every action of the catalog,
// whether the agent may perform it; declared interactions are asked with their own
// resource type.
func (a *analyzer) capabilities() {
	c, r := a.c, a.r
	a.caps = make([][]Capability, len(a.agents))
	declared := make([]map[string][]*Interaction, len(a.agents))
	for i := range c.Interactions {
		in := &c.Interactions[i]
		f, ok := a.idx[in.From]
		if !ok || in.Action == "" {
			continue
		}
		if _, ok := a.idx[in.To]; !ok {
			continue
		}
		if declared[f] == nil {
			declared[f] = map[string][]*Interaction{}
		}
		declared[f][in.Action] = append(declared[f][in.Action], in)
	}
	byName := make(map[string]*actionInfo, len(a.actions))
	for _, act := range a.actions {
		byName[act.name] = act
	}
	enum, _ := a.az.(Enumerator)
	var cands []*actionInfo
	for ai, ag := range a.agents {
		cands = a.actions
		if enum != nil {
			cands = cands[:0:0]
			seen := map[string]bool{}
			for _, name := range enum.Candidates(ag) {
				if act, ok := byName[name]; ok && !seen[name] {
					seen[name] = true
					cands = append(cands, act)
				}
			}
			// Declared actions are always checked, even ones the engine does not know:
			// those are exactly the declared paths enforcement would refuse.
			for name := range declared[ai] {
				if act, ok := byName[name]; ok && !seen[name] {
					seen[name] = true
					cands = append(cands, act)
				}
			}
			sort.Slice(cands, func(i, j int) bool { return cands[i].name < cands[j].name })
		}
		for _, act := range cands {
			ins := declared[ai][act.name]
			if len(ins) == 0 {
				p := a.q.ask(ag, act.name, act.resource, false)
				d := p.strong
				if !d.Allow {
					continue
				}
				u := UndeclaredPath{Agent: ag.Name, Action: act.name, Resource: act.resource, ServerCount: len(act.servers), Policies: d.Policies}
				for k, s := range act.servers {
					if k < 10 {
						u.Servers = append(u.Servers, a.agents[s].Name)
					}
					if s != ai {
						a.caps[ai] = append(a.caps[ai], Capability{Action: act.name, To: a.agents[s].Name, Class: act.class})
						r.Edges = append(r.Edges, Edge{From: ag.Name, To: a.agents[s].Name, Action: act.name, Class: act.class, Allowed: true})
					}
				}
				r.Undeclared = append(r.Undeclared, u)
				continue
			}
			for _, in := range ins {
				p := a.q.ask(ag, act.name, in.ResourceType(), false)
				d := p.strong
				if p.err != nil {
					d = Decision{Policies: []string{"error: " + p.err.Error()}}
				}
				r.Edges = append(r.Edges, Edge{From: in.From, To: in.To, Action: in.Action, Class: in.Classification, Declared: true, Allowed: d.Allow})
				if !d.Allow {
					r.DeclaredDenied = append(r.DeclaredDenied, DeniedPath{Interaction: in.Name(), Line: in.Line, Policies: d.Policies})
					continue
				}
				a.caps[ai] = append(a.caps[ai], Capability{Action: in.Action, To: in.To, Class: in.Classification, Declared: true})
			}
		}
	}
}

func (a *analyzer) buildGraph() {
	c := a.c
	n := len(a.agents)
	g := newGraph(n, len(c.Dependencies))
	a.g = g
	actLabel := map[string]int32{}
	for _, act := range a.actions {
		actLabel[act.name] = act.label
	}
	for ai, cs := range a.caps {
		for _, cp := range cs {
			if cp.Class == ReadOnly {
				continue // a read makes nobody act
			}
			if to, ok := a.idx[cp.To]; ok {
				g.add(g.instruct(ai), g.instruct(to), actLabel[cp.Action])
			}
		}
	}
	for di := range c.Dependencies {
		d := &c.Dependencies[di]
		node := g.dep(di)
		lbl := a.label(d.Name + " (" + d.Kind + ")")
		cred := d.Kind == DepSecret || d.Kind == DepIntegrationAccount
		for _, u := range d.UsedBy {
			ui, ok := a.idx[u.Agent]
			if !ok {
				continue
			}
			switch {
			case cred:
				g.add(g.control(ui), node, lbl)
				g.add(node, g.control(ui), lbl)
			default:
				if u.Access == AccessWrite || u.Access == AccessReadWrite {
					g.add(g.instruct(ui), node, lbl)
				}
				if u.Access == AccessRead || u.Access == AccessReadWrite {
					g.add(node, g.instruct(ui), lbl)
				}
			}
		}
	}
}

func (a *analyzer) blastRadius(paths int) {
	n := len(a.agents)
	capN := make([]int, n)
	sensN := make([]int, n)
	regN := make([]int, n)
	out := make([]AgentRisk, n)
	for i, ag := range a.agents {
		out[i] = AgentRisk{Agent: ag.Name, Zone: ag.Zone, Class: ag.Class, Environment: ag.Environment, Direct: a.caps[i]}
		capN[i] = len(a.caps[i])
		for _, cp := range a.caps[i] {
			if classRank[cp.Class] >= classRank[Transactional] {
				sensN[i]++
			}
			if cp.Class == Regulated {
				regN[i]++
			}
		}
		out[i].DirectSensitive = sensN[i]
	}
	rc := a.g.reachability()
	wCap, wSens := newWeights(capN), newWeights(sensN)
	for i := range out {
		set := rc.sets[rc.comp[a.g.control(i)]]
		out[i].ReachableAgents = rc.count[rc.comp[a.g.control(i)]] - 1
		out[i].Transitive = wCap.sum(set)
		out[i].TransitiveSensitive = wSens.sum(set)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].TransitiveSensitive != out[j].TransitiveSensitive {
			return out[i].TransitiveSensitive > out[j].TransitiveSensitive
		}
		if out[i].ReachableAgents != out[j].ReachableAgents {
			return out[i].ReachableAgents > out[j].ReachableAgents
		}
		return out[i].Agent < out[j].Agent
	})
	for k := 0; k < paths && k < len(out); k++ {
		src := a.idx[out[k].Agent]
		set := rc.sets[rc.comp[a.g.control(src)]]
		var ps []string
		worst, worstN := -1, 0
		set.each(func(v int) {
			if v != src && regN[v] > 0 && regN[v] >= worstN {
				worst, worstN = v, regN[v]
			}
			if v == src || sensN[v] == 0 || len(ps) >= 8 {
				return
			}
			ps = append(ps, a.explain(src, v))
		})
		out[k].Paths = ps
		if worst >= 0 {
			out[k].Worst = a.explain(src, worst)
		}
	}
	a.r.BlastRadius = out
}

// explain renders the shortest path from control(src) to agent dst as
// "a -[action]-> b =[erp-account (integration_account)]=> c: what c can do".
func (a *analyzer) explain(src, dst int) string {
	g := a.g
	p := g.path(g.control(src), g.control(dst))
	if q := g.path(g.control(src), g.instruct(dst)); p == nil || (q != nil && len(q) < len(p)) {
		p = q
	}
	var b strings.Builder
	b.WriteString(a.agents[src].Name)
	for i := 0; i < len(p); i++ {
		st := p[i]
		if st.label < 0 {
			continue // control -> instruct of the same agent
		}
		ag := g.agentOf(int(st.to))
		if ag < 0 { // through a dependency: print it once, then the agent after it
			b.WriteString(" =[" + a.labels[st.label] + "]=> ")
			i++
			if i < len(p) {
				b.WriteString(a.agents[g.agentOf(int(p[i].to))].Name)
			}
			continue
		}
		b.WriteString(" -[" + a.labels[st.label] + "]-> " + a.agents[ag].Name)
	}
	var acts []string
	for _, cp := range a.caps[dst] {
		if classRank[cp.Class] >= classRank[Transactional] && !contains(acts, cp.Action) {
			acts = append(acts, cp.Action)
		}
	}
	b.WriteString(": " + strings.Join(acts, ", "))
	return b.String()
}

func distinctUsers(d Dependency) []string {
	var out []string
	for _, u := range d.UsedBy {
		if !contains(out, u.Agent) {
			out = append(out, u.Agent)
		}
	}
	return out
}

func uniqInts(s []int) []int {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// ReportFile loads the catalog at path and analyses it: what `warden demo` calls before
// printing TopOfReport.
func ReportFile(path string, opt Options) (*Report, error) {
	c, err := Load(path)
	if err != nil {
		return nil, err
	}
	return Analyze(c, opt), nil
}

// TopOfReport returns the first n lines of r's text rendering: the lines `warden demo`
// prints.
func TopOfReport(r *Report, n int) string {
	var b strings.Builder
	_ = r.WriteText(&b)
	lines := strings.SplitAfter(b.String(), "\n")
	if n < len(lines) {
		lines = lines[:n]
	}
	return strings.Join(lines, "")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
