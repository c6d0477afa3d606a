package intent_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/intent"
)

// The test vectors of docs/intent-spec.md live between these markers; the fixtures
// (test-only keys and certificates, also in testdata/) between the second pair.
const (
	specPath      = "../../docs/intent-spec.md"
	vectorsBegin  = "<!-- vectors:begin (generated: go test ./internal/intent -run TestSpecVectors -update-vectors) -->"
	vectorsEnd    = "<!-- vectors:end -->"
	fixturesBegin = "<!-- fixtures:begin -->"
	fixturesEnd   = "<!-- fixtures:end -->"
)

var updateVectors = flag.Bool("update-vectors", false, "regenerate the test vectors in docs/intent-spec.md (and missing testdata fixtures)")

// vector is one test vector: verify Token with the certificate Cert as the peer, Body,
// audience Aud, at Unix time Now, with the default configuration (60 s lifetime, 5 s
// skew, delegation depth 3) and an empty replay cache; Want is "ok" or a reason code.
// With Repeat, the token is verified twice and Want applies to the second time.
type vector struct {
	Name   string `json:"name"`
	Cert   string `json:"cert"`
	Aud    string `json:"aud"`
	Body   string `json:"body"`
	Now    int64  `json:"now"`
	Repeat bool   `json:"repeat,omitempty"`
	Token  string `json:"token"`
	Want   string `json:"want"`
}

var fixtureNames = []string{"ca-cert.pem", "procurement-ed25519-key.pem", "procurement-ed25519-cert.pem",
	"procurement-p256-key.pem", "procurement-p256-cert.pem", "logistics-ed25519-key.pem", "logistics-ed25519-cert.pem"}

func TestSpecVectors(t *testing.T) {
	if *updateVectors {
		writeVectors(t)
	}
	doc, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	// The fixtures printed in the spec are the files in testdata/.
	fix := section(t, string(doc), fixturesBegin, fixturesEnd)
	for _, n := range fixtureNames {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(fix, string(b)) {
			t.Errorf("docs/intent-spec.md does not show testdata/%s as it is", n)
		}
	}
	vs := parseVectors(t, section(t, string(doc), vectorsBegin, vectorsEnd))
	if len(vs) < 15 {
		t.Fatalf("only %d vectors", len(vs))
	}
	for _, vec := range vs {
		t.Run(vec.Name, func(t *testing.T) {
			cert := loadCert(t, vec.Cert)
			v := newVerifier(t, intent.Config{Audience: vec.Aud})
			now := time.Unix(vec.Now, 0)
			_, err := v.Verify(context.Background(), vec.Token, cert, []byte(vec.Body), now)
			if vec.Repeat {
				if err != nil {
					t.Fatalf("first presentation: %v", err)
				}
				_, err = v.Verify(context.Background(), vec.Token, cert, []byte(vec.Body), now)
			}
			got := intent.ReasonOf(err)
			if got == "" {
				got = "ok"
			}
			if got != vec.Want {
				t.Fatalf("got %s, want %s (%v)", got, vec.Want, err)
			}
		})
	}
}

func section(t *testing.T, doc, begin, end string) string {
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("markers %q..%q not found in %s", begin, end, specPath)
	}
	return doc[i+len(begin) : j]
}

