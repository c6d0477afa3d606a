package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/server"
)

func signedDefaultBundle(t *testing.T, key ed25519.PrivateKey) ([]byte, string) {
	t.Helper()
	e, err := policy.Load(filepath.Join("..", "..", "policies"), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := policy.WriteBundle(e, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b, e.Revision()
}

// TestPolicyPush: a bundle signed with the configured key becomes the trust state's
// policy_revision (one policy_bundle event, activated) and any agent fetches it by
// revision; a second push of it changes nothing; bundles signed with another key,
// tampered with, or malformed are refused with their reason and a refused event.
func TestPolicyPush(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	f, st, _ := startAuditedConf(t, t.TempDir(), func(c *server.Config) { c.PolicyKeys = []ed25519.PublicKey{pub} })
	ctx := context.Background()
	raw, rev := signedDefaultBundle(t, key)
	out, err := f.admin.PushPolicy(ctx, api.PolicyPush{Bundle: raw, Reason: "CHG-1 two trust signals", Operator: "erin"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Revision != rev || out.KeyID != policy.KeyID(pub) || out.Unchanged {
		t.Fatalf("push: %+v", out)
	}
	if _, doc := f.srv.Trust().Current(); doc.PolicyRevision != rev || doc.Version != out.Version {
		t.Fatalf("trust state names %q at v%d", doc.PolicyRevision, doc.Version)
	}
	again, err := f.admin.PushPolicy(ctx, api.PolicyPush{Bundle: raw, Reason: "again"})
	if err != nil || !again.Unchanged || again.Version != out.Version {
		t.Errorf("second push: %+v %v", again, err)
	}
	ps, err := f.admin.PolicyStatus(ctx)
	if err != nil || ps.Revision != rev || len(ps.Bundles) != 1 || !ps.Bundles[0].Active {
		t.Errorf("status %+v %v", ps, err)
	}

	// An agent fetches the bundle by revision and it verifies.
	_, src := f.enroll(t, "vendor-portal")
	res, err := src.HTTPClient().Get(f.url + api.PathPolicyBundles + rev)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("fetch: %d", res.StatusCode)
	}
	if e, err := policy.ReadBundle(got, pub, policy.Options{}); err != nil || e.Revision() != rev {
		t.Errorf("fetched bundle: %v", err)
	}
	for _, bad := range []string{"0000", strings.Repeat("A", 64), strings.Repeat("0", 64)} {
		res, err := src.HTTPClient().Get(f.url + api.PathPolicyBundles + bad)
		if err != nil || res.StatusCode < 400 {
			t.Errorf("fetch %q: %v %v", bad, res.StatusCode, err)
		}
		if res != nil {
			res.Body.Close()
		}
	}

	_, rogue, _ := ed25519.GenerateKey(rand.Reader)
	rogueRaw, _ := signedDefaultBundle(t, rogue)
	tampered := bytes.Replace(raw, []byte(`"payload": "`), []byte(`"payload": "A`), 1)
	for name, c := range map[string]struct {
		bundle []byte
		code   string
	}{
		"other key":  {rogueRaw, api.ReasonBundleSignature},
		"tampered":   {tampered, api.ReasonBundleInvalid},
		"not a JSON": {[]byte(`"x"`), api.ReasonBundleInvalid},
	} {
		if _, err := f.admin.PushPolicy(ctx, api.PolicyPush{Bundle: c.bundle, Reason: name}); apiCode(err) != c.code {
			t.Errorf("%s: %v, want %s", name, err, c.code)
		}
	}
	if _, doc := f.srv.Trust().Current(); doc.PolicyRevision != rev {
		t.Errorf("a refused push changed the revision to %q", doc.PolicyRevision)
	}
	var outcomes []string
	for _, ev := range events(t, st) {
		if ev.Kind == audit.KindPolicyBundle {
			outcomes = append(outcomes, ev.Outcome+":"+ev.Reason)
			if ev.Outcome == "activated" && (ev.Detail["revision"] != rev || ev.Detail["operator"] != "erin" || ev.Detail["text"] != "CHG-1 two trust signals") {
				t.Errorf("activated event %+v", ev)
			}
		}
	}
	want := []string{"activated:operator_push", "refused:" + api.ReasonBundleSignature, "refused:" + api.ReasonBundleInvalid, "refused:" + api.ReasonBundleInvalid}
	slices.Sort(outcomes)
	slices.Sort(want)
	if !slices.Equal(outcomes, want) {
		t.Errorf("policy_bundle events %v, want %v", outcomes, want)
	}
}

// TestPolicyPushWithoutKey: a server with no policy key refuses every push.
func TestPolicyPushWithoutKey(t *testing.T) {
	f := start(t, options{})
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	raw, _ := signedDefaultBundle(t, key)
	if _, err := f.admin.PushPolicy(context.Background(), api.PolicyPush{Bundle: raw, Reason: "r"}); apiCode(err) != api.ReasonNoPolicyKey {
		t.Errorf("push without a server key: %v", err)
	}
}

// TestGateHeartbeats: a gate's report is kept under its certificate's identity and listed
// with flags: drift against the trust state's revision, behind, stale, error.
func TestGateHeartbeats(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	f, _, _ := startAuditedConf(t, t.TempDir(), func(c *server.Config) { c.PolicyKeys = []ed25519.PublicKey{pub} })
	ctx := context.Background()
	raw, rev := signedDefaultBundle(t, key)
	if _, err := f.admin.PushPolicy(ctx, api.PolicyPush{Bundle: raw, Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	_, good := f.enroll(t, "vendor-portal")
	_, lagging := f.enroll(t, "erp-gate")
	_, doc := f.srv.Trust().Current()
	post := func(src interface{ HTTPClient() *http.Client }, rep api.GateReport) error {
		return api.Do(ctx, src.HTTPClient(), http.MethodPost, f.url+api.PathGateHeartbeat, rep, nil)
	}
	if err := post(good, api.GateReport{Mode: "inbound", Zone: "cloud", PolicyRevision: rev, PolicySource: "central",
		TrustStateVersion: doc.Version, TrustStateAgeMS: 100, MaxStalenessMS: 300000, SVIDExpiresAt: time.Now().Add(10 * time.Minute), IntervalMS: 10000}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // past BehindGrace after the current version was issued
	if err := post(lagging, api.GateReport{Mode: "legacy", PolicyRevision: strings.Repeat("a", 64), PolicySource: "dir",
		TrustStateVersion: doc.Version - 1, TrustStateAgeMS: 400000, MaxStalenessMS: 300000, LastError: "fetch policy: refused", IntervalMS: 10000}); err != nil {
		t.Fatal(err)
	}
	for name, rep := range map[string]api.GateReport{
		"bad mode":     {Mode: "sideways"},
		"bad revision": {Mode: "inbound", PolicyRevision: "zz"},
		"negative":     {Mode: "inbound", SpoolDepth: -1},
		"long error":   {Mode: "inbound", LastError: strings.Repeat("x", 600)},
	} {
		if err := post(good, rep); apiCode(err) != api.ReasonBadRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
	gs, err := f.admin.Gates(ctx)
	if err != nil || len(gs) != 2 {
		t.Fatalf("gates %+v %v", gs, err)
	}
	flags := map[string][]string{}
	for _, g := range gs {
		flags[g.GateID] = g.Flags
	}
	if fl := flags["spiffe://supplychain.example/agent/vendor-portal"]; len(fl) != 0 {
		t.Errorf("healthy gate flagged %v", fl)
	}
	if fl := flags["spiffe://supplychain.example/agent/erp-gate"]; !slices.Equal(fl, []string{"drift", "behind", "stale", "error"}) {
		t.Errorf("lagging gate flags %v", fl)
	}
	if err := api.Do(ctx, good.HTTPClient(), http.MethodGet, f.url+api.PathAdminGates, nil, nil); apiCode(err) != api.ReasonForbidden {
		t.Errorf("an agent listed the gates: %v", err)
	}
}
