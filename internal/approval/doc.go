// Package approval is the control plane's approval service: a gate whose policy decision
// carries the obligation "approval" (@remedy("approval")) files a request bound to the
// refused intent; registered human approvers sign decisions with their own keys; the gate
// checks the request on the caller's retry (intent claim apr) and feeds the approvers into
// policy.CallContext.Approvers. The design and wire formats are in docs/approvals.md.
//
// Bindings. A request is bound to IntentHash of the intent claims (SHA-256 over the RFC
// 8785 canonical claims without jti, iat, exp, apr and cnf) and to the action, resource,
// amount and currency the gate read from the call. An approver signs a Statement naming
// all of them (Ed25519, or ECDSA P-256 with SHA-256, over "warden-approval-v1\n" followed
// by the RFC 8785 form of the statement); the service records it only when every named
// field equals the stored request, so an approval can never be moved to another amount,
// resource, action or requester.
//
// Storage is a Store with two SQL implementations (NewSQLite, NewPostgres) that share the
// control plane's database and create only tables named approval_*, migrated from the
// embedded files in schema/ and versioned in approval_schema_version.
//
// Every refusal is an *Error whose Reason is one of the api.ReasonApproval* codes.
package approval
