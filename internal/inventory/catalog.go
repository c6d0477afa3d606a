package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxCatalogBytes bounds the size of a catalog file Load and Parse accept (64 MiB). The
// generated benchmark catalog of 100,000 interactions is about 12 MiB.
const MaxCatalogBytes = 64 << 20

// Classifications of an interaction, from the least to the most sensitive (the source
// document's four risk classes). Agents carry the same classes.
const (
	ReadOnly      = "read-only"
	Advisory      = "advisory"
	Transactional = "transactional"
	Regulated     = "regulated"
)

// Environments an agent runs in.
const (
	EnvCloud   = "cloud"
	EnvEdge    = "edge"
	EnvPartner = "partner"
	EnvLegacy  = "legacy"
)

// Dependency kinds.
const (
	DepQueue              = "queue"
	DepDatabase           = "database"
	DepSecret             = "secret"
	DepIntegrationAccount = "integration_account"
)

// Access modes of a dependency user.
const (
	AccessRead      = "read"
	AccessWrite     = "write"
	AccessReadWrite = "readwrite"
)

// Requirements an interaction may declare in the catalog (`requires:`).
const (
	RequireApproval    = "approval"
	RequireAttestation = "attestation"
)

var (
	classRank = map[string]int{ReadOnly: 1, Advisory: 2, Transactional: 3, Regulated: 4}
	envs      = map[string]bool{EnvCloud: true, EnvEdge: true, EnvPartner: true, EnvLegacy: true}
	depKinds  = map[string]bool{DepQueue: true, DepDatabase: true, DepSecret: true, DepIntegrationAccount: true}
	accesses  = map[string]bool{AccessRead: true, AccessWrite: true, AccessReadWrite: true}
	crits     = map[string]int{"low": 1, "medium": 2, "high": 3, "critical": 4}
	requires  = map[string]bool{RequireApproval: true, RequireAttestation: true}
)

// Catalog is a parsed workflow inventory. Line fields give the 1-based line of the
// entry in File, so every finding can point at its source.
type Catalog struct {
	File         string
	Version      int
	TrustDomain  string
	Agents       []Agent
	Interactions []Interaction
	Dependencies []Dependency
	// Workflows declare steps and transitions that gates check (workflows.go).
	Workflows []Workflow

	byName map[string]int // agent name -> index in Agents
}

// Agent is one agent (or legacy system) of the catalog.
type Agent struct {
	Name        string
	Owner       string
	Environment string
	Zone        string
	Class       string
	Role        string
	// TrustDomain defaults to the catalog's trust_domain.
	TrustDomain string
	// Identity is the agent's SPIFFE ID; it defaults to spiffe://<trust domain>/agent/<name>.
	Identity string
	// Responsibilities are the duties this one identity carries; more than one is
	// privilege aggregation.
	Responsibilities []string
	// Gate names the Warden gate in front of a legacy system.
	Gate string

	Line  int
	Lines map[string]int // key -> line of that key
}

// Interaction is one declared agent-to-agent call: From asks To to perform Action.
type Interaction struct {
	ID             string
	Workflow       string
	From           string
	To             string
	Action         string
	Resource       string
	Data           []string
	Environment    string
	Criticality    string
	Classification string
	Responsibility string
	// Requires lists what the catalog expects enforcement to demand (approval,
	// attestation); the catalog-only authorizer enforces it.
	Requires []string
	// Via names dependencies (queues, accounts) the interaction travels through.
	Via []string

	Line  int
	Lines map[string]int

	rtype string // ResourceType, computed once by Parse
}

// Dependency is a queue, database, secret or integration account and who uses it.
type Dependency struct {
	Name   string
	Kind   string
	Owner  string
	UsedBy []Use

	Line  int
	Lines map[string]int
}

// Use is one agent's use of a dependency. In YAML it is either a bare agent name
// (access readwrite) or {agent: NAME, access: read|write|readwrite}.
type Use struct {
	Agent  string
	Access string
	Line   int
}

