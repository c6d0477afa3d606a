package inventory

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"sort"
	"strings"
)

// SVG geometry (pixels).
const (
	svgMargin = 24
	svgColW   = 230
	svgGapX   = 90
	svgNodeW  = 190
	svgNodeH  = 44
	svgGapY   = 18
	svgHeader = 110
	svgDepH   = 36
)

type pt struct{ x, y int }

// WriteSVG draws the catalog itself, no external tool: agents as boxes grouped in one
// column per zone, interactions as arrows coloured by class (read-only green, advisory
// blue, transactional orange, regulated red; dashed when allowed but undeclared, dotted
// grey when declared but denied), shared dependencies as a bottom row linked to their
// users. Parallel interactions between two agents are one arrow listing the actions,
// coloured by the most sensitive class.
func (r *Report) WriteSVG(w io.Writer) error {
	b := bufio.NewWriter(w)
	zs, by := r.zones()
	pos := map[string]pt{}
	col := map[string]int{}
	maxRows := 0
	for i, z := range zs {
		for j, a := range by[z] {
			pos[a.Name] = pt{svgMargin + i*(svgColW+svgGapX) + (svgColW-svgNodeW)/2, svgHeader + 30 + j*(svgNodeH+svgGapY)}
			col[a.Name] = i
		}
		maxRows = max(maxRows, len(by[z]))
	}
	width := max(2*svgMargin+len(zs)*svgColW+(len(zs)-1)*svgGapX, 720)
	depY := svgHeader + 30 + maxRows*(svgNodeH+svgGapY) + 50
	var deps []Chokepoint
	for _, cp := range r.Chokepoints {
		if cp.Shared {
			deps = append(deps, cp)
		}
	}
	height := depY + 20
	if len(deps) > 0 {
		height = depY + svgDepH + 40
	}

	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(b, "<title>%s</title>\n", esc("Warden inventory: "+r.Catalog))
	b.WriteString("<defs>\n")
	for _, cl := range []string{ReadOnly, Advisory, Transactional, Regulated, ""} {
		fmt.Fprintf(b, `<marker id="arrow-%s" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>`+"\n", markerID(cl), colorOf(cl))
	}
	b.WriteString("</defs>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n")
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="16" font-weight="bold">%s</text>`+"\n", svgMargin, 28, esc("Workflow inventory: "+r.Catalog))
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11" fill="#555">%s</text>`+"\n", svgMargin, 46, esc("decisions from: "+r.Engine))
	// Legend.
	lx := svgMargin
	for _, cl := range []string{ReadOnly, Advisory, Transactional, Regulated} {
		fmt.Fprintf(b, `<line x1="%d" y1="66" x2="%d" y2="66" stroke="%s" stroke-width="3" marker-end="url(#arrow-%s)"/><text x="%d" y="70" font-size="11">%s</text>`+"\n", lx, lx+30, colorOf(cl), markerID(cl), lx+36, cl)
		lx += 130
	}
	fmt.Fprintf(b, `<line x1="%d" y1="66" x2="%d" y2="66" stroke="#555" stroke-width="2" stroke-dasharray="6 4"/><text x="%d" y="70" font-size="11">allowed, undeclared</text>`+"\n", lx, lx+30, lx+36)
	lx += 150
	fmt.Fprintf(b, `<line x1="%d" y1="66" x2="%d" y2="66" stroke="#9e9e9e" stroke-width="2" stroke-dasharray="2 3"/><text x="%d" y="70" font-size="11">declared, denied</text>`+"\n", lx, lx+30, lx+36)

	// Zones.
	for i, z := range zs {
		x := svgMargin + i*(svgColW+svgGapX)
		h := 40 + len(by[z])*(svgNodeH+svgGapY)
		fmt.Fprintf(b, `<g class="zone"><rect x="%d" y="%d" width="%d" height="%d" rx="10" fill="#f5f5f5" stroke="#bdbdbd"/><text x="%d" y="%d" font-size="13" font-weight="bold" fill="#424242">zone: %s</text></g>`+"\n",
			x, svgHeader, svgColW, h, x+10, svgHeader+20, esc(z))
	}

	// Edges, merged per (from, to).
	type merged struct {
		from, to string
		actions  []string
		class    string
		declared bool
		allowed  bool
	}
	var keys []string
	m := map[string]*merged{}
	for _, e := range r.Edges {
		k := e.From + "\x00" + e.To
		me := m[k]
		if me == nil {
			me = &merged{from: e.From, to: e.To, declared: true, allowed: true}
			m[k] = me
			keys = append(keys, k)
		}
		if !contains(me.actions, e.Action) {
			me.actions = append(me.actions, e.Action)
		}
		if classRank[e.Class] > classRank[me.class] {
			me.class = e.Class
		}
		me.declared = me.declared && e.Declared
		me.allowed = me.allowed && e.Allowed
	}
	sort.Strings(keys)
	b.WriteString("<g class=\"edges\" fill=\"none\">\n")
	for _, k := range keys {
		me := m[k]
		p, ok1 := pos[me.from]
		q, ok2 := pos[me.to]
		if !ok1 || !ok2 {
			continue
		}
		var x1, x2, c1, c2 int
		y1, y2 := p.y+svgNodeH/2, q.y+svgNodeH/2
		switch {
		case col[me.from] < col[me.to]:
			x1, x2 = p.x+svgNodeW, q.x
			c1, c2 = x1+60, x2-60
		case col[me.from] > col[me.to]:
			x1, x2 = p.x, q.x+svgNodeW
			c1, c2 = x1-60, x2+60
		default: // same zone: loop out on the right
			x1, x2 = p.x+svgNodeW, q.x+svgNodeW
			c1, c2 = x1+50, x2+50
			y1, y2 = y1-6, y2+6
		}
		color, dash, marker := colorOf(me.class), "", markerID(me.class)
		switch {
		case !me.allowed:
			color, dash, marker = "#9e9e9e", ` stroke-dasharray="2 3"`, markerID("")
		case !me.declared:
			dash = ` stroke-dasharray="6 4"`
		}
		label := strings.Join(me.actions, ", ")
		fmt.Fprintf(b, `<path d="M%d,%d C%d,%d %d,%d %d,%d" stroke="%s" stroke-width="2"%s marker-end="url(#arrow-%s)" data-class="%s"><title>%s</title></path>`+"\n",
			x1, y1, c1, y1, c2, y2, x2, y2, color, dash, marker, esc(me.class), esc(me.from+" -> "+me.to+": "+label))
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="9" fill="%s" text-anchor="middle">%s</text>`+"\n", (x1+x2+c1+c2)/4, (y1+y2)/2-4, color, esc(label))
	}
	b.WriteString("</g>\n")

	// Dependencies: links first, boxes on top.
	for i, d := range deps {
		x := svgMargin + i*(svgNodeW+30)
		for _, u := range d.Users {
			if p, ok := pos[u]; ok {
				fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#8d6e63" stroke-width="1" stroke-dasharray="3 3"/>`+"\n", p.x+svgNodeW/2, p.y+svgNodeH, x+svgNodeW/2, depY)
			}
		}
	}
	for i, d := range deps {
		x := svgMargin + i*(svgNodeW+30)
		fmt.Fprintf(b, `<g class="dependency"><rect x="%d" y="%d" width="%d" height="%d" rx="18" fill="#efebe9" stroke="#8d6e63" stroke-width="2"/><text x="%d" y="%d" font-size="11" text-anchor="middle">%s</text><text x="%d" y="%d" font-size="9" text-anchor="middle" fill="#5d4037">%s</text></g>`+"\n",
			x, depY, svgNodeW, svgDepH, x+svgNodeW/2, depY+15, esc(d.Name), x+svgNodeW/2, depY+28, esc(fmt.Sprintf("%s, %d users, %d workflows", d.Kind, len(d.Users), d.Workflows)))
	}

	// Agents on top of edges.
	for _, z := range zs {
		for _, a := range by[z] {
			p := pos[a.Name]
			fmt.Fprintf(b, `<g class="agent"><rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="#ffffff" stroke="%s" stroke-width="2"/><text x="%d" y="%d" font-size="12" font-weight="bold" text-anchor="middle">%s</text><text x="%d" y="%d" font-size="10" text-anchor="middle" fill="#616161">%s</text></g>`+"\n",
				p.x, p.y, svgNodeW, svgNodeH, colorOf(a.Class), p.x+svgNodeW/2, p.y+18, esc(a.Name), p.x+svgNodeW/2, p.y+34, esc(a.Class+" / "+a.Environment))
		}
	}
	b.WriteString("</svg>\n")
	return b.Flush()
}

func markerID(class string) string {
	if class == "" {
		return "none"
	}
	return class
}

func esc(s string) string { return html.EscapeString(s) }
