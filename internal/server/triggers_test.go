package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// shipper ships decision events as vendor-portal's gate.
type shipper struct {
	t    *testing.T
	f    *fixture
	sink audit.HTTPSink
	n    int
}

func newShipper(t *testing.T, f *fixture) *shipper {
	ctx := context.Background()
	// An advisory class: it enrols without TPM evidence.
	if _, err := f.admin.CreateEntry(ctx, api.Entry{Name: "vendor-portal", Role: "vendor", Class: "advisory", Zone: "cloud"}); err != nil {
		t.Fatal(err)
	}
	tok, _ := f.admin.CreateToken(ctx, "vendor-portal", time.Minute)
	svid, bundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: f.url, Token: tok.Token})
	if err != nil {
		t.Fatal(err)
	}
	src, _ := sdk.NewSource(sdk.SourceConfig{ServerURL: f.url, SVID: svid, Bundle: bundle})
	t.Cleanup(src.HTTPClient().CloseIdleConnections)
	return &shipper{t: t, f: f, sink: audit.HTTPSink{URL: f.url, Client: src.HTTPClient()}}
}

func (s *shipper) ship(caller, action, class, decision, reason string) {
	s.t.Helper()
	s.n++
	self := "spiffe://supplychain.example/agent/vendor-portal"
	e := audit.Event{V: 1, ID: fmt.Sprintf("dec-%d-%d", time.Now().UnixNano(), s.n), Kind: audit.KindDecision, Time: time.Now(), GateID: self,
		Caller: caller, Callee: self, Action: action, Decision: decision, Reason: reason, Detail: map[string]string{"action_class": class}}
	b, _ := e.Canonical()
	if err := s.sink.Ship(context.Background(), [][]byte{b}); err != nil {
		s.t.Fatal(err)
	}
}

func challengeOf(f *fixture, id string) (truststate.Challenge, bool) {
	_, doc := f.srv.Trust().Current()
	c, ok := doc.Challenges[id]
	return c, ok
}

func advisoryEntry(t *testing.T, f *fixture, name string) string {
	t.Helper()
	if _, err := f.admin.CreateEntry(context.Background(), api.Entry{Name: name, Role: "procurement", Class: "advisory", Zone: "cloud"}); err != nil {
		t.Fatal(err)
	}
	return "spiffe://supplychain.example/agent/" + name
}

// TestHigherClassActionChallenges: an agent whose decisions so far were reads is
// challenged at its first transactional action (higher_class_action), not before.
func TestHigherClassActionChallenges(t *testing.T) {
	f, _, _ := startAuditedConf(t, t.TempDir(), func(c *server.Config) {
		c.Attestation = &server.AttestConfig{Triggers: &attest.TriggerConfig{HigherClass: true}}
	})
	sh := newShipper(t, f)
	caller := advisoryEntry(t, f, "buyer")
	sh.ship(caller, "purchase_order.read", "read-only", audit.DecisionAllow, "policy_allow")
	sh.ship(caller, "purchase_order.read", "read-only", audit.DecisionAllow, "policy_allow")
	if _, ok := challengeOf(f, caller); ok {
		t.Fatal("challenged after reads")
	}
	sh.ship(caller, "purchase_order.create", "transactional", audit.DecisionAllow, "policy_allow")
	if c, ok := challengeOf(f, caller); !ok || c.Rule != string(attest.TriggerHigherClass) {
		t.Fatalf("after the first transactional action: %+v %v", c, ok)
	}
}

// TestAnomaliesQuarantine: with AnomalyQuarantine set, an agent raising that many
// anomalies is quarantined in the trust state (a quarantine event by the detector).
func TestAnomaliesQuarantine(t *testing.T) {
	f, st, _ := startAuditedConf(t, t.TempDir(), func(c *server.Config) {
		c.Attestation, c.AnomalyQuarantine = &server.AttestConfig{}, 1
	})
	sh := newShipper(t, f)
	caller := advisoryEntry(t, f, "prober")
	for range 6 {
		sh.ship(caller, "payment.release", "regulated", audit.DecisionDeny, "policy_deny")
	}
	_, doc := f.srv.Trust().Current()
	if got := doc.Status(caller); got != truststate.StatusQuarantined {
		t.Fatalf("status %q after repeated denials", got)
	}
	found := false
	for _, ev := range events(t, st) {
		found = found || ev.Kind == audit.KindQuarantine && ev.Subject == caller && ev.Actor == "detector" && ev.Reason == "anomaly_threshold"
	}
	if !found {
		t.Error("no quarantine event")
	}
}

