// Package workload serves the SPIFFE Workload API (SPIFFE Workload API and SPIFFE
// Workload Endpoint standards, https://github.com/spiffe/spiffe/tree/main/standards) on
// a unix socket, so that software written against go-spiffe, py-spiffe, java-spiffe or
// Envoy's SDS-over-Workload-API gets its X509-SVID, its JWT-SVIDs and the trust bundles
// — its own trust domain's and every federated one's — with no Warden code.
//
// It is gRPC with the protobuf definitions go-spiffe publishes
// (github.com/spiffe/go-spiffe/v2/proto/spiffe/workload): the X.509-SVID profile
// (FetchX509SVID, FetchX509Bundles) and the JWT-SVID profile (FetchJWTSVID,
// FetchJWTBundles, ValidateJWTSVID). Streams send the complete state at once and again at
// every change (an SVID rotation, a bundle update). Every call must carry the metadata
// "workload.spiffe.io: true" (else InvalidArgument). Callers present no credential
// (Workload Endpoint §5): the kernel's record of the connecting process (SO_PEERCRED:
// uid, gid, pid; /proc/PID/exe) is matched against a configured Selector, and a process
// that does not match gets PermissionDenied and nothing else.
//
// One server serves one identity: the agent's, from `warden enroll --watch
// --workload-api` (AgentSource: the rotating SVID, the control plane's bundle, the
// federated bundles of the signed trust state).
package workload
