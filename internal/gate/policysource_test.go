package gate_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/truststate"
)

// copyPolicies copies the default bundle (without tests) into a new directory.
func copyPolicies(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("..", "..", "policies")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// forbidPolicy is a new guard that refuses every purchase_order.read.
const forbidPolicy = `
@id("freeze-order-reads")
@reason("order reads are frozen")
forbid (principal is Agent, action == Action::"purchase_order.read", resource);
`

type events struct {
	mu  sync.Mutex
	evs []audit.Event
}

func (e *events) record(_ context.Context, ev audit.Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
	return nil
}

func (e *events) last() audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.evs) == 0 {
		return audit.Event{}
	}
	return e.evs[len(e.evs)-1]
}

func readReq() policy.Request {
	return policy.Request{
		Agent:    policy.Agent{SPIFFEID: "spiffe://supplychain.example/agent/procurement", Name: "procurement", Role: "procurement", Class: "transactional", Zone: "cloud", TrustDomain: "supplychain.example"},
		Action:   "purchase_order.read",
		Resource: policy.Resource{Type: "Order", ID: "PO-1", Status: "open"},
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPolicyDirReloads: a directory change is swapped in; a broken edit is refused with
// an event and the last good bundle keeps enforcing; Reload (SIGHUP) does the same.
func TestPolicyDirReloads(t *testing.T) {
	dir := copyPolicies(t)
	h := &policy.Holder{}
	var evs events
	ps, err := gate.NewPolicySource(gate.PolicySourceConfig{Holder: h, Dir: dir, Record: evs.record, GateID: "spiffe://supplychain.example/agent/vendor-portal",
		PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	first, src, _ := ps.Status()
	if src != gate.PolicyFromDir || first != h.Engine().Revision() || !h.Decide(readReq(), time.Now()).Allow {
		t.Fatalf("initial: %s %s", first, src)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ps.Run(ctx)

	if err := os.WriteFile(filepath.Join(dir, "freeze.cedar"), []byte(forbidPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new forbid", func() bool { return !h.Decide(readReq(), time.Now()).Allow })
	second, _, _ := ps.Status()
	if ev := evs.last(); ev.Kind != audit.KindPolicyBundle || ev.Outcome != "activated" || ev.Detail["revision"] != second ||
		ev.Detail["previous_revision"] != first || ev.Detail["trigger"] != "change" {
		t.Errorf("activation event %+v", ev)
	}

	// A broken edit: refused, the frozen bundle stays.
	if err := os.WriteFile(filepath.Join(dir, "broken.cedar"), []byte(`permit (principal, action, resource) when { nonsense };`), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refusal", func() bool { _, _, e := ps.Status(); return e != "" })
	if rev, _, lastErr := ps.Status(); rev != second || !strings.Contains(lastErr, "bundle_invalid") {
		t.Errorf("after a broken edit: %s %q", rev, lastErr)
	}
	if h.Decide(readReq(), time.Now()).Allow {
		t.Error("the last good bundle no longer enforces")
	}
	if ev := evs.last(); ev.Outcome != "refused" || ev.Reason != gate.BundleInvalid || ev.Detail["enforcing_revision"] != second || ev.Detail["error"] == "" {
		t.Errorf("refusal event %+v", ev)
	}

	// SIGHUP after fixing: back to the first bundle.
	os.Remove(filepath.Join(dir, "broken.cedar"))
	os.Remove(filepath.Join(dir, "freeze.cedar"))
	if err := ps.Reload(ctx, "sighup"); err != nil {
		t.Fatal(err)
	}
	if rev, _, lastErr := ps.Status(); rev != first || lastErr != "" || !h.Decide(readReq(), time.Now()).Allow {
		t.Errorf("after reload: %s %q", rev, lastErr)
	}
}

// centralFixture signs bundles and serves them by revision, as the control plane does.
type centralFixture struct {
	key     ed25519.PrivateKey
	pub     ed25519.PublicKey
	mu      sync.Mutex
	bundles map[string][]byte
	fail    error
}

func newCentral(t *testing.T) *centralFixture {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	return &centralFixture{key: key, pub: pub, bundles: map[string][]byte{}}
}

func (c *centralFixture) push(t *testing.T, dir string, key ed25519.PrivateKey) string {
	t.Helper()
	e, err := policy.Load(dir, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := policy.WriteBundle(e, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.bundles[e.Revision()] = b
	c.mu.Unlock()
	return e.Revision()
}

func (c *centralFixture) fetch(_ context.Context, rev string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return nil, c.fail
	}
	b, ok := c.bundles[rev]
	if !ok {
		return nil, errors.New("404")
	}
	return b, nil
}

// TestCentralPolicyFollowsTrustState: the revision the trust state names is fetched,
// verified and swapped in; a bundle signed by another key is refused (event, last error)
// and the previous one keeps enforcing; after a restart the cached bundle enforces
// before the control plane answers.
func TestCentralPolicyFollowsTrustState(t *testing.T) {
	c := newCentral(t)
	dir := copyPolicies(t)
	base := c.push(t, dir, c.key)
	os.WriteFile(filepath.Join(dir, "freeze.cedar"), []byte(forbidPolicy), 0o644)
	frozen := c.push(t, dir, c.key)
	cache := filepath.Join(t.TempDir(), "policy-bundle.json")
	var evs events
	changed := make(chan struct{}, 16)
	cfg := gate.PolicySourceConfig{Holder: &policy.Holder{}, Central: true, Fetch: c.fetch, PublicKey: c.pub, CachePath: cache,
		Record: evs.record, GateID: "spiffe://supplychain.example/agent/vendor-portal", OnChange: func() { changed <- struct{}{} }}
	ps, err := gate.NewPolicySource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.Holder.Decide(readReq(), time.Now()); d.Allow || d.Code != policy.CodeNoPolicy {
		t.Fatalf("before any bundle: %+v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ps.Run(ctx)
	ps.Follow(&truststate.Document{PolicyRevision: base})
	waitFor(t, "the base revision", func() bool { r, _, _ := ps.Status(); return r == base })
	ps.Follow(&truststate.Document{PolicyRevision: frozen})
	waitFor(t, "the frozen revision", func() bool { r, _, _ := ps.Status(); return r == frozen })
	if cfg.Holder.Decide(readReq(), time.Now()).Allow {
		t.Fatal("the pushed forbid is not enforced")
	}

	// A bundle signed by a key the gate does not trust.
	_, rogue, _ := ed25519.GenerateKey(rand.Reader)
	os.Remove(filepath.Join(dir, "freeze.cedar"))
	os.WriteFile(filepath.Join(dir, "other.cedar"), []byte(strings.ReplaceAll(forbidPolicy, "freeze-order-reads", "other-freeze")), 0o644)
	bad := c.push(t, dir, rogue)
	ps.Follow(&truststate.Document{PolicyRevision: bad})
	waitFor(t, "the refusal", func() bool { _, _, e := ps.Status(); return e != "" })
	if rev, _, lastErr := ps.Status(); rev != frozen || !strings.Contains(lastErr, gate.BundleSignature) {
		t.Errorf("after a rogue bundle: %s %q", rev, lastErr)
	}
	if ev := evs.last(); ev.Outcome != "refused" || ev.Reason != gate.BundleSignature || ev.Detail["revision"] != bad || ev.GateID == "" {
		t.Errorf("refusal event %+v", ev)
	}
	if cfg.Holder.Decide(readReq(), time.Now()).Allow {
		t.Error("the last good (frozen) bundle no longer enforces")
	}
	cancel()

	// Restart with the control plane unreachable: the cached bundle enforces.
	c.fail = errors.New("connection refused")
	cfg.Holder, cfg.OnChange = &policy.Holder{}, nil
	ps2, err := gate.NewPolicySource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rev, src, _ := ps2.Status(); rev != frozen || src != gate.PolicyFromCentral || cfg.Holder.Decide(readReq(), time.Now()).Allow {
		t.Errorf("restart: %s %s", rev, src)
	}
}