// TestDependencyChangeChallenges: the catalog the server follows declares the
// dependencies of each agent; changing one agent's challenges that agent only.
func TestDependencyChangeChallenges(t *testing.T) {
	dir := t.TempDir()
	cat := filepath.Join(dir, "catalog.yaml")
	write := func(access string) {
		body := `trust_domain: supplychain.example
agents:
  - {name: buyer, owner: o, environment: cloud, zone: cloud, class: advisory}
  - {name: other, owner: o, environment: cloud, zone: cloud, class: advisory}
dependencies:
  - name: po-events
    kind: queue
    owner: o
    used_by: [{agent: buyer, access: ` + access + `}, {agent: other, access: read}]
`
		if err := os.WriteFile(cat, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("read")
	f, _, _ := startAuditedConf(t, t.TempDir(), func(c *server.Config) {
		c.Attestation, c.Catalog = &server.AttestConfig{Triggers: &attest.TriggerConfig{DependencyChange: true}}, cat
	})
	buyer, other := advisoryEntry(t, f, "buyer"), advisoryEntry(t, f, "other")
	time.Sleep(100 * time.Millisecond) // the baseline is read at start
	if _, ok := challengeOf(f, buyer); ok {
		t.Fatal("challenged by the first read of the catalog")
	}
	// a later modification time, whatever the file system's resolution
	write("write")
	later := time.Now().Add(2 * time.Second)
	_ = os.Chtimes(cat, later, later)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, ok := challengeOf(f, buyer); ok {
			if c.Rule != string(attest.TriggerDependencyChange) {
				t.Fatalf("rule %q", c.Rule)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no challenge after buyer's dependencies changed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := challengeOf(f, other); ok {
		t.Error("an agent whose dependencies did not change was challenged")
	}
}

// TestPolicyChangeChallenges: a push that changes what an agent may do challenges that
// agent (policy_changed) and no other.
func TestPolicyChangeChallenges(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	f, _, _ := startAuditedConf(t, t.TempDir(), func(c *server.Config) {
		c.Attestation, c.PolicyKeys = &server.AttestConfig{}, []ed25519.PublicKey{pub}
	})
	ctx := context.Background()
	raw, _ := signedDefaultBundle(t, key)
	if _, err := f.admin.PushPolicy(ctx, api.PolicyPush{Bundle: raw, Reason: "base"}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, role := range []string{"forecasting", "shipping"} {
		if _, err := f.admin.CreateEntry(ctx, api.Entry{Name: role + "-agent", Role: role, Class: "advisory", Zone: "cloud"}); err != nil {
			t.Fatal(err)
		}
		ids[role] = "spiffe://supplychain.example/agent/" + role + "-agent"
	}
	dir := t.TempDir()
	src := filepath.Join("..", "..", "policies")
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		if !e.IsDir() {
			b, _ := os.ReadFile(filepath.Join(src, e.Name()))
			os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
		}
	}
	os.WriteFile(filepath.Join(dir, "freeze.cedar"), []byte(`@id("no-forecasts")
@reason("forecasts are frozen")
forbid (principal is Agent, action == Action::"forecast.publish", resource);
`), 0o644)
	e, err := policy.Load(dir, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := policy.WriteBundle(e, key, time.Now())
	if _, err := f.admin.PushPolicy(ctx, api.PolicyPush{Bundle: b, Reason: "freeze forecasts"}); err != nil {
		t.Fatal(err)
	}
	if c, ok := challengeOf(f, ids["forecasting"]); !ok || c.Rule != server.TriggerPolicyChanged {
		t.Errorf("forecasting agent: %+v %v", c, ok)
	}
	if c, ok := challengeOf(f, ids["shipping"]); ok {
		t.Errorf("shipping agent challenged: %+v", c)
	}
}

// TestReferenceValueChangeChallenges: new reference values for an attested agent push it
// a challenge (reference_values_changed): it proves itself against them now.
func TestReferenceValueChangeChallenges(t *testing.T) {
	f := start(t, options{att: attestOn()})
	a := f.attestedEntry(t, "refs-agent", "transactional", "procurement", 301)
	if err := f.enrollAttested(t, a); err != nil {
		t.Fatal(err)
	}
	id := "spiffe://supplychain.example/agent/refs-agent"
	if _, ok := challengeOf(f, id); ok {
		t.Fatal("challenged at enrolment")
	}
	d, err := attest.FileDigest(a.bin)
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := attest.AttrsWithRefs(nil, attest.ReferenceValues{Binaries: []string{d, "sha256:" + fmt.Sprintf("%064x", 7)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.SetEntryAttrs(context.Background(), "refs-agent", attrs); err != nil {
		t.Fatal(err)
	}
	if c, ok := challengeOf(f, id); !ok || c.Rule != server.TriggerRefsChanged {
		t.Errorf("after new reference values: %+v %v", c, ok)
	}
}
