package policy

import (
	"slices"
	"strings"
)

// Drift is one difference between a baseline and a current bundle.
type Drift struct {
	Kind   string // "schema", "policy", "exception", "ratelimit"
	ID     string
	Change string // "added", "removed", "changed"
}

func (d Drift) String() string {
	sign := map[string]string{"added": "+", "removed": "-", "changed": "~"}[d.Change]
	return sign + " " + d.Kind + " " + d.ID + " (" + d.Change + ")"
}

// Diff reports what changed from baseline to current: policies by @id (exception
// permits excluded; exceptions are compared as exceptions), exceptions by id,
// rate limits by id, and the schema. The result is sorted by kind then id.
func Diff(baseline, current *Engine) []Drift {
	var out []Drift
	if string(baseline.src[SchemaFile]) != string(current.src[SchemaFile]) && baseline.schemaText() != current.schemaText() {
		out = append(out, Drift{Kind: "schema", ID: SchemaFile, Change: "changed"})
	}
	cmpMaps := func(kind string, a, b map[string]string) {
		for id, av := range a {
			bv, ok := b[id]
			switch {
			case !ok:
				out = append(out, Drift{kind, id, "removed"})
			case av != bv:
				out = append(out, Drift{kind, id, "changed"})
			}
		}
		for id := range b {
			if _, ok := a[id]; !ok {
				out = append(out, Drift{kind, id, "added"})
			}
		}
	}
	cmpMaps("policy", baseline.policyTexts(), current.policyTexts())
	cmpMaps("exception", baseline.exceptionTexts(), current.exceptionTexts())
	cmpMaps("ratelimit", baseline.limitTexts(), current.limitTexts())
	slices.SortFunc(out, func(a, b Drift) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func (e *Engine) schemaText() string { return e.schemaCanon }

func (e *Engine) policyTexts() map[string]string {
	m := map[string]string{}
	for _, p := range e.meta {
		if p.Exception == nil {
			m[p.ID] = p.Text
		}
	}
	return m
}

func (e *Engine) exceptionTexts() map[string]string {
	m := map[string]string{}
	for _, x := range e.exceptions {
		m[x.ID] = x.canonical()
	}
	return m
}

func (e *Engine) limitTexts() map[string]string {
	m := map[string]string{}
	for _, l := range e.limits.limits {
		m[l.ID] = l.canonical()
	}
	return m
}
