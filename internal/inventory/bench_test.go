package inventory

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"testing"
	"time"
)

// generate writes a synthetic catalog: agents spread over 50 zones and the four
// classes, interactions mostly inside a zone (70%) on 200 actions (50 objects x 4
// verbs, the verb deciding the classification), 2,000 workflows, and one shared
// dependency per 20 agents (a quarter of them credentials). Deterministic for a seed.
func generate(w io.Writer, agents, interactions int, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	envList := []string{EnvCloud, EnvCloud, EnvCloud, EnvEdge, EnvPartner, EnvLegacy}
	classes := []string{ReadOnly, Advisory, Transactional, Regulated}
	verbs := []struct{ verb, class, requires string }{
		{"read", ReadOnly, "[]"},
		{"suggest", Advisory, "[]"},
		{"update", Transactional, "[attestation]"},
		{"release", Regulated, "[attestation, approval]"},
	}
	fmt.Fprintln(w, "version: 1\ntrust_domain: bench.example\nagents:")
	const zones = 50
	for i := 0; i < agents; i++ {
		env := envList[rng.Intn(len(envList))]
		gate := ""
		if env == EnvLegacy {
			gate = ", gate: g"
		}
		fmt.Fprintf(w, "  - {name: agent-%d, owner: team-%d, environment: %s, zone: zone-%d, class: %s, role: role-%d%s}\n",
			i, i%300, env, i%zones, classes[rng.Intn(4)], i%40, gate)
	}
	fmt.Fprintln(w, "interactions:")
	for i := 0; i < interactions; i++ {
		from := rng.Intn(agents)
		to := rng.Intn(agents)
		if rng.Intn(10) < 7 { // same zone
			to = (to/zones)*zones + from%zones
			if to >= agents {
				to = from
			}
		}
		v := verbs[rng.Intn(len(verbs))]
		if rng.Intn(20) == 0 {
			v.requires = "[]" // some sensitive calls lack requirements: real findings
		}
		fmt.Fprintf(w, "  - {workflow: wf-%d, from: agent-%d, to: agent-%d, action: object_%d.%s, criticality: %s, classification: %s, requires: %s}\n",
			rng.Intn(2000), from, to, rng.Intn(50), v.verb, []string{"low", "medium", "high", "critical"}[rng.Intn(4)], v.class, v.requires)
	}
	fmt.Fprintln(w, "dependencies:")
	kinds := []string{DepQueue, DepDatabase, DepQueue, DepIntegrationAccount}
	for d := 0; d < agents/20; d++ {
		fmt.Fprintf(w, "  - name: dep-%d\n    kind: %s\n    used_by:\n", d, kinds[d%4])
		n := 2 + rng.Intn(8)
		for k := 0; k < n; k++ {
			fmt.Fprintf(w, "      - {agent: agent-%d, access: %s}\n", rng.Intn(agents), []string{AccessRead, AccessWrite, AccessReadWrite}[rng.Intn(3)])
		}
	}
}

var (
	benchOnce sync.Once
	benchData []byte
)

// benchCatalog is the 10,000-agent, 100,000-interaction catalog of the benchmark.
func benchCatalog(b *testing.B) []byte {
	benchOnce.Do(func() {
		var buf bytes.Buffer
		generate(&buf, 10000, 100000, 8)
		benchData = buf.Bytes()
	})
	return benchData
}

