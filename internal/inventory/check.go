package inventory

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Severities of a finding. Errors make `warden inventory check` exit 1.
const (
	SevError   = "error"
	SevWarning = "warning"
)

// Finding codes: stable, for scripts, tests and docs/catalog.md.
const (
	CodeMissingField          = "missing_field"
	CodeBadValue              = "bad_value"
	CodeDuplicate             = "duplicate"
	CodeUnknownAgent          = "unknown_agent"
	CodeUnknownDependency     = "unknown_dependency"
	CodeSharedIdentity        = "shared_identity"
	CodeSharedSecret          = "shared_secret"
	CodePrivilegeAggregation  = "privilege_aggregation"
	CodeMissingClassification = "missing_classification"
	CodeNoRequirement         = "no_requirement"
	CodeLegacyWithoutGate     = "legacy_without_gate"
	CodeDeclaredDenied        = "declared_denied"
	CodePolicyError           = "policy_error"
	CodeUnusedDependency      = "unused_dependency"
)

// Finding is one problem of a catalog, with the line it comes from.
type Finding struct {
	Severity string `json:"severity"`
	Code     string `json:"code"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Message  string `json:"message"`
	// Suggestion is the fix the check proposes (e.g. the identity split), if any.
	Suggestion string `json:"suggestion,omitempty"`
}

// String is "file:line: severity code: message".
func (f Finding) String() string {
	s := fmt.Sprintf("%s:%d: %s %s: %s", f.File, f.Line, f.Severity, f.Code, f.Message)
	if f.Suggestion != "" {
		s += "\n\tsuggestion: " + f.Suggestion
	}
	return s
}

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == SevError {
			return true
		}
	}
	return false
}

// Check validates c and flags its rollout risks. az answers whether the policies demand
// approval or attestation on transactional and regulated interactions; nil means the
// catalog's own declarations (NewCatalogAuthorizer). Findings are sorted by line.
func Check(c *Catalog, az Authorizer) []Finding {
	if az == nil {
		az = NewCatalogAuthorizer(c)
	}
	return check(c, newAsker(az))
}

func check(c *Catalog, q *asker) []Finding {
	k := &checker{c: c}
	k.agents()
	k.interactions(q)
	k.dependencies()
	k.workflows()
	sort.SliceStable(k.out, func(i, j int) bool { return k.out[i].Line < k.out[j].Line })
	return k.out
}

type checker struct {
	c   *Catalog
	out []Finding
}

func (k *checker) add(sev, code string, line int, format string, args ...any) *Finding {
	k.out = append(k.out, Finding{Severity: sev, Code: code, File: k.c.File, Line: line, Message: fmt.Sprintf(format, args...)})
	return &k.out[len(k.out)-1]
}

func lineOf(lines map[string]int, key string, def int) int {
	if l, ok := lines[key]; ok {
		return l
	}
	return def
}

func (k *checker) agents() {
	c := k.c
	if c.Version != 0 && c.Version != 1 {
		k.add(SevError, CodeBadValue, 1, "version %d is not supported (want 1)", c.Version)
	}
	seen := map[string]int{}
	ids := map[string][]*Agent{}
	for i := range c.Agents {
		a := &c.Agents[i]
		if a.Name == "" {
			k.add(SevError, CodeMissingField, a.Line, "agent without a name")
			continue
		}
		if prev, dup := seen[a.Name]; dup {
			k.add(SevError, CodeDuplicate, a.Line, "agent %q is declared twice (first at line %d)", a.Name, prev)
			continue
		}
		seen[a.Name] = a.Line
		if a.Owner == "" {
			k.add(SevWarning, CodeMissingField, a.Line, "agent %q has no owner", a.Name)
		}
		if !envs[a.Environment] {
			k.add(SevError, CodeBadValue, lineOf(a.Lines, "environment", a.Line), "agent %q: environment %q must be one of cloud, edge, partner, legacy", a.Name, a.Environment)
		}
		if classRank[a.Class] == 0 {
			k.add(SevError, CodeBadValue, lineOf(a.Lines, "class", a.Line), "agent %q: class %q must be one of read-only, advisory, transactional, regulated", a.Name, a.Class)
		}
		if a.Identity == "" {
			k.add(SevError, CodeMissingField, a.Line, "agent %q has no identity and the catalog no trust_domain to derive one", a.Name)
		} else if id, err := spiffeid.FromString(a.Identity); err != nil {
			k.add(SevError, CodeBadValue, lineOf(a.Lines, "identity", a.Line), "agent %q: identity %q is not a SPIFFE ID: %v", a.Name, a.Identity, err)
		} else if a.TrustDomain != "" && id.TrustDomain().Name() != a.TrustDomain {
			k.add(SevError, CodeBadValue, lineOf(a.Lines, "identity", a.Line), "agent %q: identity %q is outside its trust domain %q", a.Name, a.Identity, a.TrustDomain)
		}
		if a.Identity != "" {
			ids[a.Identity] = append(ids[a.Identity], a)
		}
		if a.Environment == EnvLegacy && a.Gate == "" {
			k.add(SevError, CodeLegacyWithoutGate, a.Line, "legacy system %q has no gate: it would trust network location or a shared secret; put a Warden gate in front of it (gate: NAME)", a.Name)
		}
		if len(a.Responsibilities) > 1 {
			k.privilegeAggregation(a)
		}
	}
	k.undeclaredAggregation()
	for id, as := range ids {
		if len(as) < 2 {
			continue
		}
		names := make([]string, len(as))
		for i, a := range as {
			names[i] = fmt.Sprintf("%s (line %d)", a.Name, a.Line)
		}
		k.add(SevError, CodeSharedIdentity, as[1].Line, "identity %s is shared by %s: a leak of one is a leak of all, and no decision can tell them apart", id, strings.Join(names, ", ")).
			Suggestion = "give each agent its own SPIFFE ID (spiffe://<trust domain>/agent/<name>)"
	}
}

// privilegeAggregation flags one identity carrying several responsibilities and
// proposes one identity per responsibility with the actions that go with it.
func (k *checker) privilegeAggregation(a *Agent) {
	by := map[string][]string{}
	for i := range k.c.Interactions {
		in := &k.c.Interactions[i]
		if in.From != a.Name {
			continue
		}
		r := in.Responsibility
		if r == "" {
			r = "(unassigned)"
		}
		if !contains(by[r], in.Action) {
			by[r] = append(by[r], in.Action)
		}
	}
	var split []string
	for _, r := range a.Responsibilities {
		acts := by[r]
		sort.Strings(acts)
		split = append(split, fmt.Sprintf("%s-%s: [%s]", a.Identity, r, strings.Join(acts, ", ")))
	}
	if acts := by["(unassigned)"]; len(acts) > 0 {
		sort.Strings(acts)
		split = append(split, fmt.Sprintf("unassigned actions to place: [%s]", strings.Join(acts, ", ")))
	}
	k.add(SevWarning, CodePrivilegeAggregation, lineOf(a.Lines, "responsibilities", a.Line),
		"identity %s carries %d responsibilities (%s): compromising it yields all of them", a.Identity, len(a.Responsibilities), strings.Join(a.Responsibilities, ", ")).
		Suggestion = "split into one identity per responsibility: " + strings.Join(split, "; ")
	for i := range k.c.Interactions {
		in := &k.c.Interactions[i]
		if in.From == a.Name && in.Responsibility != "" && !contains(a.Responsibilities, in.Responsibility) {
			k.add(SevWarning, CodeBadValue, lineOf(in.Lines, "responsibility", in.Line), "interaction %s: responsibility %q is not one of agent %q's", in.Name(), in.Responsibility, a.Name)
		}
	}
}

// undeclaredAggregation flags agents that declare no responsibilities but make
// transactional or regulated calls on more than one kind of business object (orders
// and payments, say): one identity doing several jobs nobody wrote down. The split it
// suggests is one identity per object.
func (k *checker) undeclaredAggregation() {
	by := map[string]map[string][]string{} // agent -> resource type -> actions
	var order []string
	for i := range k.c.Interactions {
		in := &k.c.Interactions[i]
		if classRank[in.Classification] < classRank[Transactional] {
			continue
		}
		a, ok := k.c.Agent(in.From)
		if !ok || len(a.Responsibilities) > 0 {
			continue
		}
		if by[a.Name] == nil {
			by[a.Name] = map[string][]string{}
			order = append(order, a.Name)
		}
		rt := in.ResourceType()
		if !contains(by[a.Name][rt], in.Action) {
			by[a.Name][rt] = append(by[a.Name][rt], in.Action)
		}
	}
	for _, name := range order {
		objs := by[name]
		if len(objs) < 2 {
			continue
		}
		a, _ := k.c.Agent(name)
		var kinds, split []string
		for rt := range objs {
			kinds = append(kinds, rt)
		}
		sort.Strings(kinds)
		for _, rt := range kinds {
			acts := objs[rt]
			sort.Strings(acts)
			split = append(split, fmt.Sprintf("%s-%s: [%s]", a.Identity, kebab(rt), strings.Join(acts, ", ")))
		}
		k.add(SevWarning, CodePrivilegeAggregation, a.Line,
			"identity %s makes transactional or regulated calls on %d kinds of object (%s) and declares no responsibilities: compromising it yields all of them",
			a.Identity, len(kinds), strings.Join(kinds, ", ")).
			Suggestion = "declare its responsibilities, or split into one identity per object: " + strings.Join(split, "; ")
	}
}

func (k *checker) interactions(q *asker) {
	c := k.c
	deps := map[string]bool{}
	for _, d := range c.Dependencies {
		deps[d.Name] = true
	}
	seen := map[pathKey]int{}
	for i := range c.Interactions {
		in := &c.Interactions[i]
		name := in.Name()
		ok := true
		if in.From == "" || in.To == "" || in.Action == "" {
			k.add(SevError, CodeMissingField, in.Line, "interaction without from, to or action")
			ok = false
		}
		from, fromOK := c.Agent(in.From)
		if in.From != "" && !fromOK {
			k.add(SevError, CodeUnknownAgent, lineOf(in.Lines, "from", in.Line), "interaction %s: unknown source agent %q", name, in.From)
			ok = false
		}
		if _, toOK := c.Agent(in.To); in.To != "" && !toOK {
			k.add(SevError, CodeUnknownAgent, lineOf(in.Lines, "to", in.Line), "interaction %s: unknown destination agent %q", name, in.To)
			ok = false
		}
		pk := pathKey{in.From, in.To, in.Action}
		if prev, dup := seen[pk]; dup {
			k.add(SevWarning, CodeDuplicate, in.Line, "interaction %s is declared twice (first at line %d)", name, prev)
		} else {
			seen[pk] = in.Line
		}
		switch {
		case in.Classification == "":
			k.add(SevError, CodeMissingClassification, in.Line, "interaction %s has no classification (read-only, advisory, transactional or regulated): its controls cannot be chosen", name)
		case classRank[in.Classification] == 0:
			k.add(SevError, CodeBadValue, lineOf(in.Lines, "classification", in.Line), "interaction %s: classification %q must be one of read-only, advisory, transactional, regulated", name, in.Classification)
		}
		if in.Criticality == "" {
			k.add(SevWarning, CodeMissingField, in.Line, "interaction %s has no business criticality", name)
		} else if crits[in.Criticality] == 0 {
			k.add(SevError, CodeBadValue, lineOf(in.Lines, "criticality", in.Line), "interaction %s: criticality %q must be one of low, medium, high, critical", name, in.Criticality)
		}
		for _, r := range in.Requires {
			if !requires[r] {
				k.add(SevError, CodeBadValue, lineOf(in.Lines, "requires", in.Line), "interaction %s: requirement %q must be approval or attestation", name, r)
			}
		}
		for _, v := range in.Via {
			if !deps[v] {
				k.add(SevError, CodeUnknownDependency, lineOf(in.Lines, "via", in.Line), "interaction %s: unknown dependency %q", name, v)
			}
		}
		if !ok || in.Action == "" {
			continue
		}
		p := q.ask(from, in.Action, in.ResourceType(), classRank[in.Classification] >= classRank[Transactional])
		switch {
		case p.err != nil:
			k.add(SevError, CodePolicyError, in.Line, "interaction %s: the policy engine failed: %v (counted as denied)", name, p.err)
		case !p.strong.Allow:
			k.add(SevWarning, CodeDeclaredDenied, in.Line, "interaction %s is declared but the policies deny it (%s)", name, strings.Join(p.strong.Policies, ", "))
		case classRank[in.Classification] >= classRank[Transactional] && !p.requirement():
			k.add(SevError, CodeNoRequirement, in.Line, "%s interaction %s is allowed with neither approval nor attestation (%s)", in.Classification, name, strings.Join(p.bare.Policies, ", ")).
				Suggestion = "require a fresh attestation and, for money or compliance, two approvals (requires: [attestation, approval] in the catalog, or a Cedar policy with @remedy)"
		}
	}
}

func (k *checker) dependencies() {
	c := k.c
	seen := map[string]int{}
	for i := range c.Dependencies {
		d := &c.Dependencies[i]
		if d.Name == "" {
			k.add(SevError, CodeMissingField, d.Line, "dependency without a name")
			continue
		}
		if prev, dup := seen[d.Name]; dup {
			k.add(SevError, CodeDuplicate, d.Line, "dependency %q is declared twice (first at line %d)", d.Name, prev)
			continue
		}
		seen[d.Name] = d.Line
		if !depKinds[d.Kind] {
			k.add(SevError, CodeBadValue, lineOf(d.Lines, "kind", d.Line), "dependency %q: kind %q must be one of queue, database, secret, integration_account", d.Name, d.Kind)
		}
		users := map[string]bool{}
		var names []string
		for _, u := range d.UsedBy {
			if _, ok := c.Agent(u.Agent); !ok {
				k.add(SevError, CodeUnknownAgent, u.Line, "dependency %q: unknown agent %q", d.Name, u.Agent)
				continue
			}
			if !accesses[u.Access] {
				k.add(SevError, CodeBadValue, u.Line, "dependency %q: access %q must be read, write or readwrite", d.Name, u.Access)
			}
			if !users[u.Agent] {
				users[u.Agent] = true
				names = append(names, u.Agent)
			}
		}
		if len(names) == 0 {
			k.add(SevWarning, CodeUnusedDependency, d.Line, "dependency %q is used by no agent", d.Name)
		}
		if (d.Kind == DepSecret || d.Kind == DepIntegrationAccount) && len(names) > 1 {
			what := "secret"
			if d.Kind == DepIntegrationAccount {
				what = "integration account"
			}
			k.add(SevError, CodeSharedSecret, d.Line, "%s %q is shared by %d agents (%s): each can act as all the others, and the audit trail cannot tell them apart", what, d.Name, len(names), strings.Join(names, ", ")).
				Suggestion = "replace it with one SPIFFE identity per agent, and put a Warden gate in front of the system it opens"
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// kebab turns a resource type into an identity suffix: PurchaseOrder -> purchase-order.
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