// ParseError is a catalog that cannot be read: YAML syntax, a wrong type, an unknown
// key. Line is 0 when the YAML library did not report one.
type ParseError struct {
	File string
	Line int
	Msg  string
	Err  error // ErrTooLarge, or nil
}

// Unwrap returns Err, so that errors.Is(err, ErrTooLarge) works.
func (e *ParseError) Unwrap() error { return e.Err }

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ErrTooLarge is returned (wrapped in a ParseError) for input above MaxCatalogBytes.
var ErrTooLarge = errors.New("catalog larger than 64 MiB")

// Load reads and parses the catalog at path. Errors are a *ParseError (syntax, shape,
// ErrTooLarge; with the line when known) or, wrapped, the *os.PathError of the file.
func Load(path string) (*Catalog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxCatalogBytes+1))
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return Parse(path, data)
}

// lineRE finds the line yaml.v3 puts in its messages. For some syntax errors that is
// the line where the enclosing block starts, not the line of the mistake.
var lineRE = regexp.MustCompile(`line (\d+)`)

// Parse parses a catalog; file is used in errors only. It checks the shape (known keys,
// types); Check reports everything about the content.
func Parse(file string, data []byte) (*Catalog, error) {
	if len(data) > MaxCatalogBytes {
		return nil, &ParseError{File: file, Msg: ErrTooLarge.Error(), Err: ErrTooLarge}
	}
	if len(data) >= chunkedMin {
		if c, ok := parseChunked(file, data); ok {
			return c, nil
		}
	}
	return parseSequential(file, data)
}

// parseSequential is the reference decoder: one yaml.v3 pass over the whole document.
func parseSequential(file string, data []byte) (*Catalog, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ParseError{File: file, Msg: "empty catalog"}
		}
		return nil, yamlError(file, err)
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil, &ParseError{File: file, Line: doc.Line, Msg: "catalog must be a mapping with agents, interactions and dependencies"}
	}
	c := &Catalog{File: file}
	if err := checkKeys(file, doc, "catalog", "version", "trust_domain", "agents", "interactions", "dependencies", "workflows"); err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		var err error
		switch k.Value {
		case "version":
			err = v.Decode(&c.Version)
		case "trust_domain":
			err = decodeString(file, v, &c.TrustDomain)
		case "agents":
			err = decodeList(file, v, "agents", &c.Agents, decodeAgent)
		case "interactions":
			err = decodeList(file, v, "interactions", &c.Interactions, decodeInteraction)
		case "dependencies":
			err = decodeList(file, v, "dependencies", &c.Dependencies, decodeDependency)
		case "workflows":
			err = decodeList(file, v, "workflows", &c.Workflows, decodeWorkflow)
		}
		if err != nil {
			return nil, yamlError(file, err)
		}
	}
	c.index()
	return c, nil
}

func (c *Catalog) index() {
	for i := range c.Interactions {
		in := &c.Interactions[i]
		in.rtype = in.Resource
		if in.rtype == "" {
			in.rtype = ResourceTypeOf(in.Action)
		}
	}
	c.byName = make(map[string]int, len(c.Agents))
	for i := range c.Agents {
		a := &c.Agents[i]
		if a.TrustDomain == "" {
			a.TrustDomain = c.TrustDomain
		}
		if a.Identity == "" && a.Name != "" && a.TrustDomain != "" {
			a.Identity = "spiffe://" + a.TrustDomain + "/agent/" + a.Name
		}
		if _, dup := c.byName[a.Name]; !dup {
			c.byName[a.Name] = i
		}
	}
}

// Agent returns the agent named name.
func (c *Catalog) Agent(name string) (*Agent, bool) {
	i, ok := c.byName[name]
	if !ok {
		return nil, false
	}
	return &c.Agents[i], true
}