// BenchmarkReport10kAgents100kInteractions is `warden inventory report FILE` end to end,
// from the file on disk to the text report, with the GC setting the command uses
// (GOGC=400): target 5 s per op.
func BenchmarkReport10kAgents100kInteractions(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	path := filepath.Join(b.TempDir(), "catalog.yaml")
	if err := os.WriteFile(path, benchCatalog(b), 0o600); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchData)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		c, err := Load(path)
		if err != nil {
			b.Fatal(err)
		}
		r := Analyze(c, Options{})
		if err := r.WriteText(io.Discard); err != nil {
			b.Fatal(err)
		}
		if len(r.BlastRadius) != 10000 {
			b.Fatalf("%d agents", len(r.BlastRadius))
		}
	}
	// CPU seconds of the whole process (all threads, GC included) per op: on a shared
	// machine the wall time also counts the time other processes held the cores.
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The stages of the report, to see where the time goes.
func BenchmarkReportStageParse(b *testing.B) {
	data := benchCatalog(b)
	for b.Loop() {
		if _, err := Parse("bench.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReportStageParseSequential is the baseline for BenchmarkReportStageParse:
// the same catalog through the one-pass decoder.
func BenchmarkReportStageParseSequential(b *testing.B) {
	data := benchCatalog(b)
	for b.Loop() {
		if _, err := parseSequential("bench.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReportStageAnalyze(b *testing.B) {
	c, err := Parse("bench.yaml", benchCatalog(b))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		Analyze(c, Options{})
	}
}

func BenchmarkReportStageSVG(b *testing.B) {
	c, err := Parse("bench.yaml", benchCatalog(b))
	if err != nil {
		b.Fatal(err)
	}
	r := Analyze(c, Options{})
	for b.Loop() {
		if err := r.WriteSVG(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// benchGraph builds the reach graph of the benchmark catalog.
func benchGraph(b *testing.B) *graph {
	c, err := Parse("bench.yaml", benchCatalog(b))
	if err != nil {
		b.Fatal(err)
	}
	az := NewCatalogAuthorizer(c)
	a := &analyzer{c: c, az: az, q: newAsker(az), r: &Report{cat: c}, idx: map[string]int{}}
	a.collect()
	a.capabilities()
	a.buildGraph()
	return a.g
}

// BenchmarkBlastRadiusSCC is the reachability the report uses (Tarjan + bitsets);
// BenchmarkBlastRadiusNaiveBFS is the baseline: one BFS per agent on the same graph.
func BenchmarkBlastRadiusSCC(b *testing.B) {
	g := benchGraph(b)
	for b.Loop() {
		g.reachability()
	}
}

func BenchmarkBlastRadiusNaiveBFS(b *testing.B) {
	g := benchGraph(b)
	seen := make([]int32, len(g.adj))
	q := make([]int32, 0, len(g.adj))
	for b.Loop() {
		for i := range seen {
			seen[i] = 0
		}
		for a := 0; a < g.nAgents; a++ {
			stamp := int32(a + 1)
			q = append(q[:0], int32(a))
			seen[a] = stamp
			for len(q) > 0 {
				v := q[len(q)-1]
				q = q[:len(q)-1]
				for _, e := range g.adj[v] {
					if seen[e.to] != stamp {
						seen[e.to] = stamp
						q = append(q, e.to)
					}
				}
			}
		}
	}
}

// TestGeneratedCatalogIsValid keeps the benchmark honest: the generated catalog parses
// and has the expected size, and its findings are the planted ones only.
func TestGeneratedCatalogIsValid(t *testing.T) {
	var buf bytes.Buffer
	generate(&buf, 500, 5000, 1)
	c, err := Parse("gen.yaml", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Agents) != 500 || len(c.Interactions) != 5000 {
		t.Fatalf("%d agents, %d interactions", len(c.Agents), len(c.Interactions))
	}
	for _, f := range Check(c, nil) {
		switch f.Code {
		case CodeNoRequirement, CodeSharedSecret, CodeDuplicate, CodePrivilegeAggregation:
		default:
			t.Fatalf("unexpected finding %s", f)
		}
	}
}

// TestWriteGeneratedCatalog writes the benchmark catalog to $WARDEN_INVENTORY_GEN, so the
// CLI can be timed on it (docs/benchmarks.md); skipped when the variable is unset.
func TestWriteGeneratedCatalog(t *testing.T) {
	path := os.Getenv("WARDEN_INVENTORY_GEN")
	if path == "" {
		t.Skip("WARDEN_INVENTORY_GEN not set: nothing to write")
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	generate(f, 10000, 100000, 8)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
