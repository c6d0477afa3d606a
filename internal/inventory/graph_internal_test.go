package inventory

import (
	"math/rand"
	"testing"
)

// naiveReach is the reference: a BFS from every node.
func naiveReach(g *graph, src int) map[int]bool {
	seen := map[int]bool{src: true}
	q := []int{src}
	for len(q) > 0 {
		v := q[0]
		q = q[1:]
		for _, e := range g.adj[v] {
			if !seen[int(e.to)] {
				seen[int(e.to)] = true
				q = append(q, int(e.to))
			}
		}
	}
	agents := map[int]bool{}
	for v := range seen {
		if a := g.agentOf(v); a >= 0 {
			agents[a] = true
		}
	}
	return agents
}

// The SCC-condensation reachability must equal a BFS from every node on random graphs
// dense enough to be full of cycles, and on sparse ones that are mostly DAGs.
func TestReachabilityMatchesBFSOnGraphsWithCycles(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	for trial := 0; trial < 200; trial++ {
		nA, nD := 1+rng.Intn(30), rng.Intn(5)
		g := newGraph(nA, nD)
		edges := rng.Intn(4 * (2*nA + nD))
		for i := 0; i < edges; i++ {
			g.add(rng.Intn(2*nA+nD), rng.Intn(2*nA+nD), 0)
		}
		rc := g.reachability()
		for a := 0; a < nA; a++ {
			want := naiveReach(g, g.control(a))
			set := rc.sets[rc.comp[g.control(a)]]
			if got := set.count(); got != len(want) || rc.count[rc.comp[a]] != len(want) {
				t.Fatalf("trial %d agent %d: reach %d, want %d", trial, a, got, len(want))
			}
			for w := range want {
				if !set.has(w) {
					t.Fatalf("trial %d agent %d: misses %d", trial, a, w)
				}
			}
		}
	}
}

func TestSCCOnALongChainDoesNotRecurse(t *testing.T) {
	const n = 200000
	g := newGraph(n, 0)
	for a := 0; a+1 < n; a++ {
		g.add(g.instruct(a), g.instruct(a+1), 0)
	}
	g.add(g.instruct(n-1), g.instruct(0), 0) // one giant cycle
	comp, k := g.scc()
	// Every instruct node is in one component; every control node is alone.
	if k != n+1 {
		t.Fatalf("%d components, want %d", k, n+1)
	}
	if comp[g.instruct(0)] != comp[g.instruct(n-1)] {
		t.Fatal("cycle not found")
	}
}

func TestPathIsShortest(t *testing.T) {
	g := newGraph(4, 0)
	g.add(g.instruct(0), g.instruct(1), 1)
	g.add(g.instruct(1), g.instruct(2), 2)
	g.add(g.instruct(2), g.instruct(3), 3)
	g.add(g.instruct(0), g.instruct(3), 4)
	p := g.path(g.control(0), g.instruct(3))
	if len(p) != 2 || p[1].label != 4 {
		t.Fatalf("path %v, want control->instruct then the direct edge", p)
	}
	if g.path(g.control(3), g.instruct(0)) != nil {
		t.Fatal("path against the edges")
	}
}

func TestWeightsSumMatchesBitLoop(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, n := range []int{1, 7, 63, 64, 65, 200, 1000} {
		w := make([]int, n)
		for i := range w {
			w[i] = rng.Intn(100)
		}
		tab := newWeights(w)
		for trial := 0; trial < 50; trial++ {
			s := newBitset(n)
			want := 0
			for i := 0; i < n; i++ {
				if rng.Intn(3) == 0 {
					s.set(i)
					want += w[i]
				}
			}
			if got := tab.sum(s); got != want {
				t.Fatalf("n=%d: sum %d, want %d", n, got, want)
			}
		}
	}
}