// WorkflowName is the interaction's workflow, or "FROM->TO:ACTION" when it names none.
func (in *Interaction) WorkflowName() string {
	if in.Workflow != "" {
		return in.Workflow
	}
	return in.From + "->" + in.To + ":" + in.Action
}

// Name identifies the interaction in messages: "ID (FROM -> TO: ACTION)", or the path
// alone when it has no id.
func (in *Interaction) Name() string {
	p := in.From + " -> " + in.To + ": " + in.Action
	if in.ID != "" {
		return in.ID + " (" + p + ")"
	}
	return p
}

// ResourceType is the declared resource, or the action's object in CamelCase
// (purchase_order.create -> PurchaseOrder).
func (in *Interaction) ResourceType() string {
	if in.rtype != "" {
		return in.rtype
	}
	if in.Resource != "" {
		return in.Resource
	}
	return ResourceTypeOf(in.Action)
}

// ResourceTypeOf derives a resource type from an action name: the part before the first
// dot, snake_case turned into CamelCase.
func ResourceTypeOf(action string) string {
	obj, _, _ := strings.Cut(action, ".")
	var b strings.Builder
	for _, part := range strings.Split(obj, "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]))
		b.WriteString(part[1:])
	}
	return b.String()
}

func yamlError(file string, err error) error {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := lineRE.FindStringSubmatchIndex(msg); m != nil {
		line, _ = strconv.Atoi(msg[m[2]:m[3]])
		if m[0] == 0 {
			msg = strings.TrimPrefix(msg[m[1]:], ": ")
		}
	}
	if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
		msg = strings.Join(te.Errors, "; ")
	}
	return &ParseError{File: file, Line: line, Msg: msg}
}

func checkKeys(file string, n *yaml.Node, what string, allowed ...string) error {
	if n.Kind != yaml.MappingNode {
		return &ParseError{File: file, Line: n.Line, Msg: what + " must be a mapping"}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		found := false
		for _, a := range allowed {
			if k.Value == a {
				found = true
				break
			}
		}
		if !found {
			sort.Strings(allowed)
			return &ParseError{File: file, Line: k.Line, Msg: fmt.Sprintf("unknown key %q in %s (known: %s)", k.Value, what, strings.Join(allowed, ", "))}
		}
	}
	return nil
}

func decodeList[T any](file string, n *yaml.Node, what string, out *[]T, one func(string, *yaml.Node) (T, error)) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return &ParseError{File: file, Line: n.Line, Msg: what + " must be a list"}
	}
	*out = make([]T, 0, len(n.Content))
	for _, item := range n.Content {
		v, err := one(file, item)
		if err != nil {
			return err
		}
		*out = append(*out, v)
	}
	return nil
}

func decodeString(file string, n *yaml.Node, out *string) error {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!null") {
		if n.Kind == yaml.ScalarNode && n.Tag != "!!map" && n.Tag != "!!seq" {
			*out = n.Value // numbers and booleans read as their text
			return nil
		}
		return &ParseError{File: file, Line: n.Line, Msg: "expected a string"}
	}
	*out = n.Value
	return nil
}

func decodeStrings(file string, n *yaml.Node, out *[]string) error {
	if n.Kind == yaml.ScalarNode {
		if n.Tag == "!!null" {
			return nil
		}
		*out = []string{n.Value} // a single value is a list of one
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return &ParseError{File: file, Line: n.Line, Msg: "expected a list of strings"}
	}
	for _, item := range n.Content {
		var s string
		if err := decodeString(file, item, &s); err != nil {
			return err
		}
		*out = append(*out, s)
	}
	return nil
}

// fields walks a mapping node, calling set for each key after checking it is known.
func fields(file string, n *yaml.Node, what string, known []string, set func(key string, v *yaml.Node) error) (map[string]int, error) {
	if err := checkKeys(file, n, what, known...); err != nil {
		return nil, err
	}
	lines := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if _, dup := lines[k.Value]; dup {
			return nil, &ParseError{File: file, Line: k.Line, Msg: fmt.Sprintf("duplicate key %q in %s", k.Value, what)}
		}
		lines[k.Value] = k.Line
		if err := set(k.Value, v); err != nil {
			return nil, err
		}
	}
	return lines, nil
}

