// Package cedarauthz answers the inventory's questions (inventory.Authorizer) with
// Cedar policies evaluated by github.com/cedar-policy/cedar-go, so that
// `warden inventory report --policies DIR` reports what the policies actually allow.
//
// It is the thin adapter described on inventory.Authorizer and a stopgap: once
// internal/policy (issue 4) exists, the CLI should hand the report that engine
// instead (same request mapping, plus its schema, exceptions and kill switches). Until
// then this package loads every *.cedar file of a directory, without a schema.
//
// Mapping (issue 4's model): principal Agent::"<name>" with attributes name, role,
// class, zone, environment, trust_domain, spiffe_id and partner (environment ==
// "partner"); action Action::"<action>"; resource <ResourceType>::"inventory-probe"
// with status "open"; context {purpose, data_sensitivity, amount, currency,
// attestation {tier, age_s}, approvals {count, approvers}, incident, zone_state,
// kill_switches}. The bare question has attestation tier "none" and no approvals; the
// strong one an affirming attestation 0 s old and two distinct approvers. The amount
// is 1,000,000 so that threshold rules show their strongest requirement.
//
// Decisions follow issue 4: default deny, a forbid wins, and an evaluation error in any
// policy denies. Policy ids are the @id annotation, or FILE:policyN. Obligations are
// the @remedy annotations of the determining policies.
package cedarauthz

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cedar-policy/cedar-go"

	"github.com/warden-a2a/warden/internal/inventory"
)

// Authorizer evaluates a Cedar policy set. Safe for concurrent use.
type Authorizer struct {
	ps      *cedar.PolicySet
	remedy  map[cedar.PolicyID]string
	nFiles  int
	nPolicy int
}

var _ inventory.Authorizer = (*Authorizer)(nil)

// Load parses every *.cedar file in dir. A parse error names the file and position; a
// directory without policies is an error (it would deny everything silently).
func Load(dir string) (*Authorizer, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.cedar"))
	if err != nil {
		return nil, fmt.Errorf("cedarauthz: %w", err)
	}
	sort.Strings(files)
	a := &Authorizer{ps: cedar.NewPolicySet(), remedy: map[cedar.PolicyID]string{}, nFiles: len(files)}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("cedarauthz: %w", err)
		}
		list, err := cedar.NewPolicyListFromBytes(f, data)
		if err != nil { // cedar-go says "<input>:LINE:COL"; name the file
			return nil, fmt.Errorf("cedarauthz: %s: %w", f, err)
		}
		for i, p := range list {
			id := cedar.PolicyID(fmt.Sprintf("%s:policy%d", filepath.Base(f), i))
			ann := p.Annotations()
			if v, ok := ann["id"]; ok {
				id = cedar.PolicyID(v)
			}
			if !a.ps.Add(id, p) {
				return nil, fmt.Errorf("cedarauthz: %s: duplicate policy id %q", f, id)
			}
			if v, ok := ann["remedy"]; ok {
				a.remedy[id] = string(v)
			}
			a.nPolicy++
		}
	}
	if a.nPolicy == 0 {
		return nil, fmt.Errorf("cedarauthz: no policies in %s/*.cedar", dir)
	}
	return a, nil
}

// String describes the set for the report header.
func (a *Authorizer) String() string {
	return fmt.Sprintf("Cedar (cedar-go), %d policies in %d files", a.nPolicy, a.nFiles)
}

// Authorize evaluates one inventory question.
func (a *Authorizer) Authorize(r inventory.Request) (inventory.Decision, error) {
	principal := cedar.NewEntityUID("Agent", cedar.String(r.Agent.Name))
	rtype := r.ResourceType
	if rtype == "" {
		rtype = inventory.ResourceTypeOf(r.Action)
	}
	resource := cedar.NewEntityUID(cedar.EntityType(rtype), "inventory-probe")
	entities := cedar.EntityMap{
		principal: {UID: principal, Attributes: cedar.NewRecord(cedar.RecordMap{
			"name":         cedar.String(r.Agent.Name),
			"role":         cedar.String(r.Agent.Role),
			"class":        cedar.String(r.Agent.Class),
			"zone":         cedar.String(r.Agent.Zone),
			"environment":  cedar.String(r.Agent.Environment),
			"trust_domain": cedar.String(r.Agent.TrustDomain),
			"spiffe_id":    cedar.String(r.Agent.Identity),
			"partner":      cedar.Boolean(r.Agent.Environment == inventory.EnvPartner),
		})},
		resource: {UID: resource, Attributes: cedar.NewRecord(cedar.RecordMap{
			"status": cedar.String("open"),
		})},
	}
	tier := "none"
	if r.Attested {
		tier = "affirming"
	}
	var approvers []cedar.Value
	for i := 0; i < r.Approvals; i++ {
		approvers = append(approvers, cedar.String(fmt.Sprintf("approver-%d", i+1)))
	}
	ctx := cedar.NewRecord(cedar.RecordMap{
		"purpose":          cedar.String("inventory-probe"),
		"data_sensitivity": cedar.String("internal"),
		"amount":           cedar.Long(1_000_000),
		"currency":         cedar.String("EUR"),
		"attestation": cedar.NewRecord(cedar.RecordMap{
			"tier":  cedar.String(tier),
			"age_s": cedar.Long(0),
		}),
		"approvals": cedar.NewRecord(cedar.RecordMap{
			"count":     cedar.Long(int64(r.Approvals)),
			"approvers": cedar.NewSet(approvers...),
		}),
		"incident":      cedar.False,
		"zone_state":    cedar.String("healthy"),
		"kill_switches": cedar.NewSet(),
	})
	dec, diag := cedar.Authorize(a.ps, entities, cedar.Request{
		Principal: principal,
		Action:    cedar.NewEntityUID("Action", cedar.String(r.Action)),
		Resource:  resource,
		Context:   ctx,
	})
	if len(diag.Errors) > 0 { // an evaluation error denies (issue 4)
		d := inventory.Decision{}
		for _, e := range diag.Errors {
			d.Policies = append(d.Policies, "error:"+string(e.PolicyID))
		}
		return d, nil
	}
	d := inventory.Decision{Allow: dec == cedar.Allow}
	for _, reason := range diag.Reasons {
		d.Policies = append(d.Policies, string(reason.PolicyID))
		if rem, ok := a.remedy[reason.PolicyID]; ok {
			d.Obligations = append(d.Obligations, rem)
		}
	}
	if len(d.Policies) == 0 {
		d.Policies = []string{"default-deny"}
	}
	sort.Strings(d.Policies)
	return d, nil
}
