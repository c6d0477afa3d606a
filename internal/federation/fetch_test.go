package federation_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/federation"
	"github.com/warden-a2a/warden/internal/federation/federationtest"
	"github.com/warden-a2a/warden/internal/webpkitest"
)

var partner = spiffeid.RequireTrustDomainFromString("partner.example")

// TestFetchHTTPSSpiffeFromGoSpiffeHandler: an https_spiffe endpoint served by go-spiffe's
// own federation handler (the bundle format SPIRE serves) is fetched with the
// operator-supplied bundle, and only when the server presents the configured SPIFFE ID.
func TestFetchHTTPSSpiffeFromGoSpiffeHandler(t *testing.T) {
	f := federationtest.New(t, partner.Name())
	url := f.ServeSPIFFE(t)
	boot := f.X509Bundle()
	ep := federation.Endpoint{TrustDomain: partner, URL: url, Profile: federation.ProfileSPIFFE, SPIFFEID: f.EndpointID}
	got, err := federation.Fetch(context.Background(), ep, federation.FetchConfig{Bundles: boot})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(f.Bundle()) {
		t.Fatal("fetched bundle differs from the served one")
	}
	if h, _ := got.RefreshHint(); federation.NextRefresh(got, 0) != 90*time.Second || h != 90*time.Second {
		t.Errorf("refresh hint %s", h)
	}

	t.Run("wrong endpoint SPIFFE ID", func(t *testing.T) {
		bad := ep
		bad.SPIFFEID = spiffeid.RequireFromPath(partner, "/other")
		if _, err := federation.Fetch(context.Background(), bad, federation.FetchConfig{Bundles: boot}); err == nil {
			t.Fatal("accepted an endpoint presenting another SPIFFE ID")
		}
	})
	t.Run("bootstrap bundle of another CA", func(t *testing.T) {
		other := federationtest.New(t, partner.Name())
		if _, err := federation.Fetch(context.Background(), ep, federation.FetchConfig{Bundles: other.X509Bundle()}); err == nil {
			t.Fatal("accepted an endpoint whose SVID does not chain to the configured bundle")
		}
	})
	t.Run("web profile against an SVID", func(t *testing.T) {
		web := federation.Endpoint{TrustDomain: partner, URL: url, Profile: federation.ProfileWeb}
		if _, err := federation.Fetch(context.Background(), web, federation.FetchConfig{}); err == nil {
			t.Fatal("https_web accepted a certificate outside the Web PKI")
		}
	})
}

// TestFetchHTTPSWeb: an https_web endpoint (go-spiffe's handler behind a Web PKI
// certificate) is fetched with the Web PKI roots, and refused with other roots.
func TestFetchHTTPSWeb(t *testing.T) {
	f := federationtest.New(t, partner.Name())
	pki := webpkitest.New(t)
	url := f.ServeWeb(t, pki.CertFile, pki.KeyFile)
	ep := federation.Endpoint{TrustDomain: partner, URL: url + "bundle", Profile: federation.ProfileWeb}
	got, err := federation.Fetch(context.Background(), ep, federation.FetchConfig{WebRoots: pki.Pool})
	if err != nil || !got.Equal(f.Bundle()) {
		t.Fatalf("https_web fetch: %v", err)
	}
	if _, err := federation.Fetch(context.Background(), ep, federation.FetchConfig{WebRoots: webpkitest.New(t).Pool}); err == nil {
		t.Fatal("accepted a certificate from roots not configured")
	}
}

// TestFetchRefusals: what a bundle endpoint can do wrong, each refused.
func TestFetchRefusals(t *testing.T) {
	f := federationtest.New(t, partner.Name())
	pki := webpkitest.New(t)
	cert, _ := tls.LoadX509KeyPair(pki.CertFile, pki.KeyFile)
	good, _ := f.Bundle().Marshal()
	var base string
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(good) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[],"pad":"`))
		_, _ = w.Write([]byte(strings.Repeat("a", federation.MaxBundleSize)))
		_, _ = w.Write([]byte(`"}`))
	})
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500); _, _ = w.Write(good) })
	mux.HandleFunc("/to-http", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+strings.TrimPrefix(base, "https://")+"/ok", http.StatusFound)
	})
	mux.HandleFunc("/to-userinfo", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://u:p@"+strings.TrimPrefix(base, "https://")+"/ok", http.StatusFound)
	})
	mux.HandleFunc("/to-ok", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusTemporaryRedirect) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/negative-hint", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Replace(string(good), `"spiffe_refresh_hint":90`, `"spiffe_refresh_hint":-5`, 1)))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	base = federationtest.ServeTLS(t, mux, cert)
	fetch := func(path string) error {
		ep := federation.Endpoint{TrustDomain: partner, URL: base + path, Profile: federation.ProfileWeb}
		_, err := federation.Fetch(context.Background(), ep, federation.FetchConfig{WebRoots: pki.Pool, Timeout: 2 * time.Second})
		return err
	}
	if err := fetch("/ok"); err != nil {
		t.Fatalf("control: %v", err)
	}
	if err := fetch("/to-ok"); err != nil {
		t.Fatalf("a temporary redirect to a valid endpoint URL is followed: %v", err)
	}
	for _, p := range []string{"/big", "/500", "/to-http", "/to-userinfo", "/loop", "/negative-hint", "/slow"} {
		if err := fetch(p); err == nil {
			t.Errorf("%s: accepted", p)
		}
	}
}

func TestEndpointValidate(t *testing.T) {
	id := spiffeid.RequireFromPath(partner, "/spire/server")
	for _, c := range []struct {
		name string
		ep   federation.Endpoint
	}{
		{"http scheme", federation.Endpoint{TrustDomain: partner, URL: "http://x/b", Profile: federation.ProfileWeb}},
		{"userinfo", federation.Endpoint{TrustDomain: partner, URL: "https://u@x/b", Profile: federation.ProfileWeb}},
		{"no host", federation.Endpoint{TrustDomain: partner, URL: "https:///b", Profile: federation.ProfileWeb}},
		{"spiffe without id", federation.Endpoint{TrustDomain: partner, URL: "https://x/b", Profile: federation.ProfileSPIFFE}},
		{"web with id", federation.Endpoint{TrustDomain: partner, URL: "https://x/b", Profile: federation.ProfileWeb, SPIFFEID: id}},
		{"unknown profile", federation.Endpoint{TrustDomain: partner, URL: "https://x/b", Profile: "https"}},
		{"no trust domain", federation.Endpoint{URL: "https://x/b", Profile: federation.ProfileWeb}},
	} {
		if c.ep.Validate() == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	ok := federation.Endpoint{TrustDomain: partner, URL: "https://x/b", Profile: federation.ProfileSPIFFE, SPIFFEID: id}
	if err := ok.Validate(); err != nil || !ok.SelfServing() {
		t.Errorf("valid self-serving endpoint: %v", err)
	}
}
