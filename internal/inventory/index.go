package inventory

// Index answers, on the request path of a gate, whether a call follows a declared
// interaction. A call on an undeclared path is not refused by the index (the policies
// decide); it is an anomaly, a trigger for event-driven re-attestation.
//
// An Index is immutable after NewIndex and safe for concurrent use.
type Index struct {
	names map[string]string // SPIFFE ID or name -> agent name
	paths map[pathKey]*Interaction
}

type pathKey struct{ from, to, action string }

// ReasonUndeclaredPath is the stable reason code a gate attaches to the anomaly event
// (and metric label) for a call IsDeclared reports false for.
const ReasonUndeclaredPath = "undeclared_path"

// NewIndex indexes c. Agents are known by name and by SPIFFE ID.
func NewIndex(c *Catalog) *Index {
	x := &Index{
		names: make(map[string]string, 2*len(c.Agents)),
		paths: make(map[pathKey]*Interaction, len(c.Interactions)),
	}
	for i := range c.Agents {
		a := &c.Agents[i]
		x.names[a.Name] = a.Name
		if a.Identity != "" {
			x.names[a.Identity] = a.Name
		}
	}
	for i := range c.Interactions {
		in := &c.Interactions[i]
		k := pathKey{in.From, in.To, in.Action}
		if _, dup := x.paths[k]; !dup {
			x.paths[k] = in
		}
	}
	return x
}

// LoadIndex loads the catalog at path and indexes it. It does not run Check; a gate
// should refuse to start on a catalog that does not pass `warden inventory check`.
func LoadIndex(path string) (*Index, error) {
	c, err := Load(path)
	if err != nil {
		return nil, err
	}
	return NewIndex(c), nil
}

// IsDeclared reports whether the catalog declares that src may ask dst to perform action.
// src and dst are agent names or SPIFFE IDs (spiffe://supplychain.example/agent/procurement);
// an unknown agent is never declared. Matching is exact: no prefix or wildcard.
func (x *Index) IsDeclared(src, dst, action string) bool {
	_, ok := x.Declared(src, dst, action)
	return ok
}

// Declared returns the declared interaction for (src, dst, action), so that a gate can
// read its classification and workflow for the anomaly event.
func (x *Index) Declared(src, dst, action string) (*Interaction, bool) {
	if x == nil {
		return nil, false
	}
	s, ok := x.names[src]
	if !ok {
		return nil, false
	}
	d, ok := x.names[dst]
	if !ok {
		return nil, false
	}
	in, ok := x.paths[pathKey{s, d, action}]
	return in, ok
}
