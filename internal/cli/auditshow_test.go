package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/sdk"
)

// TestVerifyRecordedIntent: the evidence of a decision event verifies against the
// trust bundle at the event's time, and every edit of the record that would change what
// the caller is said to have asked for is named.
func TestVerifyRecordedIntent(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("supplychain.example")
	dir := t.TempDir()
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: filepath.Join(dir, "ca")})
	if err != nil {
		t.Fatal(err)
	}
	// Another CA of the same trust domain: its root is not the caller's trust anchor.
	if _, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: filepath.Join(dir, "other-ca")}); err != nil {
		t.Fatal(err)
	}
	caller := spiffeid.RequireFromPath(td, "/agent/procurement")
	issue := func() ([]string, string, *x509.Certificate, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		leaf, err := c.SignX509SVID(ca.X509Request{PublicKey: key.Public(), ID: caller, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		chain := []string{base64.StdEncoding.EncodeToString(leaf.Raw)}
		for _, in := range c.ChainFor(leaf) {
			chain = append(chain, base64.StdEncoding.EncodeToString(in.Raw))
		}
		sum := sha256.Sum256(leaf.Raw)
		return chain, hex.EncodeToString(sum[:]), leaf, key
	}
	chain, sum, cert, key := issue()
	otherChain, otherSum, _, _ := issue()
	now := time.Now().UTC()
	tok, err := sdk.SignIntent(cert, key, sdk.Intent{Audience: "spiffe://supplychain.example/agent/vendor-portal", Action: "purchase_order.create",
		Resource: "PurchaseOrder/PO-1001", Workflow: "wf-1"}, []byte(`{}`), now)
	if err != nil {
		t.Fatal(err)
	}
	base := audit.Event{V: 1, ID: "d-1", Kind: audit.KindDecision, Time: now.Add(time.Second), WorkflowID: "wf-1",
		Caller: caller.String(), Callee: "spiffe://supplychain.example/agent/vendor-portal", CallerCertSHA256: sum, CallerChain: chain,
		Intent: tok, Action: "purchase_order.create", Resource: "PurchaseOrder/PO-1001", Decision: audit.DecisionAllow}
	jti := func() string {
		p := strings.Split(tok, ".")[1]
		b, _ := base64.RawURLEncoding.DecodeString(p)
		i := strings.Index(string(b), `"jti":"`)
		return string(b[i+7 : i+7+22])
	}()
	base.IntentJTI = jti
	root := filepath.Join(dir, "ca", "root.pem")
	for _, tc := range []struct {
		name   string
		edit   func(e *audit.Event)
		bundle string
		want   string // "" = OK
	}{
		{"recorded-decision-verifies", func(*audit.Event) {}, root, ""},
		{"action-edited", func(e *audit.Event) { e.Action = "payment.release" }, root, "action (act)"},
		{"resource-edited", func(e *audit.Event) { e.Resource = "PurchaseOrder/PO-9" }, root, "resource (res)"},
		{"callee-edited", func(e *audit.Event) { e.Callee = "spiffe://supplychain.example/agent/erp" }, root, "callee (aud)"},
		{"jti-edited", func(e *audit.Event) { e.IntentJTI = "AAAAAAAAAAAAAAAAAAAAAA" }, root, "intent_jti (jti)"},
		{"caller-edited", func(e *audit.Event) { e.Caller = "spiffe://supplychain.example/agent/logistics" }, root, "the event names caller"},
		{"chain-of-another-certificate", func(e *audit.Event) { e.CallerChain = otherChain }, root, "caller_cert_sha256"},
		{"chain-and-hash-of-another-certificate", func(e *audit.Event) { e.CallerChain, e.CallerCertSHA256 = otherChain, otherSum }, root, "intent: channel_mismatch"},
		{"decision-time-after-the-intent-expired", func(e *audit.Event) { e.Time = now.Add(10 * time.Minute) }, root, "intent: expired"},
		{"bundle-of-another-trust-anchor", func(*audit.Event) {}, filepath.Join(dir, "other-ca", "root.pem"), "does not verify against"},
		{"no-intent-recorded", func(e *audit.Event) { e.Intent = "" }, root, "carries no signed intent"},
		{"not-a-decision", func(e *audit.Event) { e.Kind, e.Decision = audit.KindRevocation, "" }, root, "not a decision"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := base
			ev.CallerChain = append([]string(nil), chain...)
			tc.edit(&ev)
			var out strings.Builder
			err := verifyRecordedIntent(&out, ev, tc.bundle)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("FAIL: %v\n%s", err, out.String())
			case tc.want == "" && !strings.Contains(out.String(), "OK: "+caller.String()+" signed purchase_order.create on PurchaseOrder/PO-1001"):
				t.Fatalf("output:\n%s", out.String())
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}
