// Package policy is Warden's policy decision point: call-time, contextual
// authorization of one A2A workflow step, in Cedar (github.com/cedar-policy/cedar-go).
//
// A policy bundle is a directory (or a signed bundle file, see [WriteBundle]) holding
//
//	schema.cedarschema   the Cedar schema: Agent principal, resource types, actions, context
//	*.cedar              policies; every policy carries @id("stable-human-id") and @reason("...")
//	exceptions/*.yaml    time-bounded exceptions with owner and risk acceptance ([Exception])
//	ratelimits.yaml      token buckets per (agent, action) ([RateLimit])
//	tests/*.yaml         decision test cases run by `warden policy test` ([TestFile])
//
// [Load] parses and type-checks everything against the schema and refuses a bundle with
// any problem; a refused bundle is never used. [Engine.Decide] then evaluates one
// [Request] without any I/O, in this order (the first refusal wins):
//
//  1. agent suspended in the trust state      → Code "agent_suspended"
//  2. a kill switch matches action, workflow, agent or zone → Code "kill_switch"
//  3. no caller SPIFFE ID, or a resource type the action does not apply to → "invalid_request"
//     (an action unknown to the schema → "default_deny")
//  4. Cedar: any evaluation error              → Code "evaluation_error" (an error denies)
//     a forbid matches                         → Code from the policy's @code, else "policy_deny"
//     no permit matches                        → Code "default_deny"
//  5. the (agent, action) token bucket is empty → Code "rate_limited"
//  6. otherwise                                → Allow, Code "policy_allow" (or "exception")
//
// Every [Decision] carries the determining policy ids, the obligations from their
// @remedy annotations, one human sentence built from their @reason annotations, and the
// bundle revision: SHA-256 over the canonical schema, policies, exceptions and rate
// limits (see [Engine.Revision]). Forbid beats permit, as in Cedar; an exception may
// waive named forbids (its `waives` list) but never a kill switch or a suspension.
//
// [Holder] swaps bundles atomically for hot reload: a decision that started on the old
// engine finishes on it, and records the old revision.
package policy
