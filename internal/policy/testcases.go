package policy

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// TestFile is one YAML file of decision test cases (tests/*.yaml in a bundle).
// Agents declared in any file of the directory can be used by every case.
//
//	now: 2026-11-27T12:00:00Z
//	agents:
//	  procurement: {role: procurement, class: transactional, zone: core, trust_domain: supplychain.example}
//	cases:
//	  - name: procurement creates an order
//	    agent: procurement
//	    action: purchase_order.create
//	    resource: {type: Order, id: PO-1, status: open, amount: 5000}
//	    context: {amount: 5000, attestation: {tier: affirming, age_s: 30}}
//	    expect: allow
//	    policies: [procurement-permits]
type TestFile struct {
	Now    time.Time            `yaml:"now"`
	Agents map[string]TestAgent `yaml:"agents"`
	Cases  []TestCase           `yaml:"cases"`
}

// TestAgent declares an agent for test cases; SPIFFEID defaults to
// spiffe://<trust_domain>/agent/<name>.
type TestAgent struct {
	SPIFFEID    string `yaml:"spiffe_id"`
	Role        string `yaml:"role"`
	Class       string `yaml:"class"`
	Zone        string `yaml:"zone"`
	TrustDomain string `yaml:"trust_domain"`
	Partner     bool   `yaml:"partner"`
}

// TestCase is one request and its expected decision.
type TestCase struct {
	Name     string     `yaml:"name"`
	Now      *time.Time `yaml:"now"`
	Agent    string     `yaml:"agent"`
	Action   string     `yaml:"action"`
	Workflow string     `yaml:"workflow"`
	Resource struct {
		Type   string            `yaml:"type"`
		ID     string            `yaml:"id"`
		Status string            `yaml:"status"`
		Amount int64             `yaml:"amount"`
		Attrs  map[string]string `yaml:"attrs"`
	} `yaml:"resource"`
	Context struct {
		Purpose         string `yaml:"purpose"`
		DataSensitivity string `yaml:"data_sensitivity"`
		Amount          int64  `yaml:"amount"`
		Currency        string `yaml:"currency"`
		Attestation     struct {
			Tier string `yaml:"tier"`
			AgeS int64  `yaml:"age_s"`
		} `yaml:"attestation"`
		Approvers []string `yaml:"approvers"`
	} `yaml:"context"`
	Trust struct {
		IncidentMode bool              `yaml:"incident_mode"`
		IncidentZone string            `yaml:"incident_zone"`
		Responders   []string          `yaml:"responders"`
		Zones        map[string]string `yaml:"zones"`
		AgentStatus  map[string]string `yaml:"agent_status"`
		KillSwitches []KillSwitch      `yaml:"kill_switches"`
	} `yaml:"trust"`
	// Repeat decides the same request this many times (default 1) and checks the
	// last decision: for rate limits.
	Repeat int `yaml:"repeat"`
	// Expect is "allow" or "deny".
	Expect string `yaml:"expect"`
	// Code, when set, must equal Decision.Code.
	Code string `yaml:"code"`
	// Policies, when set, must equal the determining policy ids (any order).
	Policies []string `yaml:"policies"`
	// Obligations, when set, must equal Decision.Obligations (any order).
	Obligations []string `yaml:"obligations"`

	file string
}

// TestReport is the outcome of RunTests.
type TestReport struct {
	Passed, Failed int
	// Unexercised lists the bundle's policies that determined no case's decision.
	Unexercised []string
}

// ParseTestFile parses one test-case document.
func ParseTestFile(b []byte) (TestFile, error) {
	var f TestFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && err != io.EOF {
		return TestFile{}, fmt.Errorf("policy tests: %v", err)
	}
	return f, nil
}

