// Package workflow keeps the state of running workflows for gates: every allowed step,
// per workflow id, in a store shared by all gates (the control plane's database through
// its API, or Redis), so that a gate refuses a step that does not follow a transition the
// catalog declares (workflow_out_of_order) and a second execution of a non-repeatable
// step for the same resource at the same callee (duplicate_step) — a replayed business
// step with a fresh jti.
//
// Atomicity: a gate reserves a step before it forwards the call (Begin) and settles the
// reservation after the answer (Finish): done when the upstream answered, released when
// the call was not forwarded or the upstream failed (no answer, or 5xx), so a retry can
// run. Of concurrent identical steps exactly one reservation wins; the others see
// duplicate_step. A gate that dies between Begin and Finish leaves the step reserved:
// a retry is refused as a duplicate until an operator clears it — fail closed, since
// the upstream may have executed it. Every implementation passes the same contract
// test (Contract).
package workflow
