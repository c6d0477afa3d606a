package server_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	gofed "github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/federation"
	"github.com/warden-a2a/warden/internal/federation/federationtest"
	"github.com/warden-a2a/warden/internal/server"
)

var partnerTD = spiffeid.RequireTrustDomainFromString("partner.example")

func bundleJSON(t *testing.T, b *spiffebundle.Bundle) json.RawMessage {
	t.Helper()
	doc, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// federatedBundle is the partner's bundle as the trust state of f carries it.
func federatedBundle(t *testing.T, f *fixture, td spiffeid.TrustDomain) *spiffebundle.Bundle {
	t.Helper()
	_, doc := f.srv.Trust().Current()
	fd, ok := doc.Federation[td.Name()]
	if !ok {
		return nil
	}
	b, err := federation.ParseBundle(td, fd.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFederationHTTPSSpiffeBetweenWardens: a Warden federates with another Warden's
// https_spiffe endpoint (its API's /v1/bundle, spiffe://partner.example/warden/server),
// bootstrapped with the partner's bundle: the bundle lands in the signed trust state;
// list shows it; remove takes it out. A missing bootstrap bundle, a wrong endpoint ID
// and a bootstrap bundle of another CA are refused, with nothing written.
func TestFederationHTTPSSpiffeBetweenWardens(t *testing.T) {
	home := start(t, options{})
	partner := start(t, options{td: partnerTD.Name()})
	ctx := context.Background()
	req := api.FederationRequest{TrustDomain: partnerTD.Name(), EndpointURL: partner.url + api.PathBundle,
		Profile: federation.ProfileSPIFFE, EndpointSPIFFEID: "spiffe://partner.example/warden/server",
		Bundle: bundleJSON(t, partner.srv.CA().SPIFFEBundle()), Role: "carrier", Class: "transactional", Zone: "partner"}

	bad := req
	bad.Bundle = nil
	if _, err := home.admin.AddFederation(ctx, bad); reason(err) != api.ReasonBadRequest {
		t.Errorf("self-serving https_spiffe without a bundle: %v", err)
	}
	bad = req
	bad.EndpointSPIFFEID = "spiffe://partner.example/agent/impostor"
	if _, err := home.admin.AddFederation(ctx, bad); reason(err) != api.ReasonFederationFetch {
		t.Errorf("wrong endpoint SPIFFE ID: %v", err)
	}
	bad = req
	bad.Bundle = bundleJSON(t, federationtest.New(t, partnerTD.Name()).Bundle())
	if _, err := home.admin.AddFederation(ctx, bad); reason(err) != api.ReasonFederationFetch {
		t.Errorf("bootstrap bundle of another CA: %v", err)
	}
	if federatedBundle(t, home, partnerTD) != nil {
		t.Fatal("a refused add was written")
	}

	out, err := home.admin.AddFederation(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if out.X509Authorities != 1 || out.JWTAuthorities != 1 || out.Sequence == nil || out.RefreshHintSec != 300 {
		t.Errorf("added: %+v", out)
	}
	if got := federatedBundle(t, home, partnerTD); got == nil || !got.X509Bundle().Equal(partner.srv.CA().SPIFFEBundle().X509Bundle()) {
		t.Fatal("the trust state does not carry the partner's bundle")
	}
	if _, err := home.admin.AddFederation(ctx, req); reason(err) != api.ReasonConflict {
		t.Errorf("second add: %v", err)
	}
	list, err := home.admin.ListFederation(ctx)
	if err != nil || len(list) != 1 || list[0].Role != "carrier" || list[0].LastError != "" || list[0].NextRefresh.IsZero() {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := home.admin.RemoveFederation(ctx, partnerTD.Name(), "contract ended"); err != nil {
		t.Fatal(err)
	}
	if federatedBundle(t, home, partnerTD) != nil {
		t.Fatal("removed relationship still in the trust state")
	}
	if _, err := home.admin.RemoveFederation(ctx, partnerTD.Name(), ""); reason(err) != api.ReasonNotFound {
		t.Errorf("second remove: %v", err)
	}
}

// TestFederationHTTPSWeb: federation with a Warden's https_web endpoint (its Web PKI
// listener), authenticated by the configured Web PKI roots and by nothing else.
func TestFederationHTTPSWeb(t *testing.T) {
	partner := startWeb(t, options{td: partnerTD.Name()})
	ctx := context.Background()
	req := api.FederationRequest{TrustDomain: partnerTD.Name(), EndpointURL: partner.webURL + api.PathBundle, Profile: federation.ProfileWeb}

	sysRoots := start(t, options{})
	if _, err := sysRoots.admin.AddFederation(ctx, req); reason(err) != api.ReasonFederationFetch {
		t.Errorf("https_web endpoint whose certificate the system roots do not know: %v", err)
	}
	home := start(t, options{mod: func(c *server.Config) { c.FederationWebRoots = partner.pki.Pool }})
	if _, err := home.admin.AddFederation(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := federatedBundle(t, home, partnerTD); got == nil || !got.Equal(partnerBundleServed(t, partner)) {
		t.Fatal("the trust state does not carry the bundle served on the web listener")
	}
}

func partnerBundleServed(t *testing.T, f *webFixture) *spiffebundle.Bundle {
	t.Helper()
	var raw json.RawMessage
	getJSON(t, f.rp, f.webURL+api.PathBundle, &raw)
	b, err := spiffebundle.Parse(partnerTD, raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFederationWithSPIREBundleEndpoint: a trust domain served by go-spiffe's own
// federation handler (the format and profile of a SPIRE server's bundle endpoint)
// federates the same way; a new bundle it serves (a key added, sequence up) reaches the
// trust state at the next refresh; a bundle with a lower sequence number is refused and
// the one held is kept.
func TestFederationWithSPIREBundleEndpoint(t *testing.T) {
	spire := federationtest.New(t, partnerTD.Name())
	b := spire.Bundle()
	b.SetSequenceNumber(10)
	b.SetRefreshHint(time.Second)
	spire.SetBundle(b)
	url := spire.ServeSPIFFE(t)
	home := start(t, options{mod: func(c *server.Config) { c.FederationMinRefresh = 100 * time.Millisecond }})
	ctx := context.Background()
	_, err := home.admin.AddFederation(ctx, api.FederationRequest{TrustDomain: partnerTD.Name(), EndpointURL: url,
		Profile: federation.ProfileSPIFFE, EndpointSPIFFEID: spire.EndpointID.String(), Bundle: bundleJSON(t, spire.Bundle())})
	if err != nil {
		t.Fatal(err)
	}
	// The SPIRE server rotates: a second root appears, sequence 11.
	next := spire.Bundle()
	next.AddX509Authority(federationtest.New(t, partnerTD.Name()).CA.Root())
	next.SetSequenceNumber(11)
	spire.SetBundle(next)
	eventually(t, 10*time.Second, "the rotated bundle in the trust state", func() bool {
		got := federatedBundle(t, home, partnerTD)
		return got != nil && got.Equal(next)
	})
	old := next.Clone()
	old.SetSequenceNumber(9)
	old.RemoveX509Authority(old.X509Authorities()[1])
	spire.SetBundle(old)
	eventually(t, 10*time.Second, "the rollback refused", func() bool {
		list, err := home.admin.ListFederation(ctx)
		return err == nil && len(list) == 1 && list[0].LastError != ""
	})
	if got := federatedBundle(t, home, partnerTD); !got.Equal(next) {
		t.Fatal("a bundle with a lower sequence number replaced the one held")
	}
}

// TestGoSpiffeFetchesWardenBundle: go-spiffe's federation client (what a SPIRE server
// runs for federates_with) fetches Warden's bundle over both profiles.
func TestGoSpiffeFetchesWardenBundle(t *testing.T) {
	home := startWeb(t, options{})
	ctx := context.Background()
	want := home.srv.CA().SPIFFEBundle()
	got, err := gofed.FetchBundle(ctx, td, home.url+api.PathBundle,
		gofed.WithSPIFFEAuth(want.X509Bundle(), spiffeid.RequireFromPath(td, "/warden/server")))
	if err != nil {
		t.Fatal(err)
	}
	web, err := gofed.FetchBundle(ctx, td, home.webURL+api.PathBundle, gofed.WithWebPKIRoots(home.pki.Pool))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []*spiffebundle.Bundle{got, web} {
		h, ok := b.RefreshHint()
		seq, sok := b.SequenceNumber()
		if !b.X509Bundle().Equal(want.X509Bundle()) || !b.JWTBundle().Equal(want.JWTBundle()) || !ok || h != 5*time.Minute || !sok || seq != 1 {
			t.Errorf("bundle fetched by go-spiffe: hint %s seq %d", h, seq)
		}
	}
}

// TestRevokeForeignIdentity: the admin API takes revocations, quarantines and
// suspensions of a partner's identities once the partner is federated (not before), and
// a revoked partner identity can be restored after the relationship ended.
func TestRevokeForeignIdentity(t *testing.T) {
	spire := federationtest.New(t, partnerTD.Name())
	url := spire.ServeSPIFFE(t)
	home := start(t, options{})
	ctx := context.Background()
	carrier := "spiffe://partner.example/agent/carrier"
	if _, err := home.admin.ChangeTrust(ctx, "revoke", api.TrustChange{ID: carrier, Reason: "x"}); reason(err) != api.ReasonBadRequest {
		t.Fatalf("revocation of a trust domain not federated: %v", err)
	}
	if _, err := home.admin.AddFederation(ctx, api.FederationRequest{TrustDomain: partnerTD.Name(), EndpointURL: url,
		Profile: federation.ProfileSPIFFE, EndpointSPIFFEID: spire.EndpointID.String(), Bundle: bundleJSON(t, spire.Bundle())}); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"quarantine", "suspend", "revoke"} {
		if _, err := home.admin.ChangeTrust(ctx, op, api.TrustChange{ID: carrier, Reason: "decommissioned"}); err != nil {
			t.Fatalf("%s of a federated identity: %v", op, err)
		}
	}
	_, doc := home.srv.Trust().Current()
	if _, ok := doc.IsRevoked(carrier, ""); !ok || doc.Status(carrier) != "suspended" {
		t.Fatal("the partner's identity is not revoked and suspended in the trust state")
	}
	if _, err := home.admin.RemoveFederation(ctx, partnerTD.Name(), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := home.admin.ChangeTrust(ctx, "restore", api.TrustChange{ID: carrier, Reason: "new contract"}); err != nil {
		t.Fatalf("restore after the relationship ended: %v", err)
	}
}

func eventually(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
