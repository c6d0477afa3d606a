package inventory

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Formats accepted by Write.
var Formats = []string{"text", "json", "dot", "svg"}

// Write renders r in format (text, json, dot or svg).
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "", "text":
		return r.WriteText(w)
	case "json":
		return r.WriteJSON(w)
	case "dot":
		return r.WriteDOT(w)
	case "svg":
		return r.WriteSVG(w)
	}
	return fmt.Errorf("inventory: unknown format %q (want %s)", format, strings.Join(Formats, ", "))
}

// WriteJSON writes the whole report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// textTop bounds the lists of the text report; JSON carries everything.
const textTop = 10

// WriteText writes the human report. Its first lines are the headlines.
func (r *Report) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	s := r.Summary
	fmt.Fprintf(b, "Warden inventory report: %s\n", r.Catalog)
	fmt.Fprintf(b, "decisions from: %s\n", r.Engine)
	fmt.Fprintf(b, "%s, %s in %s, %s (%d shared)\n", plural(s.Agents, "agent", "agents"),
		plural(s.Interactions, "interaction", "interactions"), plural(s.Workflows, "workflow", "workflows"),
		plural(s.Dependencies, "dependency", "dependencies"), s.SharedDependencies)
	for _, h := range r.Headlines {
		fmt.Fprintf(b, "  * %s\n", h)
	}

	fmt.Fprintf(b, "\nBlast radius (if this agent is compromised; top %d of %d)\n", min(textTop, len(r.BlastRadius)), len(r.BlastRadius))
	fmt.Fprintf(b, "  %-24s %-14s %6s %9s %8s %10s %10s\n", "agent", "class", "direct", "sensitive", "reaches", "transitive", "sensitive")
	for i, ar := range r.BlastRadius {
		if i >= textTop {
			break
		}
		fmt.Fprintf(b, "  %-24s %-14s %6d %9d %8d %10d %10d\n", ar.Agent, ar.Class, len(ar.Direct), ar.DirectSensitive, ar.ReachableAgents, ar.Transitive, ar.TransitiveSensitive)
	}
	for i, ar := range r.BlastRadius {
		if i >= textTop || len(ar.Paths) == 0 {
			continue
		}
		fmt.Fprintf(b, "  %s can make act:\n", ar.Agent)
		for _, p := range ar.Paths {
			fmt.Fprintf(b, "    %s\n", p)
		}
	}

	fmt.Fprintf(b, "\nChokepoints (dependencies ranked by workflows depending on them)\n")
	for i, cp := range r.Chokepoints {
		if i >= textTop {
			break
		}
		shared := ""
		if cp.Shared {
			shared = " SHARED"
		}
		fmt.Fprintf(b, "  %2d. %-28s %-20s %3d workflows (%d sensitive), %s%s: %s\n", i+1, cp.Name, cp.Kind,
			cp.Workflows, cp.SensitiveWorkflows, plural(len(cp.Users), "user", "users"), shared, strings.Join(firstN(cp.Users, 8), ", "))
	}

	fmt.Fprintf(b, "\nRollout order by risk (top %d of %d workflows)\n", min(2*textTop, len(r.Rollout)), len(r.Rollout))
	for i, st := range r.Rollout {
		if i >= 2*textTop {
			break
		}
		fmt.Fprintf(b, "  %2d. [phase %d, score %3d] %-34s %-13s %-8s -> %s\n", st.Rank, st.Phase, st.Score, st.Workflow, st.Class, st.Criticality, st.Controls)
		if len(st.Reasons) > 0 {
			fmt.Fprintf(b, "      %s\n", strings.Join(st.Reasons, "; "))
		}
	}

	fmt.Fprintf(b, "\nCatalog vs enforcement\n")
	fmt.Fprintf(b, "  allowed by the policies but not declared: %d\n", len(r.Undeclared))
	for i, u := range r.Undeclared {
		if i >= textTop {
			fmt.Fprintf(b, "    ... %d more\n", len(r.Undeclared)-textTop)
			break
		}
		fmt.Fprintf(b, "    %s may %s (on %s; served by %s) [%s]\n", u.Agent, u.Action, u.Resource, strings.Join(u.Servers, ", "), strings.Join(u.Policies, ", "))
	}
	fmt.Fprintf(b, "  declared but denied by the policies: %d\n", len(r.DeclaredDenied))
	for i, d := range r.DeclaredDenied {
		if i >= textTop {
			fmt.Fprintf(b, "    ... %d more\n", len(r.DeclaredDenied)-textTop)
			break
		}
		fmt.Fprintf(b, "    %s:%d: %s [%s]\n", r.Catalog, d.Line, d.Interaction, strings.Join(d.Policies, ", "))
	}

	fmt.Fprintf(b, "\nFindings (%s, %s; `warden inventory check` for all)\n", plural(s.Errors, "error", "errors"), plural(s.Warnings, "warning", "warnings"))
	for i, f := range r.Findings {
		if i >= 2*textTop {
			fmt.Fprintf(b, "  ... %d more\n", len(r.Findings)-2*textTop)
			break
		}
		fmt.Fprintf(b, "  %s\n", strings.ReplaceAll(f.String(), "\n", "\n  "))
	}
	return b.Flush()
}

