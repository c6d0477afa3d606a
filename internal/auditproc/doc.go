// Package auditproc holds the process-level tests of the audit log's evidence: `warden
// server`, `warden witness` and `warden audit verify` run as child processes (the test
// binary re-executes itself as the warden command), on SQLite and on PostgreSQL, and the
// log is tampered with behind the server's back. It has no code outside its tests.
package auditproc
