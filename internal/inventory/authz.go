package inventory

import (
	"strings"
)

// Request is one question put to the enforcement policies: may Agent perform Action on a
// resource of type ResourceType?
//
// Attested and Approvals describe the context the question is asked in. The report asks
// each question twice: once bare (Attested false, Approvals 0) and once strong (Attested
// true: a fresh, affirming attestation; Approvals 2: two distinct approvers). Allowed
// strong but denied bare means the policies demand approval or attestation; denied strong
// means the policies deny the path whatever the context.
type Request struct {
	Agent        Agent
	Action       string
	ResourceType string
	Attested     bool
	Approvals    int
}

// Decision is the policies' answer. Policies are the ids of the policies (or the reason)
// that determined it. Obligations are remedies the engine attaches to an allow or a deny
// ("approval", "review", "attestation"); an obligation on an allow counts as a requirement.
type Decision struct {
	Allow       bool
	Policies    []string
	Obligations []string
}

// Authorizer is what the inventory needs from a policy engine. An implementation must be
// deterministic and must not need the network; errors are reported in the report and the
// request counts as denied (fail closed).
//
// An adapter for the Cedar engine maps Request.Agent to the principal entity (its Name
// and Identity for the UID, Role, Class, Zone, TrustDomain, Environment for attributes),
// Action to Action::"<action>", ResourceType to a resource entity of that type, and
// Attested/Approvals to the context (attestation {tier: "affirming", age_s: 0} or
// {tier: "none"}; approvals {count}). Amount-dependent rules should be asked with an
// amount above every threshold, so that the strongest requirement shows.
type Authorizer interface {
	Authorize(req Request) (Decision, error)
}

// Enumerator is an optional capability of an Authorizer: Candidates returns a superset
// of the actions agent may ever be allowed, and the report asks Authorize only about
// those. Without it the report asks about every action of the catalog for every agent
// (agents x actions decisions), which is what finds undeclared paths in an engine
// whose policies are not written per action.
type Enumerator interface {
	Candidates(agent *Agent) []string
}

// AuthorizerFunc lets a plain function be an Authorizer.
type AuthorizerFunc func(Request) (Decision, error)

// Authorize calls f.
func (f AuthorizerFunc) Authorize(r Request) (Decision, error) { return f(r) }

// CatalogAuthorizer answers from the catalog's declarations alone: an agent may perform
// the actions of the interactions it is the source of, and each interaction's `requires:`
// list is enforced (approval needs two approvals, attestation needs Attested). It is
// what the report uses when no policy engine is given; with it the catalog and
// enforcement agree by construction, except where requirements are missing.
type CatalogAuthorizer struct {
	allowed map[agentAction][]*Interaction
	actions map[string][]string // agent name -> declared actions
}

var (
	_ Authorizer = (*CatalogAuthorizer)(nil)
	_ Enumerator = (*CatalogAuthorizer)(nil)
)

// NewCatalogAuthorizer indexes c's interactions.
func NewCatalogAuthorizer(c *Catalog) *CatalogAuthorizer {
	a := &CatalogAuthorizer{
		allowed: make(map[agentAction][]*Interaction, len(c.Interactions)),
		actions: make(map[string][]string, len(c.Agents)),
	}
	for i := range c.Interactions {
		in := &c.Interactions[i]
		k := agentAction{in.From, in.Action}
		if len(a.allowed[k]) == 0 {
			a.actions[in.From] = append(a.actions[in.From], in.Action)
		}
		a.allowed[k] = append(a.allowed[k], in)
	}
	return a
}

// Candidates returns the actions the catalog declares for agent.
func (a *CatalogAuthorizer) Candidates(agent *Agent) []string { return a.actions[agent.Name] }

// Authorize allows r when an interaction declares it and the context meets the weakest
// requirement set among the matching interactions.
func (a *CatalogAuthorizer) Authorize(r Request) (Decision, error) {
	ins := a.allowed[agentAction{r.Agent.Name, r.Action}]
	if len(ins) == 0 {
		return Decision{Policies: []string{"catalog:undeclared"}}, nil
	}
	var missing []string
	for _, in := range ins {
		if rt := in.ResourceType(); r.ResourceType != "" && rt != r.ResourceType {
			continue
		}
		miss := missingRequirements(in.Requires, r)
		if len(miss) == 0 {
			id := in.ID
			if id == "" {
				id = in.WorkflowName()
			}
			return Decision{Allow: true, Policies: []string{"catalog:" + id}}, nil
		}
		missing = miss
	}
	if missing == nil {
		return Decision{Policies: []string{"catalog:undeclared-resource"}}, nil
	}
	return Decision{Policies: []string{"catalog:requires-" + strings.Join(missing, "+")}, Obligations: missing}, nil
}

func missingRequirements(req []string, r Request) []string {
	var miss []string
	for _, q := range req {
		switch q {
		case RequireApproval:
			if r.Approvals < 2 {
				miss = append(miss, RequireApproval)
			}
		case RequireAttestation:
			if !r.Attested {
				miss = append(miss, RequireAttestation)
			}
		}
	}
	return miss
}

type agentAction struct{ agent, action string }

// probe is what the policies say about one (agent, action, resource) triple.
type probe struct {
	bare, strong Decision
	bareAsked    bool
	err          error
}

// requirement reports whether enforcement demands approval or attestation.
func (p probe) requirement() bool {
	if p.strong.Allow && !p.bare.Allow {
		return true
	}
	if p.bare.Allow {
		for _, o := range p.bare.Obligations {
			switch o {
			case RequireApproval, RequireAttestation, "review":
				return true
			}
		}
	}
	return false
}

// asker puts questions to an Authorizer once: Check and Analyze share its cache.
type asker struct {
	az    Authorizer
	cache map[probeKey]probe
	n     int // Authorize calls made
}

type probeKey struct{ from, action, resource string }

func newAsker(az Authorizer) *asker {
	return &asker{az: az, cache: map[probeKey]probe{}}
}

// ask returns the strong decision for (a, action, resource) and, when bare is set and
// the strong one allows, the bare decision too. An error empties both (fail closed).
func (k *asker) ask(a *Agent, action, resource string, bare bool) probe {
	key := probeKey{a.Name, action, resource}
	p, hit := k.cache[key]
	if !hit {
		k.n++
		p.strong, p.err = k.az.Authorize(Request{Agent: *a, Action: action, ResourceType: resource, Attested: true, Approvals: 2})
		if p.err != nil {
			p.strong = Decision{}
		}
		if !p.strong.Allow {
			p.bare, p.bareAsked = p.strong, true
		}
	}
	if bare && !p.bareAsked {
		k.n++
		p.bare, p.err = k.az.Authorize(Request{Agent: *a, Action: action, ResourceType: resource})
		p.bareAsked = true
		if p.err != nil {
			p.bare, p.strong = Decision{}, Decision{}
		}
	}
	k.cache[key] = p
	return p
}
