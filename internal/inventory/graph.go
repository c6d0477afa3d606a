package inventory

import "math/bits"

// graph is the "can make act" relation: an edge u -> v means that whoever holds u can
// make v act. Each agent has two nodes: control (the attacker holds its credentials)
// and instruct (the attacker can make it act by sending it requests or data). Nodes
// 0..n-1 are control nodes, n..2n-1 instruct nodes, the rest dependencies. Edges:
//
//	control(a) -> instruct(a)            holding an agent is at least instructing it
//	instruct(a) -> instruct(b)           a non-read-only call a -> b the policies allow
//	instruct(w) -> queue/db -> instruct(r)   w writes what r reads
//	control(a) -> secret/account -> control(b)   a shares a credential with b
//
// So a shared credential spreads full control, while instruction spreads only along
// the calls the instructed agents themselves may make (the workflow cascade).
//
// Blast radius is reachability from control(a). The graph may have cycles (mutual
// instruction, shared credentials), so reachability is computed on the condensation:
// Tarjan's strongly connected components, then one bitset of agents per component,
// unioned in reverse topological order. Every member of a component reaches the same set.
type graph struct {
	nAgents int
	adj     [][]edge
}

type edge struct {
	to    int32
	label int32 // index into the report's label table; -1 for control -> instruct
}

func newGraph(nAgents, nDeps int) *graph {
	g := &graph{nAgents: nAgents, adj: make([][]edge, 2*nAgents+nDeps)}
	for a := 0; a < nAgents; a++ {
		g.adj[a] = append(g.adj[a], edge{int32(nAgents + a), -1})
	}
	return g
}

// control, instruct and dep are node numbers.
func (g *graph) control(a int) int  { return a }
func (g *graph) instruct(a int) int { return g.nAgents + a }
func (g *graph) dep(d int) int      { return 2*g.nAgents + d }

// agentOf returns the agent of node v, or -1 for a dependency.
func (g *graph) agentOf(v int) int {
	switch {
	case v < g.nAgents:
		return v
	case v < 2*g.nAgents:
		return v - g.nAgents
	}
	return -1
}

func (g *graph) add(u, v int, label int32) {
	if u == v {
		return
	}
	g.adj[u] = append(g.adj[u], edge{int32(v), label})
}

// scc returns the component of each node and the number of components. Components are
// numbered in the order Tarjan's algorithm completes them, which is a reverse
// topological order of the condensation: every edge leaves a component for one with a
// smaller or equal number. Iterative, so deep chains do not grow the stack.
func (g *graph) scc() (comp []int32, n int) {
	N := len(g.adj)
	comp = make([]int32, N)
	index := make([]int32, N)
	low := make([]int32, N)
	onStack := make([]bool, N)
	for i := range index {
		index[i] = -1
	}
	var stack []int32
	type frame struct{ v, next int32 }
	var call []frame
	var counter int32
	for root := 0; root < N; root++ {
		if index[root] >= 0 {
			continue
		}
		call = append(call, frame{int32(root), 0})
		index[root], low[root] = counter, counter
		counter++
		stack = append(stack, int32(root))
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			v := f.v
			if int(f.next) < len(g.adj[v]) {
				w := g.adj[v][f.next].to
				f.next++
				if index[w] < 0 {
					index[w], low[w] = counter, counter
					counter++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{w, 0})
				} else if onStack[w] && index[w] < low[v] {
					low[v] = index[w]
				}
				continue
			}
			// v is finished.
			call = call[:len(call)-1]
			if len(call) > 0 {
				if p := call[len(call)-1].v; low[v] < low[p] {
					low[p] = low[v]
				}
			}
			if low[v] == index[v] {
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp[w] = int32(n)
					if w == v {
						break
					}
				}
				n++
			}
		}
	}
	return comp, n
}

// bitset over agents.
type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)      { b[i>>6] |= 1 << (uint(i) & 63) }
func (b bitset) has(i int) bool { return b[i>>6]&(1<<(uint(i)&63)) != 0 }
func (b bitset) or(o bitset) {
	for i := range b {
		b[i] |= o[i]
	}
}
func (b bitset) count() (n int) {
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// each calls f for every set bit.
func (b bitset) each(f func(int)) {
	for i, w := range b {
		for w != 0 {
			t := bits.TrailingZeros64(w)
			f(i<<6 + t)
			w &= w - 1
		}
	}
}

// weights sums per-agent weights over a bitset a byte at a time: table[k][b] is the
// sum of the weights of the agents whose bits are set in byte b at byte position k.
// Building it costs 256 per 8 agents; a sum then costs one lookup per 8 agents instead
// of one step per set bit (reach sets in a big strongly connected graph hold nearly
// every agent).
type weights [][256]int

func newWeights(w []int) weights {
	t := make(weights, (len(w)+63)/64*8)
	for k := range t {
		for b := 1; b < 256; b++ {
			i := 8*k + bits.TrailingZeros8(uint8(b))
			v := 0
			if i < len(w) {
				v = w[i]
			}
			t[k][b] = t[k][b&(b-1)] + v
		}
	}
	return t
}

// sum returns the total weight of the agents in s.
func (t weights) sum(s bitset) int {
	n := 0
	for i, w := range s {
		for j := 0; w != 0; j++ {
			n += t[8*i+j][w&0xff]
			w >>= 8
		}
	}
	return n
}

// reach is the result of the reachability computation.
type reach struct {
	comp  []int32
	sets  []bitset // per component: the agents its members reach, members included
	count []int    // per component: popcount of sets
}

// reachability computes, for each node, the set of agents it reaches (itself included
// when it is an agent). Memory is components x agents bits.
func (g *graph) reachability() *reach {
	comp, n := g.scc()
	r := &reach{comp: comp, sets: make([]bitset, n), count: make([]int, n)}
	// Members per component, then components in increasing number = sinks first.
	members := make([][]int32, n)
	for v, c := range comp {
		members[c] = append(members[c], int32(v))
	}
	for c := 0; c < n; c++ {
		s := newBitset(g.nAgents)
		for _, v := range members[c] {
			if a := g.agentOf(int(v)); a >= 0 {
				s.set(a)
			}
			for _, e := range g.adj[v] {
				if d := comp[e.to]; int(d) != c {
					s.or(r.sets[d]) // d < c: already complete
				}
			}
		}
		r.sets[c] = s
		r.count[c] = s.count()
	}
	return r
}

// path returns a shortest path from src to dst as node, edge-label pairs (BFS).
func (g *graph) path(src, dst int) []edge {
	if src == dst {
		return nil
	}
	prev := make([]edge, len(g.adj))
	seen := make([]bool, len(g.adj))
	seen[src] = true
	q := []int32{int32(src)}
	for len(q) > 0 {
		v := q[0]
		q = q[1:]
		for _, e := range g.adj[v] {
			if seen[e.to] {
				continue
			}
			seen[e.to] = true
			prev[e.to] = edge{v, e.label}
			if int(e.to) == dst {
				var p []edge
				for w := int32(dst); int(w) != src; w = prev[w].to {
					p = append(p, edge{w, prev[w].label})
				}
				for i, j := 0, len(p)-1; i < j; i, j = i+1, j-1 {
					p[i], p[j] = p[j], p[i]
				}
				return p
			}
			q = append(q, e.to)
		}
	}
	return nil
}
