package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/webpkitest"
	"github.com/warden-a2a/warden/sdk"
)

// webFixture is a server with its Web PKI listener (https_web bundle endpoint, OIDC
// discovery, JWKS) and an HTTP client that trusts only the test Web PKI, as an outside
// relying party would.
type webFixture struct {
	*fixture
	pki    *webpkitest.PKI
	webURL string
	rp     *http.Client
}

func startWeb(t *testing.T, o options) *webFixture {
	t.Helper()
	pki := webpkitest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	webURL := "https://" + ln.Addr().String()
	mod := o.mod
	o.mod = func(c *server.Config) {
		c.JWTIssuer = webURL
		if mod != nil {
			mod(c)
		}
	}
	f := start(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.ServeWeb(ctx, ln, pki.CertFile, pki.KeyFile) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve web: %v", err)
		}
	})
	rp := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool}}}
	t.Cleanup(rp.CloseIdleConnections)
	return &webFixture{fixture: f, pki: pki, webURL: webURL, rp: rp}
}

func getJSON(t *testing.T, c *http.Client, url string, v any) http.Header {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res.Header
}

func jwtSVID(t *testing.T, src *sdk.Source, url string, aud ...string) string {
	t.Helper()
	body, _ := json.Marshal(api.JWTSVIDRequest{Audience: aud})
	res, err := src.HTTPClient().Post(url+api.PathJWTSVID, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var resp api.JWTSVIDResponse
	if err := json.NewDecoder(res.Body).Decode(&resp); err != nil || res.StatusCode != 200 {
		t.Fatalf("jwt-svid: status %d err %v", res.StatusCode, err)
	}
	return resp.Token
}

// oidcVerify verifies tok as an ordinary OpenID Connect relying party does with go-jose:
// discovery document from the issuer, JWKS from its jwks_uri, key by kid, ES256 only,
// then iss, aud and exp.
func oidcVerify(t *testing.T, rp *http.Client, issuer, tok, aud string) (*jwt.Claims, error) {
	t.Helper()
	var disc server.OIDCDiscovery
	getJSON(t, rp, issuer+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != issuer {
		t.Fatalf("discovery issuer %q, fetched from %q (OIDC Discovery §4.3 requires them equal)", disc.Issuer, issuer)
	}
	var jwks jose.JSONWebKeySet
	getJSON(t, rp, disc.JWKSURI, &jwks)
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	keys := jwks.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		return nil, jose.ErrJWKSKidNotFound
	}
	var cl jwt.Claims
	if err := parsed.Claims(keys[0].Key, &cl); err != nil {
		return nil, err
	}
	return &cl, cl.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{aud}, Time: time.Now()}, 0)
}

// TestJWTSVIDVerifiedByOIDCRelyingParty: a JWT-SVID is accepted by go-spiffe's
// jwtsvid.ParseAndValidate with a bundle made from the JWKS alone, and by a go-jose
// relying party that knows only the issuer URL and trusts the Web PKI; both refuse it
// for another audience, and refuse a token signed by another key under the same kid.
func TestJWTSVIDVerifiedByOIDCRelyingParty(t *testing.T) {
	f := startWeb(t, options{})
	_, src := f.enroll(t, "logistics")
	const aud = "spiffe://partner.example/agent/carrier"
	tok := jwtSVID(t, src, f.url, aud)

	var raw json.RawMessage
	h := getJSON(t, f.rp, f.webURL+api.PathJWKS, &raw)
	if h.Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("JWKS Cache-Control = %q", h.Get("Cache-Control"))
	}
	jb, err := jwtbundle.Parse(td, raw)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := jwtsvid.ParseAndValidate(tok, jb, []string{aud})
	if err != nil || sv.ID.String() != "spiffe://supplychain.example/agent/logistics" {
		t.Fatalf("go-spiffe from the JWKS alone: %v %v", sv, err)
	}
	if _, err := jwtsvid.ParseAndValidate(tok, jb, []string{"spiffe://supplychain.example/agent/other"}); err == nil {
		t.Error("go-spiffe accepted another audience")
	}

	cl, err := oidcVerify(t, f.rp, f.webURL, tok, aud)
	if err != nil || cl.Subject != "spiffe://supplychain.example/agent/logistics" {
		t.Fatalf("OIDC relying party: %+v %v", cl, err)
	}
	if _, err := oidcVerify(t, f.rp, f.webURL, tok, "other"); err == nil {
		t.Error("OIDC relying party accepted another audience")
	}

	// A token under the published kid but signed by another key.
	p, _ := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	evil, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: evil, KeyID: p.Headers[0].KeyID}}, (&jose.SignerOptions{}).WithType("JWT"))
	forged, _ := jwt.Signed(signer).Claims(jwt.Claims{Issuer: f.webURL, Subject: "spiffe://supplychain.example/agent/payment-release",
		Audience: jwt.Audience{aud}, Expiry: jwt.NewNumericDate(time.Now().Add(time.Minute))}).Serialize()
	if _, err := jwtsvid.ParseAndValidate(forged, jb, []string{aud}); err == nil {
		t.Error("go-spiffe accepted a forged token")
	}
	if _, err := oidcVerify(t, f.rp, f.webURL, forged, aud); err == nil {
		t.Error("OIDC relying party accepted a forged token")
	}
}

// TestWebListenerServesOnlyPublicDocuments: the Web PKI listener answers the bundle,
// the JWKS and the discovery document, nothing of the API, and needs no client
// certificate; a renewed certificate file is served without a restart.
func TestWebListenerServesOnlyPublicDocuments(t *testing.T) {
	f := startWeb(t, options{})
	var bundle json.RawMessage
	getJSON(t, f.rp, f.webURL+api.PathBundle, &bundle)
	for _, p := range []string{api.PathTrustState, api.PathAdminEntries, api.PathBundlePEM, "/"} {
		res, err := f.rp.Get(f.webURL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s on the web listener: %d", p, res.StatusCode)
		}
	}
	first := peerLeaf(t, f)
	cert, key := f.pki.Issue(t, "renewed.test")
	for _, c := range [][2]string{{cert, f.pki.CertFile}, {key, f.pki.KeyFile}} {
		b, _ := os.ReadFile(c[0])
		if err := os.WriteFile(c[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for bytes.Equal(peerLeaf(t, f), first) {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate is not served")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// peerLeaf returns the DER of the certificate the web listener presents now.
func peerLeaf(t *testing.T, f *webFixture) []byte {
	t.Helper()
	conn, err := tls.Dial("tcp", f.webURL[len("https://"):], &tls.Config{RootCAs: f.pki.Pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
}
