// Package fleet is the control plane's view of its gates: the signed policy bundles it
// distributes to them (the trust state names the active revision; gates fetch the bundle
// by revision and verify its signature themselves) and the last heartbeat each gate sent
// back (the revision it enforces, its trust-state version and age, SVID expiry, audit
// spool depth, last error). Status derives the flags `warden gates` shows: drift, behind,
// stale, silent, error, svid_expiring (docs/gate.md, "Heartbeats").
//
// Both tables live in the control plane's database (SQLite file or PostgreSQL, shared by
// replicas) with migrations of their own (fleet_schema_version).
package fleet
