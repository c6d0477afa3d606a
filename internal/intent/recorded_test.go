package intent_test

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/intent"
)

// TestVerifyRecorded: an intent kept in an audit event verifies later against the
// recorded certificate at the recorded decision time, as often as asked (no replay
// cache, no body), and every way a record can lie is named: another certificate, a
// swapped payload, a decision time outside the intent's window.
func TestVerifyRecorded(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.issue(t, "procurement", intent.AlgES256)
	other, _ := ca.issue(t, "procurement", intent.AlgES256)
	c := claimsFor(t, cert, []byte(`{"po":1001}`))
	tok := sign(t, c, key)
	parts := strings.Split(tok, ".")
	edited := claimsFor(t, cert, []byte(`{"po":9999}`))
	swapped := parts[0] + "." + strings.Split(sign(t, edited, key), ".")[1] + "." + parts[2]
	for _, tc := range []struct {
		name   string
		token  string
		cert   *x509.Certificate
		at     time.Time
		reason string
	}{
		{"recorded-intent-verifies", tok, cert, t0.Add(10 * time.Second), ""},
		{"again-no-replay-cache", tok, cert, t0.Add(10 * time.Second), ""},
		{"another-certificate", tok, other, t0, intent.ReasonChannelMismatch},
		{"payload-swapped", swapped, cert, t0, intent.ReasonBadSignature},
		{"decision-after-expiry", tok, cert, t0.Add(40 * time.Second), intent.ReasonExpired},
		{"decision-before-issue", tok, cert, t0.Add(-time.Minute), intent.ReasonNotYetValid},
		{"not-a-jws", "x.y", cert, t0, intent.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := intent.VerifyRecorded(tc.token, tc.cert, tc.at)
			if intent.ReasonOf(err) != tc.reason {
				t.Fatalf("reason %q (%v), want %q", intent.ReasonOf(err), err, tc.reason)
			}
			if err == nil && (got.ID != c.ID || got.Audience != receiver || got.Action != c.Action) {
				t.Errorf("claims %+v, want those signed", got)
			}
		})
	}
}