// parseVectors reads every ```json block of the section.
func parseVectors(t testing.TB, s string) []vector {
	var out []vector
	for {
		i := strings.Index(s, "```json\n")
		if i < 0 {
			return out
		}
		s = s[i+len("```json\n"):]
		j := strings.Index(s, "```")
		var v vector
		dec := json.NewDecoder(strings.NewReader(s[:j]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("vector %d: %v", len(out)+1, err)
		}
		out = append(out, v)
		s = s[j+3:]
	}
}

func loadCert(t testing.TB, name string) *x509.Certificate {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loadKey(t testing.TB, name string) crypto.Signer {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

// makeFixtures writes a CA, and leaves for procurement (Ed25519 and P-256) and logistics
// (Ed25519), valid 2026-01-01 .. 2036-01-01, unless they exist.
func makeFixtures(t *testing.T) {
	if _, err := os.Stat(filepath.Join("testdata", fixtureNames[0])); err == nil {
		return
	}
	os.MkdirAll("testdata", 0o755)
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join("testdata", name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nb, na := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)
	_, caKey, _ := ed25519.GenerateKey(rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: nb, NotAfter: na, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, URIs: []*url.URL{{Scheme: "spiffe", Host: "example.org"}}}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	write("ca-cert.pem", "CERTIFICATE", caDER)
	leaf := func(name, file string, key crypto.Signer, serial int64) {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: nb, NotAfter: na,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
			URIs: []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/agent/" + name}}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		pk, _ := x509.MarshalPKCS8PrivateKey(key)
		write(file+"-key.pem", "PRIVATE KEY", pk)
		write(file+"-cert.pem", "CERTIFICATE", der)
	}
	_, k1, _ := ed25519.GenerateKey(rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, k3, _ := ed25519.GenerateKey(rand.Reader)
	leaf("procurement", "procurement-ed25519", k1, 2)
	leaf("procurement", "procurement-p256", k2, 3)
	leaf("logistics", "logistics-ed25519", k3, 4)
}

func writeVectors(t *testing.T) {
	makeFixtures(t)
	edCert, edKey := loadCert(t, "procurement-ed25519-cert.pem"), loadKey(t, "procurement-ed25519-key.pem")
	ecCert, ecKey := loadCert(t, "procurement-p256-cert.pem"), loadKey(t, "procurement-p256-key.pem")
	_, lgKey := loadCert(t, "logistics-ed25519-cert.pem"), loadKey(t, "logistics-ed25519-key.pem")
	const body = `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"role":"user","parts":[{"kind":"text","text":"order 40 x SKU 1001"}],"messageId":"m-1"}}}`
	now := t0.Unix() + 10
	claims := func(name string, cert *x509.Certificate) *intent.Claims {
		h := sha256.Sum256([]byte(name))
		return &intent.Claims{
			Issuer: sender, Audience: receiver, ID: base64.RawURLEncoding.EncodeToString(h[:16]),
			IssuedAt: t0.Unix(), Expiry: t0.Unix() + 30, Workflow: "wf-2026-0001", Action: "purchase_order.create",
			Resource: "po/1001", Purpose: "restock SKU 1001", Scope: []string{"purchase_order.create"},
			BodyDigest: intent.BodyDigest([]byte(body)), CertThumbprint: intent.Thumbprint(cert),
		}
	}
	signed := func(name string, m func(*intent.Claims)) string {
		c := claims(name, edCert)
		if m != nil {
			m(c)
		}
		return sign(t, c, edKey)
	}
	vec := func(name, token, want string) vector {
		return vector{Name: name, Cert: "procurement-ed25519-cert.pem", Aud: receiver, Body: body, Now: now, Token: token, Want: want}
	}
	hdr := func(h string) string { return rawToken(t, h, payloadOf(claims("hdr"+h, edCert)), edKey) }
	var vs []vector
	add := func(v vector, edit func(*vector)) {
		if edit != nil {
			edit(&v)
		}
		vs = append(vs, v)
	}
	add(vec("valid-eddsa", signed("valid-eddsa", nil), "ok"), nil)
	add(vec("valid-es256", sign(t, claims("valid-es256", ecCert), ecKey), "ok"), func(v *vector) { v.Cert = "procurement-p256-cert.pem" })
	add(vec("valid-delegated", signed("valid-delegated", func(c *intent.Claims) {
		c.Delegation = &intent.Actor{Subject: "spiffe://example.org/agent/planner", Scope: []string{"purchase_order.create", "purchase_order.read"}}
	}), "ok"), nil)
	add(vec("replayed", signed("replayed", nil), intent.ReasonReplay), func(v *vector) { v.Repeat = true })
	big := claims("too-large", edCert)
	big.Purpose = strings.Repeat("p", 6100)
	add(vec("too-large", rawToken(t, hdrEd, payloadOf(big), edKey), intent.ReasonTooLarge), nil)
	add(vec("alg-none", b64.EncodeToString([]byte(`{"alg":"none","typ":"intent+jwt"}`))+"."+b64.EncodeToString([]byte(payloadOf(claims("alg-none", edCert))))+".", intent.ReasonAlgNotAllowed), nil)
	add(vec("alg-hs256-public-key-as-secret", hs256(payloadOf(claims("hs", edCert)), []byte(edCert.PublicKey.(ed25519.PublicKey))), intent.ReasonAlgNotAllowed), nil)
	add(vec("header-crit", hdr(`{"alg":"EdDSA","crit":["b64"],"b64":false,"typ":"intent+jwt"}`), intent.ReasonMalformed), nil)
	add(vec("header-jwk", hdr(`{"alg":"EdDSA","jwk":{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},"typ":"intent+jwt"}`), intent.ReasonMalformed), nil)
	add(vec("header-duplicate-alg", hdr(`{"alg":"EdDSA","alg":"ES256","typ":"intent+jwt"}`), intent.ReasonMalformed), nil)
	add(vec("payload-duplicate-act", rawToken(t, hdrEd, strings.Replace(payloadOf(claims("dup", edCert)), `{"act":`, `{"act":"payment.release","act":`, 1), edKey), intent.ReasonMalformed), nil)
	add(vec("payload-not-canonical", rawToken(t, hdrEd, strings.Replace(payloadOf(claims("nc", edCert)), `,"aud":`, `, "aud":`, 1), edKey), intent.ReasonMalformed), nil)
	add(vec("signed-by-another-key", sign(t, claims("other-key", edCert), lgKey), intent.ReasonBadSignature), nil)
	add(vec("wrong-issuer", signed("wrong-issuer", func(c *intent.Claims) { c.Issuer = "spiffe://example.org/agent/payment" }), intent.ReasonWrongIssuer), nil)
	add(vec("wrong-audience", signed("wrong-audience", func(c *intent.Claims) { c.Audience = "spiffe://example.org/agent/erp" }), intent.ReasonWrongAudience), nil)
	add(vec("expired", signed("expired", nil), intent.ReasonExpired), func(v *vector) { v.Now = t0.Unix() + 35 })
	add(vec("not-yet-valid", signed("not-yet-valid", nil), intent.ReasonNotYetValid), func(v *vector) { v.Now = t0.Unix() - 6 })
	add(vec("lifetime-too-long", signed("lifetime", func(c *intent.Claims) { c.Expiry = c.IssuedAt + 61 }), intent.ReasonLifetimeTooLong), nil)
	add(vec("body-one-byte-changed", signed("body", nil), intent.ReasonBodyMismatch), func(v *vector) { v.Body = strings.Replace(body, "40", "41", 1) })
	add(vec("lifted-to-another-connection", signed("lifted", nil), intent.ReasonChannelMismatch), func(v *vector) { v.Cert = "logistics-ed25519-cert.pem" })
	add(vec("delegation-widens-scope", signed("dlg-wide", func(c *intent.Claims) {
		c.Scope = []string{"payment.release", "purchase_order.create"}
		c.Delegation = &intent.Actor{Subject: "spiffe://example.org/agent/planner", Scope: []string{"purchase_order.create"}}
	}), intent.ReasonDelegationInvalid), nil)

	var out bytes.Buffer
	out.WriteString(vectorsBegin + "\n")
	// Worked example: the first vector taken apart.
	parts := strings.Split(vs[0].Token, ".")
	hb, _ := b64.DecodeString(parts[0])
	pb, _ := b64.DecodeString(parts[1])
	fmt.Fprintf(&out, "\nWorked example (vector 1 taken apart). Protected header, decoded:\n\n```text\n%s\n```\n\n"+
		"Payload, decoded (RFC 8785 canonical JSON, %d bytes):\n\n```text\n%s\n```\n\n"+
		"`bdy` is base64url(SHA-256(body)) of the vector's body; `cnf.x5t#S256` is base64url(SHA-256(DER of "+
		"procurement-ed25519-cert.pem)); the signature is Ed25519 over the ASCII bytes `%s.%s...` (the first two segments).\n",
		hb, len(pb), pb, parts[0], parts[1][:16])
	for i, v := range vs {
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintf(&out, "\n%d. `%s` — expect `%s`\n\n```json\n%s\n```\n", i+1, v.Name, v.Want, b)
	}
	out.WriteString("\n" + vectorsEnd)
	var fx bytes.Buffer
	fx.WriteString(fixturesBegin + "\n")
	for _, n := range fixtureNames {
		b, _ := os.ReadFile(filepath.Join("testdata", n))
		fmt.Fprintf(&fx, "\n`%s`\n\n```\n%s```\n", n, b)
	}
	fx.WriteString("\n" + fixturesEnd)
	doc, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	s = replaceSection(t, s, vectorsBegin, vectorsEnd, out.String())
	s = replaceSection(t, s, fixturesBegin, fixturesEnd, fx.String())
	if err := os.WriteFile(specPath, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func replaceSection(t *testing.T, doc, begin, end, with string) string {
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("markers %q..%q not found in %s", begin, end, specPath)
	}
	return doc[:i] + with + doc[j+len(end):]
}

func hs256(payload string, secret []byte) string {
	in := b64.EncodeToString([]byte(`{"alg":"HS256","typ":"intent+jwt"}`)) + "." + b64.EncodeToString([]byte(payload))
	return in + "." + b64.EncodeToString(hmacSHA256(secret, []byte(in)))
}

// FuzzVerify feeds arbitrary tokens, bodies and times to a Verifier with the fixture
// certificate as peer. It must never panic, never accept a token that is not the
// signed valid one (a signature forgery would be a finding), and only return listed
// reason codes. Seeds: the spec's test vectors.
func FuzzVerify(f *testing.F) {
	doc, err := os.ReadFile(specPath)
	if err != nil {
		f.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, vectorsBegin), strings.Index(s, vectorsEnd)
	for _, v := range parseVectors(f, s[i:j]) {
		f.Add(v.Token, v.Body, v.Now)
	}
	cert := loadCert(f, "procurement-ed25519-cert.pem")
	known := map[string]bool{}
	for _, r := range intent.Reasons {
		known[r] = true
	}
	f.Fuzz(func(t *testing.T, token, body string, now int64) {
		v := newVerifier(t, intent.Config{})
		c, err := v.Verify(context.Background(), token, cert, []byte(body), time.Unix(now, 0))
		if err != nil {
			if !known[intent.ReasonOf(err)] {
				t.Fatalf("unknown reason %q", intent.ReasonOf(err))
			}
			return
		}
		if c.Issuer != sender || c.BodyDigest != intent.BodyDigest([]byte(body)) {
			t.Fatalf("accepted inconsistent claims %+v", c)
		}
	})
}
