// Package gate is `warden gate`: the enforcement point beside each agent. Centralized
// control, distributed enforcement — the gate holds everything it needs to decide
// locally (trust bundle, signed trust state, policy bundle, replay cache) and makes no
// remote call on a request's path.
//
// Modes:
//
//   - inbound: TLS 1.3 mutual auth with the gate's rotating SVID, then the pipeline of
//     ARCHITECTURE.md "One call, end to end" — peer X509-SVID → revocation / suspension
//     in the trust state → A2A method → intent (signature by the peer certificate's key,
//     channel binding, audience, window, body digest) → replay cache → staleness →
//     attestation → Cedar decision (+ approvals) → audit event → forward to the local
//     agent with Warden-Peer-Id and Warden-Decision-Id.
//   - outbound: the local agent speaks plain HTTP (unix socket with SO_PEERCRED, or
//     loopback with a per-process secret); the gate signs the intent with the agent's own
//     SVID key and calls the remote gate over mTLS presenting that same SVID.
//   - legacy: the inbound pipeline, then the legacy system is called with a per-request
//     ES256 JWT (package legacy verifies it on the system's side).
//
// Every refusal reaches an A2A caller in its binding: a JSON-RPC error object whose
// message starts with the reason code (data.reason, data.decision_id), or an HTTP status
// with a google.rpc.Status body on HTTP+JSON; and every decision is an audit Event.
// docs/gate.md is the operator's reference.
package gate
