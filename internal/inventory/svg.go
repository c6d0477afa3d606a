package inventory

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
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
	// Zones on a grid of ceil(sqrt(n)) columns; agents stacked inside their zone. Row
	// heights follow the tallest zone of the row.
	cols := 1
	for cols*cols < len(zs) {
		cols++
	}
	rows := (len(zs) + cols - 1) / cols
	rowH := make([]int, rows)
	for i, z := range zs {
		rowH[i/cols] = max(rowH[i/cols], 40+len(by[z])*(svgNodeH+svgGapY))
	}
	rowY := make([]int, rows+1)
	rowY[0] = svgHeader
	for i := 0; i < rows; i++ {
		rowY[i+1] = rowY[i] + rowH[i] + svgGapX/2
	}
	zoneXY := make([]pt, len(zs))
	pos := map[string]pt{}
	for i, z := range zs {
		zoneXY[i] = pt{svgMargin + (i%cols)*(svgColW+svgGapX), rowY[i/cols]}
		for j, a := range by[z] {
			pos[a.Name] = pt{zoneXY[i].x + (svgColW-svgNodeW)/2, zoneXY[i].y + 30 + j*(svgNodeH+svgGapY)}
		}
	}
	width := max(2*svgMargin+min(cols, len(zs))*svgColW+(min(cols, len(zs))-1)*svgGapX, 760)
	depY := rowY[rows] + 20
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
		x, y := zoneXY[i].x, zoneXY[i].y
		h := 40 + len(by[z])*(svgNodeH+svgGapY)
		fmt.Fprintf(b, `<g class="zone"><rect x="%d" y="%d" width="%d" height="%d" rx="10" fill="#f5f5f5" stroke="#bdbdbd"/><text x="%d" y="%d" font-size="13" font-weight="bold" fill="#424242">zone: %s</text></g>`+"\n",
			x, y, svgColW, h, x+10, y+20, esc(z))
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
	var labels []string // drawn after the agents, so no box hides them
	b.WriteString("<g class=\"edges\" fill=\"none\">\n")
	for _, k := range keys {
		me := m[k]
		p, ok1 := pos[me.from]
		q, ok2 := pos[me.to]
		if !ok1 || !ok2 {
			continue
		}
		// A quadratic curve between the node centres, bent to the left of its direction
		// (so A->B and B->A do not overlap), cut at the node borders.
		ax, ay := float64(p.x+svgNodeW/2), float64(p.y+svgNodeH/2)
		bx, by := float64(q.x+svgNodeW/2), float64(q.y+svgNodeH/2)
		dx, dy := bx-ax, by-ay
		dist := math.Hypot(dx, dy)
		var cx, cy float64
		if dist < 1 { // self loop
			ax, bx = ax+svgNodeW/2, bx+svgNodeW/2
			ay, by = ay-8, by+8
			cx, cy = ax+60, ay+8
		} else {
			bend := math.Max(0.18*dist, 45)
			cx, cy = (ax+bx)/2-dy/dist*bend, (ay+by)/2+dx/dist*bend
			ax, ay = border(ax, ay, cx, cy)
			bx, by = border(bx, by, cx, cy)
		}
		mx, my := 0.25*ax+0.5*cx+0.25*bx, 0.25*ay+0.5*cy+0.25*by
		anchor := "middle" // on mostly vertical edges, put the label outside the bend
		if math.Abs(dy) > math.Abs(dx) {
			anchor = "start"
			if cx < (ax+bx)/2 {
				anchor = "end"
			}
		}
		color, dash, marker := colorOf(me.class), "", markerID(me.class)
		switch {
		case !me.allowed:
			color, dash, marker = "#9e9e9e", ` stroke-dasharray="2 3"`, markerID("")
		case !me.declared:
			dash = ` stroke-dasharray="6 4"`
		}
		label := strings.Join(me.actions, ", ")
		fmt.Fprintf(b, `<path d="M%.0f,%.0f Q%.0f,%.0f %.0f,%.0f" stroke="%s" stroke-width="2"%s marker-end="url(#arrow-%s)" data-class="%s"><title>%s</title></path>`+"\n",
			ax, ay, cx, cy, bx, by, color, dash, marker, esc(me.class), esc(me.from+" -> "+me.to+": "+label))
		labels = append(labels, fmt.Sprintf(`<text x="%.0f" y="%.0f" font-size="9" fill="%s" text-anchor="%s" stroke="#ffffff" stroke-width="3" paint-order="stroke">%s</text>`+"\n", mx, my-3, color, anchor, esc(label)))
	}
	b.WriteString("</g>\n")

	// Dependencies: links first, boxes on top.
	for i, d := range deps {
		x := svgMargin + i*(svgNodeW+30)
		for _, u := range d.Users {
			if p, ok := pos[u]; ok {
				fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#8d6e63" stroke-width="1" stroke-opacity="0.45" stroke-dasharray="3 3"/>`+"\n", p.x+svgNodeW/2, p.y+svgNodeH, x+svgNodeW/2, depY)
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
	for _, l := range labels {
		b.WriteString(l)
	}
	b.WriteString("</svg>\n")
	return b.Flush()
}

// border moves the centre (x, y) of a node box towards (tx, ty) until it meets the
// box's edge: the point where an arrow to or from that node should end.
func border(x, y, tx, ty float64) (float64, float64) {
	dx, dy := tx-x, ty-y
	if dx == 0 && dy == 0 {
		return x, y
	}
	t := math.Inf(1)
	if dx != 0 {
		t = math.Min(t, float64(svgNodeW/2+3)/math.Abs(dx))
	}
	if dy != 0 {
		t = math.Min(t, float64(svgNodeH/2+3)/math.Abs(dy))
	}
	return x + t*dx, y + t*dy
}

func markerID(class string) string {
	if class == "" {
		return "none"
	}
	return class
}

func esc(s string) string { return html.EscapeString(s) }
