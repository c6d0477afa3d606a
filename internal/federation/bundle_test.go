package federation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"

	"github.com/warden-a2a/warden/internal/federation"
	"github.com/warden-a2a/warden/internal/federation/federationtest"
)

func TestParseBundleRefusals(t *testing.T) {
	good, _ := federationtest.New(t, partner.Name()).Bundle().Marshal()
	if _, err := federation.ParseBundle(partner, good); err != nil {
		t.Fatalf("control: %v", err)
	}
	g := string(good)
	for name, doc := range map[string]string{
		"negative refresh hint": strings.Replace(g, `"spiffe_refresh_hint":90`, `"spiffe_refresh_hint":-1`, 1),
		"overflowing hint":      strings.Replace(g, `"spiffe_refresh_hint":90`, `"spiffe_refresh_hint":9223372036854775807`, 1),
		"fractional hint":       strings.Replace(g, `"spiffe_refresh_hint":90`, `"spiffe_refresh_hint":1.5`, 1),
		"trailing data":         g + `{}`,
		"no keys member":        `{"spiffe_refresh_hint":60}`,
		"empty keys":            `{"keys":[]}`,
		"not an object":         `[]`,
		"two certificates":      `{"keys":[{"use":"x509-svid","kty":"EC","x5c":["AA==","AA=="]}]}`,
		"too large":             `{"keys":[],"x":"` + strings.Repeat("a", federation.MaxBundleSize) + `"}`,
	} {
		if _, err := federation.ParseBundle(partner, []byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNextRefreshBounds(t *testing.T) {
	b := spiffebundle.New(partner)
	for _, c := range []struct {
		hint  time.Duration
		floor time.Duration
		want  time.Duration
	}{
		{0, 0, federation.DefaultRefresh},
		{time.Second, 0, federation.MinRefresh},
		{time.Second, 100 * time.Millisecond, time.Second},
		{48 * time.Hour, 0, federation.MaxRefresh},
		{2 * time.Minute, 0, 2 * time.Minute},
	} {
		b.SetRefreshHint(c.hint)
		if got := federation.NextRefresh(b, c.floor); got != c.want {
			t.Errorf("hint %s floor %s: %s, want %s", c.hint, c.floor, got, c.want)
		}
	}
}

func TestNewerRefusesRollback(t *testing.T) {
	a, b := spiffebundle.New(partner), spiffebundle.New(partner)
	a.SetSequenceNumber(5)
	b.SetSequenceNumber(4)
	if federation.Newer(a, b) || !federation.Newer(b, a) || !federation.Newer(nil, b) {
		t.Fatal("sequence numbers not respected")
	}
	b.ClearSequenceNumber()
	if !federation.Newer(a, b) {
		t.Fatal("without a sequence number the newest fetch wins")
	}
}
