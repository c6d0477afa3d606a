package fleet

import (
	"time"

	"github.com/warden-a2a/warden/internal/api"
)

// Flags of a gate's status.
const (
	FlagDrift        = "drift"         // enforces another revision than the trust state names
	FlagBehind       = "behind"        // held an older trust state than the current one when it reported
	FlagStale        = "stale"         // its trust state was older than its max_staleness
	FlagSilent       = "silent"        // no heartbeat for SilentAfter intervals
	FlagError        = "error"         // it reported an error
	FlagSVIDExpiring = "svid_expiring" // its SVID ends before the next heartbeat is due
)

// SilentAfter is how many heartbeat intervals may pass without one before a gate is silent.
const SilentAfter = 3

// BehindGrace is how long after a trust-state version was issued a gate may still report
// the one before without being flagged behind (a report in flight, a stream reconnecting).
const BehindGrace = 2 * time.Second

// Current is what the control plane holds now, to compare reports with.
type Current struct {
	PolicyRevision string    // the trust state's policy_revision ("" : nothing pushed)
	Version        int64     // the current trust-state version
	IssuedAt       time.Time // when it was issued
}

// Flag fills g.Flags from its report, the current trust state and now.
func Flag(g *api.GateStatus, cur Current, now time.Time) {
	g.Flags = nil
	add := func(f string) { g.Flags = append(g.Flags, f) }
	if cur.PolicyRevision != "" && g.PolicyRevision != cur.PolicyRevision && g.Mode != "outbound" {
		add(FlagDrift)
	}
	if g.TrustStateVersion < cur.Version && g.ReportedAt.After(cur.IssuedAt.Add(BehindGrace)) {
		add(FlagBehind)
	}
	if g.MaxStalenessMS > 0 && g.TrustStateAgeMS > g.MaxStalenessMS {
		add(FlagStale)
	}
	interval := time.Duration(g.IntervalMS) * time.Millisecond
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if now.Sub(g.ReportedAt) > SilentAfter*interval {
		add(FlagSilent)
	}
	if g.LastError != "" {
		add(FlagError)
	}
	if !g.SVIDExpiresAt.IsZero() && g.SVIDExpiresAt.Before(now.Add(interval)) {
		add(FlagSVIDExpiring)
	}
}
