// Package e2e holds Warden's process-level end-to-end tests: the control plane, the
// agents' `warden enroll --watch` and the gates run as separate OS processes (the test
// binary acting as the warden binary, internal/proc), with unmodified a2a-go agents and
// clients, as docs/e2e.md describes. The package has no code of its own.
package e2e