var agentKeys = []string{"name", "owner", "environment", "zone", "class", "role", "trust_domain", "identity", "responsibilities", "gate"}

func decodeAgent(file string, n *yaml.Node) (Agent, error) {
	var a Agent
	lines, err := fields(file, n, "agent", agentKeys, func(k string, v *yaml.Node) error {
		switch k {
		case "name":
			return decodeString(file, v, &a.Name)
		case "owner":
			return decodeString(file, v, &a.Owner)
		case "environment":
			return decodeString(file, v, &a.Environment)
		case "zone":
			return decodeString(file, v, &a.Zone)
		case "class":
			return decodeString(file, v, &a.Class)
		case "role":
			return decodeString(file, v, &a.Role)
		case "trust_domain":
			return decodeString(file, v, &a.TrustDomain)
		case "identity":
			return decodeString(file, v, &a.Identity)
		case "responsibilities":
			return decodeStrings(file, v, &a.Responsibilities)
		case "gate":
			return decodeString(file, v, &a.Gate)
		}
		return nil
	})
	a.Line, a.Lines = n.Line, lines
	return a, err
}

var interactionKeys = []string{"id", "workflow", "from", "to", "action", "resource", "data", "environment", "criticality", "classification", "responsibility", "requires", "via"}

func decodeInteraction(file string, n *yaml.Node) (Interaction, error) {
	var in Interaction
	lines, err := fields(file, n, "interaction", interactionKeys, func(k string, v *yaml.Node) error {
		switch k {
		case "id":
			return decodeString(file, v, &in.ID)
		case "workflow":
			return decodeString(file, v, &in.Workflow)
		case "from":
			return decodeString(file, v, &in.From)
		case "to":
			return decodeString(file, v, &in.To)
		case "action":
			return decodeString(file, v, &in.Action)
		case "resource":
			return decodeString(file, v, &in.Resource)
		case "data":
			return decodeStrings(file, v, &in.Data)
		case "environment":
			return decodeString(file, v, &in.Environment)
		case "criticality":
			return decodeString(file, v, &in.Criticality)
		case "classification":
			return decodeString(file, v, &in.Classification)
		case "responsibility":
			return decodeString(file, v, &in.Responsibility)
		case "requires":
			return decodeStrings(file, v, &in.Requires)
		case "via":
			return decodeStrings(file, v, &in.Via)
		}
		return nil
	})
	in.Line, in.Lines = n.Line, lines
	return in, err
}

func decodeDependency(file string, n *yaml.Node) (Dependency, error) {
	var d Dependency
	lines, err := fields(file, n, "dependency", []string{"name", "kind", "owner", "used_by"}, func(k string, v *yaml.Node) error {
		switch k {
		case "name":
			return decodeString(file, v, &d.Name)
		case "kind":
			return decodeString(file, v, &d.Kind)
		case "owner":
			return decodeString(file, v, &d.Owner)
		case "used_by":
			return decodeList(file, v, "used_by", &d.UsedBy, decodeUse)
		}
		return nil
	})
	d.Line, d.Lines = n.Line, lines
	return d, err
}

func decodeUse(file string, n *yaml.Node) (Use, error) {
	u := Use{Line: n.Line}
	if n.Kind == yaml.ScalarNode {
		u.Access = AccessReadWrite
		return u, decodeString(file, n, &u.Agent)
	}
	_, err := fields(file, n, "used_by entry", []string{"agent", "access"}, func(k string, v *yaml.Node) error {
		switch k {
		case "agent":
			return decodeString(file, v, &u.Agent)
		case "access":
			return decodeString(file, v, &u.Access)
		}
		return nil
	})
	if u.Access == "" {
		u.Access = AccessReadWrite
	}
	return u, err
}
