// Package inventory is the workflow inventory: the catalog of agents, the interactions
// between them and the shared dependencies (queues, databases, secrets, integration
// accounts) they use, checked and analysed as a first-class artifact.
//
// It follows Phase 1 of the source document ("Inventory and classify agent workflows"):
// every interaction names its source and destination agent, action, data types,
// environment and business criticality, and is classified read-only, advisory,
// transactional or regulated. From a catalog the package derives:
//
//   - Check: structural errors and rollout risks (shared identities and secrets,
//     privilege aggregation, unclassified interactions, transactional or regulated
//     interactions with no approval or attestation requirement, legacy systems without a
//     gate), each with the file and line it comes from;
//   - Analyze: per-agent blast radius (direct, and transitive through the agents it can
//     instruct and the credentials and queues it shares; cycles are handled by computing
//     strongly connected components), chokepoints, a rollout order by risk and the
//     comparison of the catalog with what the enforcement policies actually allow;
//   - renderers for text, JSON, Graphviz DOT and a self-drawn SVG;
//   - Index.IsDeclared, the lookup a gate uses to flag a call on an undeclared path as an
//     anomaly.
//
// Enforcement decisions come through the one-method Authorizer interface, so the report
// uses the real policy engine when one is plugged in and the catalog's own declarations
// (CatalogAuthorizer) otherwise. The format is documented in docs/catalog.md.
package inventory
