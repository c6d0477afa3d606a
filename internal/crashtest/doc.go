// Package crashtest holds the kill -9 campaign of the control plane: a test that runs
// `warden server` as a child process (on SQLite and on PostgreSQL), drives admin changes
// and audit shipping at it, kills it with SIGKILL at random moments, restarts it, and
// then checks the database and the audit log against each other: every acknowledged
// change is there with its event, and no change exists without its event
// (docs/store.md, "Outbox"). It has no code outside its test.
package crashtest