func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string{}, s[:n]...), fmt.Sprintf("+%d more", len(s)-n))
}

// Class colours, shared by DOT and SVG.
var classColor = map[string]string{
	ReadOnly:      "#2e7d32",
	Advisory:      "#1565c0",
	Transactional: "#ef6c00",
	Regulated:     "#c62828",
	"":            "#757575",
}

func colorOf(class string) string {
	if c, ok := classColor[class]; ok {
		return c
	}
	return classColor[""]
}

// zones groups the catalog's agents by zone, zones and members sorted by name.
func (r *Report) zones() ([]string, map[string][]*Agent) {
	by := map[string][]*Agent{}
	seen := map[string]bool{}
	for i := range r.cat.Agents {
		a := &r.cat.Agents[i]
		if a.Name == "" || seen[a.Name] {
			continue
		}
		seen[a.Name] = true
		z := a.Zone
		if z == "" {
			z = "(no zone)"
		}
		by[z] = append(by[z], a)
	}
	names := make([]string, 0, len(by))
	for z, as := range by {
		names = append(names, z)
		sort.Slice(as, func(i, j int) bool { return as[i].Name < as[j].Name })
	}
	sort.Strings(names)
	return names, by
}

// WriteDOT writes a Graphviz digraph: one cluster per zone, edges coloured by class,
// undeclared allowed paths dashed, declared-but-denied ones dotted.
func (r *Report) WriteDOT(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintln(b, "digraph inventory {")
	fmt.Fprintln(b, "  rankdir=LR; node [shape=box, style=rounded, fontname=\"Helvetica\"]; edge [fontname=\"Helvetica\", fontsize=9];")
	zs, by := r.zones()
	for i, z := range zs {
		fmt.Fprintf(b, "  subgraph cluster_%d {\n    label=%q; style=rounded; color=\"#9e9e9e\";\n", i, z)
		for _, a := range by[z] {
			fmt.Fprintf(b, "    %q [label=%q];\n", a.Name, a.Name+"\n"+a.Class+" / "+a.Environment)
		}
		fmt.Fprintln(b, "  }")
	}
	for _, e := range r.Edges {
		style := "solid"
		switch {
		case !e.Allowed:
			style = "dotted"
		case !e.Declared:
			style = "dashed"
		}
		fmt.Fprintf(b, "  %q -> %q [label=%q, color=%q, fontcolor=%q, style=%s];\n", e.From, e.To, e.Action, colorOf(e.Class), colorOf(e.Class), style)
	}
	fmt.Fprintln(b, "}")
	return b.Flush()
}
