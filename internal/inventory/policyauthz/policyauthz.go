// Package policyauthz answers the inventory's questions ("may this agent do that action
// on that kind of resource, with or without attestation and approvals?") with Warden's
// own Cedar decision point (internal/policy) and its default or operator policies, so the
// blast radius and the catalog-versus-enforcement findings are what the gates would
// actually decide.
package policyauthz

import (
	"fmt"
	"time"

	"github.com/warden-a2a/warden/internal/inventory"
	"github.com/warden-a2a/warden/internal/policy"
)

// Authorizer adapts a policy.Engine to inventory.Authorizer and inventory.Enumerator.
type Authorizer struct {
	engine  *policy.Engine
	now     func() time.Time
	home    string              // the catalog's trust domain; others are partners
	types   map[string][]string // action -> resource types of the schema
	actions []string
}

var (
	_ inventory.Authorizer = (*Authorizer)(nil)
	_ inventory.Enumerator = (*Authorizer)(nil)
)

// Load loads the policy bundle in dir (schema, policies, exceptions, rate limits).
func Load(dir, homeTrustDomain string) (*Authorizer, error) {
	e, err := policy.Load(dir, policy.Options{})
	if err != nil {
		return nil, err
	}
	return New(e, homeTrustDomain, time.Now), nil
}

// New wraps an engine. Agents of trust domains other than home are partners.
func New(e *policy.Engine, home string, now func() time.Time) *Authorizer {
	a := &Authorizer{engine: e, now: now, home: home, types: map[string][]string{}}
	for _, ai := range e.Actions() {
		a.types[ai.Name] = ai.ResourceTypes
		a.actions = append(a.actions, ai.Name)
	}
	return a
}

// String names the decision source for the report.
func (a *Authorizer) String() string {
	return fmt.Sprintf("warden policy bundle %.12s (%d actions)", a.engine.Revision(), len(a.actions))
}

// Candidates implements inventory.Enumerator: every action of the policy schema, so the
// report also finds actions the catalog never mentions.
func (a *Authorizer) Candidates(*inventory.Agent) []string { return a.actions }

// Authorize decides the representative request for (agent, action, resource type) —
// open resource, healthy zone, no incident — with a fresh affirming attestation only
// when req.Attested and req.Approvals distinct approvers. A resource type the schema
// does not give the action is replaced by the action's first one; an action the schema
// does not know is denied.
func (a *Authorizer) Authorize(req inventory.Request) (inventory.Decision, error) {
	types, ok := a.types[req.Action]
	if !ok {
		return inventory.Decision{Policies: []string{"unknown_action"}}, nil
	}
	rt := req.ResourceType
	if !contains(types, rt) && len(types) > 0 {
		rt = types[0]
	}
	td := req.Agent.TrustDomain
	pr := policy.RepresentativeRequest(policy.Agent{
		SPIFFEID: req.Agent.Identity, Name: req.Agent.Name, Role: req.Agent.Role, Class: req.Agent.Class,
		Zone: req.Agent.Zone, TrustDomain: td, Partner: td != "" && td != a.home,
	}, req.Action, rt)
	pr.Context.Attestation = policy.Attestation{Tier: "none"}
	if req.Attested {
		pr.Context.Attestation = policy.Attestation{Tier: "affirming", AgeSeconds: 0}
	}
	pr.Context.Approvers = nil
	for i := 0; i < req.Approvals; i++ {
		pr.Context.Approvers = append(pr.Context.Approvers, fmt.Sprintf("inventory-approver-%d", i+1))
	}
	d := a.engine.WhatIf(pr, a.now())
	if len(d.Errors) > 0 {
		return inventory.Decision{}, fmt.Errorf("policy evaluation error for %s %s: %v", req.Agent.Name, req.Action, d.Errors)
	}
	return inventory.Decision{Allow: d.Allow, Policies: d.PolicyIDs, Obligations: d.Obligations}, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
