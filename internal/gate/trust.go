package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/truststate"
)

// TrustSource gives the newest verified trust state and how long ago the control plane
// last confirmed it. *truststate.Follower and *TrustCache implement it.
type TrustSource interface {
	Current() (*truststate.Document, time.Duration)
}

var (
	_ TrustSource = (*truststate.Follower)(nil)
	_ TrustSource = (*TrustCache)(nil)
)

// TrustCache keeps the last verified trust state on disk so that a gate restarted while
// the control plane is unreachable still enforces it. It wraps a Follower: Current
// returns the follower's document once it has one, else the cached one, with its age
// counted from when it was verified (so max_staleness runs across restarts).
//
// The file holds the signed JWS as received and the time it was verified. On load the
// signature and the x5c chain are verified again against the trust bundle at that
// verification time: the control plane's SVID may have expired since, the signature
// has not changed. A file that does not verify is ignored.
type TrustCache struct {
	path string
	f    *truststate.Follower
	now  func() time.Time

	mu       sync.Mutex
	doc      *truststate.Document
	verified time.Time
}

type cacheFile struct {
	Signed     string    `json:"signed"`
	VerifiedAt time.Time `json:"verified_at"`
}

// OpenTrustCache loads path (if it exists and verifies) and returns the cache. Wire
// the follower's OnAccept to Store so every new document is persisted.
func OpenTrustCache(path string, bundle x509bundle.Source, td spiffeid.TrustDomain, now func() time.Time) (*TrustCache, error) {
	if now == nil {
		now = time.Now
	}
	c := &TrustCache{path: path, now: now}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("gate: trust cache: %w", err)
	}
	var cf cacheFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return c, nil // unreadable cache: start empty, fail closed until the first document
	}
	doc, err := truststate.Verify([]byte(cf.Signed), bundle, td, cf.VerifiedAt)
	if err != nil || cf.VerifiedAt.After(now()) {
		return c, nil
	}
	c.doc, c.verified = doc, cf.VerifiedAt
	return c, nil
}

// Follow makes the cache prefer f's document once it holds one.
func (c *TrustCache) Follow(f *truststate.Follower) { c.mu.Lock(); c.f = f; c.mu.Unlock() }

// Store persists signed (already verified by the follower) as the cached state.
func (c *TrustCache) Store(signed []byte, doc *truststate.Document) {
	now := c.now()
	c.mu.Lock()
	if c.doc != nil && doc.Version < c.doc.Version {
		c.mu.Unlock()
		return
	}
	c.doc, c.verified = doc, now
	c.mu.Unlock()
	b, _ := json.Marshal(cacheFile{Signed: string(signed), VerifiedAt: now})
	tmp := c.path + ".tmp"
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return
	}
	if os.WriteFile(tmp, b, 0o600) == nil {
		_ = os.Rename(tmp, c.path)
	}
}

// Current implements TrustSource.
func (c *TrustCache) Current() (*truststate.Document, time.Duration) {
	c.mu.Lock()
	f, doc, verified := c.f, c.doc, c.verified
	c.mu.Unlock()
	if f != nil {
		if fd, age := f.Current(); fd != nil && (doc == nil || fd.Version >= doc.Version) {
			return fd, age
		}
	}
	if doc == nil {
		return nil, 0
	}
	return doc, c.now().Sub(verified)
}

// trustView maps the trust state into what the policy engine reads, for a gate in zone
// gateZone. An incident limited to a zone applies to every call into a gate of that zone
// and, at other gates, to callers of that zone (the engine checks the caller's zone).
// Zone states keep the trust state's names ("healthy", the old name of normal, is read
// as normal by the engine).
func trustView(doc *truststate.Document, gateZone string) policy.TrustView {
	v := policy.TrustView{IncidentMode: doc.IncidentMode, Responders: doc.Responders}
	if doc.IncidentMode && doc.Incident != nil && doc.Incident.Zone != "" && doc.Incident.Zone != gateZone {
		v.IncidentZone = doc.Incident.Zone
	}
	for _, k := range doc.KillSwitches {
		v.KillSwitches = append(v.KillSwitches, policy.KillSwitch{Scope: k.Scope, Value: k.Value, Reason: k.Reason, Expires: k.Expires})
	}
	if len(doc.Zones) > 0 {
		v.ZoneStates = make(map[string]string, len(doc.Zones))
		for z, s := range doc.Zones {
			v.ZoneStates[z] = truststate.NormalZoneState(s.State)
		}
	}
	if len(doc.Agents) > 0 {
		v.AgentStatus = make(map[string]string, len(doc.Agents))
		for id, s := range doc.Agents {
			v.AgentStatus[id] = s.Status
		}
	}
	return v
}

// attestationOf is the one place the gate reads a caller's attestation result: the
// control plane's latest appraisal in the trust state (tier and age). A caller with no
// result is tier "none", so policies that need a fresh affirming attestation
// (payment.release) deny it.
func attestationOf(doc *truststate.Document, peer string, now time.Time) policy.Attestation {
	a, ok := doc.Attestations[peer]
	if !ok || a.Tier == "" {
		return policy.Attestation{Tier: "none"}
	}
	age := int64(now.Sub(a.At) / time.Second)
	if age < 0 {
		age = 0
	}
	tier := a.Tier
	if a.Reason != "" && tier == "affirming" { // a refused appraisal is never affirming
		tier = "warning"
	}
	return policy.Attestation{Tier: tier, AgeSeconds: age}
}

// MaxStaleness is the max_staleness a gate of zone applies with doc: the zone's in the
// trust state, else def, else 5 minutes.
func MaxStaleness(doc *truststate.Document, zone string, def time.Duration) time.Duration {
	if def <= 0 {
		def = 5 * time.Minute
	}
	return maxStaleness(doc, zone, def)
}

// maxStaleness is the zone's max_staleness from the trust state, else def.
func maxStaleness(doc *truststate.Document, zone string, def time.Duration) time.Duration {
	if z, ok := doc.Zones[zone]; ok && z.MaxStaleness != "" {
		if d, err := time.ParseDuration(z.MaxStaleness); err == nil && d > 0 {
			return d
		}
	}
	return def
}

// KeepConfirmed polls GET <url>/v1/trust-state every interval and hands the answer to
// f.Accept, so a trust state that has not changed is still confirmed by the control
// plane: the watch stream pushes documents only when they change, and without this a
// quiet control plane would look like an unreachable one once max_staleness passes.
// Failures are ignored (the staleness clock keeps running); it returns when ctx ends.
func KeepConfirmed(ctx context.Context, f *truststate.Follower, url string, client *http.Client, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+"/v1/trust-state", nil)
		if err != nil {
			return
		}
		res, err := client.Do(req)
		if err != nil {
			continue
		}
		body, err := io.ReadAll(io.LimitReader(res.Body, truststate.MaxSize+1))
		res.Body.Close()
		if err == nil && res.StatusCode == http.StatusOK {
			_, _ = f.Accept(body) // same version: re-verified, confirmation time moves on
		}
	}
}