// RunTests runs every case of tests/*.yaml in fsys against e, writing one line
// per case to w ("ok" or "FAIL" with the difference) and finally the line
// "N passed, M failed". Rate-limit buckets are reset before every case.
func RunTests(e *Engine, fsys fs.FS, w io.Writer) (TestReport, error) {
	var rep TestReport
	names, err := fs.Glob(fsys, path.Join(TestsDir, "*.yaml"))
	if err != nil {
		return rep, err
	}
	agents := map[string]TestAgent{}
	type fileCases struct {
		now   time.Time
		cases []TestCase
	}
	var files []fileCases
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return rep, err
		}
		f, err := ParseTestFile(b)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", n, err)
		}
		for k, a := range f.Agents {
			if _, dup := agents[k]; dup {
				return rep, fmt.Errorf("%s: agent %q declared twice", n, k)
			}
			agents[k] = a
		}
		for i := range f.Cases {
			f.Cases[i].file = n
		}
		files = append(files, fileCases{f.Now, f.Cases})
	}
	hit := map[string]bool{}
	for _, f := range files {
		for _, c := range f.cases {
			now := f.now
			if c.Now != nil {
				now = *c.Now
			}
			if now.IsZero() {
				now = time.Now()
			}
			req, err := c.request(agents)
			if err != nil {
				rep.Failed++
				fmt.Fprintf(w, "FAIL %s (%s): %v\n", c.Name, c.file, err)
				continue
			}
			e.limits.reset()
			var d Decision
			for range max(c.Repeat, 1) {
				d = e.Decide(req, now)
			}
			for _, id := range d.PolicyIDs {
				hit[id] = true
			}
			if diff := c.check(d); diff != "" {
				rep.Failed++
				fmt.Fprintf(w, "FAIL %s (%s): %s\n     reason: %s\n", c.Name, c.file, diff, d.Reason)
				continue
			}
			rep.Passed++
			fmt.Fprintf(w, "ok   %s\n", c.Name)
		}
	}
	for _, p := range e.Policies() {
		if !hit[p.ID] {
			rep.Unexercised = append(rep.Unexercised, p.ID)
		}
	}
	for _, id := range rep.Unexercised {
		fmt.Fprintf(w, "note: policy %s determined no case\n", id)
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", rep.Passed, rep.Failed)
	return rep, nil
}

func (c *TestCase) request(agents map[string]TestAgent) (Request, error) {
	a, ok := agents[c.Agent]
	if !ok {
		return Request{}, fmt.Errorf("unknown agent %q", c.Agent)
	}
	if c.Expect != "allow" && c.Expect != "deny" {
		return Request{}, fmt.Errorf("expect must be allow or deny, not %q", c.Expect)
	}
	id := a.SPIFFEID
	if id == "" {
		id = "spiffe://" + a.TrustDomain + "/agent/" + c.Agent
	}
	req := Request{
		Agent:    Agent{SPIFFEID: id, Name: c.Agent, Role: a.Role, Class: a.Class, Zone: a.Zone, TrustDomain: a.TrustDomain, Partner: a.Partner},
		Action:   c.Action,
		Workflow: c.Workflow,
		Resource: Resource{Type: c.Resource.Type, ID: c.Resource.ID, Status: c.Resource.Status, Amount: c.Resource.Amount, Attrs: c.Resource.Attrs},
		Context: CallContext{
			Purpose: c.Context.Purpose, DataSensitivity: c.Context.DataSensitivity,
			Amount: c.Context.Amount, Currency: c.Context.Currency,
			Attestation: Attestation{Tier: c.Context.Attestation.Tier, AgeSeconds: c.Context.Attestation.AgeS},
			Approvers:   c.Context.Approvers,
		},
		Trust: TrustView{
			KillSwitches: c.Trust.KillSwitches, IncidentMode: c.Trust.IncidentMode, IncidentZone: c.Trust.IncidentZone,
			Responders: c.Trust.Responders, ZoneStates: c.Trust.Zones, AgentStatus: map[string]string{},
		},
	}
	for k, v := range c.Trust.AgentStatus {
		if t, ok := agents[k]; ok { // allow agent names as keys
			sid := t.SPIFFEID
			if sid == "" {
				sid = "spiffe://" + t.TrustDomain + "/agent/" + k
			}
			k = sid
		}
		req.Trust.AgentStatus[k] = v
	}
	return req, nil
}

func (c *TestCase) check(d Decision) string {
	var diffs []string
	if got := map[bool]string{true: "allow", false: "deny"}[d.Allow]; got != c.Expect {
		diffs = append(diffs, fmt.Sprintf("want %s, got %s", c.Expect, got))
	}
	if c.Code != "" && c.Code != d.Code {
		diffs = append(diffs, fmt.Sprintf("want code %s, got %s", c.Code, d.Code))
	}
	if c.Policies != nil && !sameSet(c.Policies, d.PolicyIDs) {
		diffs = append(diffs, fmt.Sprintf("want policies [%s], got [%s]", strings.Join(c.Policies, ", "), strings.Join(d.PolicyIDs, ", ")))
	}
	if c.Obligations != nil && !sameSet(c.Obligations, d.Obligations) {
		diffs = append(diffs, fmt.Sprintf("want obligations [%s], got [%s]", strings.Join(c.Obligations, ", "), strings.Join(d.Obligations, ", ")))
	}
	return strings.Join(diffs, "; ")
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
