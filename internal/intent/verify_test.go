package intent_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/warden-a2a/warden/internal/intent"
)

var b64 = base64.RawURLEncoding

// rawToken signs arbitrary header and payload text with key, bypassing every check of
// intent.Sign, so that tests can present what an attacker or a buggy peer would send.
func rawToken(t testing.TB, header, payload string, key crypto.Signer) string {
	t.Helper()
	in := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	var sig []byte
	switch k := key.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, []byte(in))
	case *ecdsa.PrivateKey:
		h := sha256.Sum256([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	default:
		t.Fatalf("key %T", key)
	}
	return in + "." + b64.EncodeToString(sig)
}

func payloadOf(c *intent.Claims) string { return string(c.AppendCanonical(nil)) }

const hdrEd = `{"alg":"EdDSA","typ":"intent+jwt"}`

type fixture struct {
	ca                 *testCA
	cert, cert2, other *x509.Certificate // sender, sender re-issued (new key), another agent
	key, key2, okey    crypto.Signer
	ecCert             *x509.Certificate
	ecKey              crypto.Signer
	body               []byte
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{ca: newTestCA(t), body: []byte(`{"jsonrpc":"2.0","method":"SendMessage","id":1}`)}
	f.cert, f.key = f.ca.issue(t, "procurement", intent.AlgEdDSA)
	f.cert2, f.key2 = f.ca.issue(t, "procurement", intent.AlgEdDSA)
	f.other, f.okey = f.ca.issue(t, "logistics", intent.AlgEdDSA)
	f.ecCert, f.ecKey = f.ca.issue(t, "procurement", intent.AlgES256)
	return f
}

// TestVerifyRefusals produces every reason code, and the defects the issue names.
func TestVerifyRefusals(t *testing.T) {
	f := newFixture(t)
	type tc struct {
		name  string
		token func() string
		peer  *x509.Certificate // default f.cert
		body  []byte            // default f.body
		now   time.Time         // default t0
		cfg   intent.Config
		want  string
	}
	mod := func(m func(c *intent.Claims)) func() string {
		return func() string {
			c := claimsFor(t, f.cert, f.body)
			m(c)
			return rawToken(t, hdrEd, payloadOf(c), f.key)
		}
	}
	withHeader := func(h string) func() string {
		return func() string { return rawToken(t, h, payloadOf(claimsFor(t, f.cert, f.body)), f.key) }
	}
	withPayload := func(edit func(p string) string) func() string {
		return func() string { return rawToken(t, hdrEd, edit(payloadOf(claimsFor(t, f.cert, f.body))), f.key) }
	}
	valid := func() string { return sign(t, claimsFor(t, f.cert, f.body), f.key) }
	cases := []tc{
		{name: "valid-eddsa", token: valid, want: ""},
		{name: "valid-es256", token: func() string { return sign(t, claimsFor(t, f.ecCert, f.body), f.ecKey) }, peer: f.ecCert, want: ""},

		{name: "token-over-8KiB", token: func() string { return valid() + strings.Repeat("A", intent.MaxTokenSize) }, want: intent.ReasonTooLarge},
		{name: "purpose-making-token-over-8KiB", token: mod(func(c *intent.Claims) { c.Purpose = strings.Repeat("p", 7000) }), want: intent.ReasonTooLarge},

		{name: "two-segments", token: func() string { v := valid(); return v[:strings.LastIndexByte(v, '.')] }, want: intent.ReasonMalformed},
		{name: "four-segments", token: func() string { return valid() + ".x" }, want: intent.ReasonMalformed},
		{name: "padded-base64", token: func() string { v := strings.Split(valid(), "."); return v[0] + "=." + v[1] + "." + v[2] }, want: intent.ReasonMalformed},
		{name: "empty", token: func() string { return "" }, want: intent.ReasonMalformed},
		{name: "header-duplicate-alg", token: withHeader(`{"alg":"EdDSA","alg":"none","typ":"intent+jwt"}`), want: intent.ReasonMalformed},
		{name: "header-crit", token: withHeader(`{"alg":"EdDSA","crit":["exp"],"exp":1,"typ":"intent+jwt"}`), want: intent.ReasonMalformed},
		{name: "header-jku", token: withHeader(`{"alg":"EdDSA","jku":"https://evil.example/jwks","typ":"intent+jwt"}`), want: intent.ReasonMalformed},
		{name: "header-x5u", token: withHeader(`{"alg":"EdDSA","typ":"intent+jwt","x5u":"https://evil.example/c.pem"}`), want: intent.ReasonMalformed},
		{name: "header-jwk", token: withHeader(`{"alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"AAAA"},"typ":"intent+jwt"}`), want: intent.ReasonMalformed},
		{name: "header-kid", token: withHeader(`{"alg":"EdDSA","kid":"k1","typ":"intent+jwt"}`), want: intent.ReasonMalformed},
		{name: "header-typ-jwt", token: withHeader(`{"alg":"EdDSA","typ":"JWT"}`), want: intent.ReasonMalformed},
		{name: "header-no-typ", token: withHeader(`{"alg":"EdDSA"}`), want: intent.ReasonMalformed},
		{name: "header-whitespace-accepted", token: withHeader(`{ "typ" : "intent+jwt", "alg" : "EdDSA" }`), want: ""},
		{name: "payload-duplicate-act", token: withPayload(func(p string) string { return strings.Replace(p, `{"act":`, `{"act":"admin.delete","act":`, 1) }), want: intent.ReasonMalformed},
		{name: "payload-duplicate-nested-cnf", token: withPayload(func(p string) string {
			return strings.Replace(p, `"cnf":{`, `"cnf":{"x5t#S256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",`, 1)
		}), want: intent.ReasonMalformed},
		{name: "payload-whitespace-not-canonical", token: withPayload(func(p string) string { return strings.Replace(p, `,"aud":`, `, "aud":`, 1) }), want: intent.ReasonMalformed},
		{name: "payload-keys-unsorted", token: withPayload(func(p string) string {
			var m map[string]any
			json.Unmarshal([]byte(p), &m)
			act := m["act"]
			delete(m, "act")
			b, _ := json.Marshal(m)
			return strings.TrimSuffix(string(b), "}") + `,"act":"` + act.(string) + `"}`
		}), want: intent.ReasonMalformed},
		{name: "payload-unknown-claim", token: withPayload(func(p string) string { return strings.Replace(p, `,"wf":`, `,"admin":true,"wf":`, 1) }), want: intent.ReasonMalformed},
		{name: "payload-missing-bdy", token: withPayload(func(p string) string {
			i := strings.Index(p, `,"bdy":`)
			j := strings.Index(p, `,"cnf":`)
			return p[:i] + p[j:]
		}), want: intent.ReasonMalformed},
		{name: "payload-float-iat", token: mod(func(c *intent.Claims) {}) /* replaced below */, want: intent.ReasonMalformed},
		{name: "payload-empty-purpose", token: withPayload(func(p string) string { return strings.Replace(p, `,"res":`, `,"purpose":"","res":`, 1) }), want: intent.ReasonMalformed},
		{name: "payload-short-jti", token: mod(func(c *intent.Claims) { c.ID = "abc" }), want: intent.ReasonMalformed},
		{name: "payload-exp-before-iat", token: mod(func(c *intent.Claims) { c.Expiry = c.IssuedAt }), want: intent.ReasonMalformed},
		{name: "payload-not-json", token: withPayload(func(string) string { return "\xff\xfe" }), want: intent.ReasonMalformed},

		{name: "alg-none", token: func() string {
			return b64.EncodeToString([]byte(`{"alg":"none","typ":"intent+jwt"}`)) + "." + b64.EncodeToString([]byte(payloadOf(claimsFor(t, f.cert, f.body)))) + "."
		}, want: intent.ReasonAlgNotAllowed},
		{name: "alg-HS256-public-key-as-secret", token: func() string {
			return joseToken(t, jose.HS256, []byte(f.cert.PublicKey.(ed25519.PublicKey)), claimsFor(t, f.cert, f.body))
		}, want: intent.ReasonAlgNotAllowed},
		{name: "alg-HS256-cert-der-as-secret", token: func() string {
			in := b64.EncodeToString([]byte(`{"alg":"HS256","typ":"intent+jwt"}`)) + "." + b64.EncodeToString([]byte(payloadOf(claimsFor(t, f.cert, f.body))))
			m := hmac.New(sha256.New, f.cert.RawSubjectPublicKeyInfo)
			m.Write([]byte(in))
			return in + "." + b64.EncodeToString(m.Sum(nil))
		}, want: intent.ReasonAlgNotAllowed},
		{name: "alg-RS256", token: func() string {
			rk, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			return joseToken(t, jose.RS256, rk, claimsFor(t, f.cert, f.body))
		}, want: intent.ReasonAlgNotAllowed},
		{name: "alg-ES256-with-ed25519-cert", token: func() string {
			return rawToken(t, `{"alg":"ES256","typ":"intent+jwt"}`, payloadOf(claimsFor(t, f.cert, f.body)), f.ecKey)
		}, want: intent.ReasonAlgNotAllowed},
		{name: "alg-EdDSA-with-p256-cert", token: func() string { return rawToken(t, hdrEd, payloadOf(claimsFor(t, f.ecCert, f.body)), f.key) }, peer: f.ecCert, want: intent.ReasonAlgNotAllowed},

		{name: "signed-by-other-key", token: func() string { return sign(t, claimsFor(t, f.cert, f.body), f.key2) }, want: intent.ReasonBadSignature},
		{name: "payload-altered-after-signing", token: func() string {
			v := strings.Split(valid(), ".")
			c := claimsFor(t, f.cert, f.body)
			c.Action = "payment.release"
			return v[0] + "." + b64.EncodeToString([]byte(payloadOf(c))) + "." + v[2]
		}, want: intent.ReasonBadSignature},
		{name: "signature-truncated-to-63-bytes", token: func() string { v := valid(); return v[:len(v)-2] }, want: intent.ReasonBadSignature},
		{name: "es256-signature-asn1-not-raw", token: func() string {
			c := claimsFor(t, f.ecCert, f.body)
			in := b64.EncodeToString([]byte(`{"alg":"ES256","typ":"intent+jwt"}`)) + "." + b64.EncodeToString([]byte(payloadOf(c)))
			h := sha256.Sum256([]byte(in))
			der, _ := ecdsa.SignASN1(rand.Reader, f.ecKey.(*ecdsa.PrivateKey), h[:])
			return in + "." + b64.EncodeToString(der)
		}, peer: f.ecCert, want: intent.ReasonBadSignature},

		{name: "lifted-to-other-agent-connection", token: valid, peer: f.other, want: intent.ReasonChannelMismatch},
		{name: "lifted-to-reissued-cert-same-id", token: valid, peer: f.cert2, want: intent.ReasonChannelMismatch},
		{name: "no-peer-certificate", token: valid, peer: nil, want: intent.ReasonChannelMismatch},
		{name: "iss-not-peer-spiffe-id", token: mod(func(c *intent.Claims) { c.Issuer = "spiffe://example.org/agent/payment" }), want: intent.ReasonWrongIssuer},
		{name: "aud-other-agent", token: mod(func(c *intent.Claims) { c.Audience = "spiffe://example.org/agent/other" }), want: intent.ReasonWrongAudience},
		{name: "expired-at-exp-plus-skew", token: valid, now: t0.Add(35 * time.Second), want: intent.ReasonExpired},
		{name: "within-skew-after-exp", token: valid, now: t0.Add(34 * time.Second), want: ""},
		{name: "not-yet-valid-beyond-skew", token: valid, now: t0.Add(-5*time.Second - time.Nanosecond), want: intent.ReasonNotYetValid},
		{name: "within-skew-before-iat", token: valid, now: t0.Add(-5 * time.Second), want: ""},
		{name: "lifetime-61s", token: mod(func(c *intent.Claims) { c.Expiry = c.IssuedAt + 61 }), want: intent.ReasonLifetimeTooLong},
		{name: "lifetime-61s-allowed-by-config", token: mod(func(c *intent.Claims) { c.Expiry = c.IssuedAt + 61 }), cfg: intent.Config{MaxLifetime: 2 * time.Minute}, want: ""},
		{name: "body-one-byte-changed", token: valid, body: func() []byte { b := bytes.Clone(f.body); b[len(b)-2] ^= 1; return b }(), want: intent.ReasonBodyMismatch},
		{name: "body-empty", token: valid, body: []byte{}, want: intent.ReasonBodyMismatch},

		{name: "delegation-valid", token: mod(func(c *intent.Claims) {
			c.Scope = []string{"purchase_order.create"}
			c.Delegation = &intent.Actor{Subject: "spiffe://example.org/agent/planner", Scope: []string{"purchase_order.create", "purchase_order.read"},
				Actor: &intent.Actor{Subject: "spiffe://example.org/user/alice", Scope: []string{"purchase_order.create", "purchase_order.read", "x"}}}
		}), want: ""},
		{name: "delegation-too-deep", token: mod(func(c *intent.Claims) { c.Delegation = chain(4, c.Scope) }), want: intent.ReasonDelegationInvalid},
		{name: "delegation-depth-within-config", token: mod(func(c *intent.Claims) { c.Delegation = chain(4, c.Scope) }), cfg: intent.Config{MaxDelegationDepth: 4}, want: ""},
		{name: "delegation-forbidden-by-config", token: mod(func(c *intent.Claims) { c.Delegation = chain(1, c.Scope) }), cfg: intent.Config{MaxDelegationDepth: -1}, want: intent.ReasonDelegationInvalid},
		{name: "delegation-scope-widened", token: mod(func(c *intent.Claims) {
			c.Delegation = &intent.Actor{Subject: "spiffe://example.org/agent/planner", Scope: []string{"purchase_order.read"}}
		}), want: intent.ReasonDelegationInvalid},
		{name: "delegation-inner-hop-narrower", token: mod(func(c *intent.Claims) {
			c.Delegation = &intent.Actor{Subject: "spiffe://example.org/agent/planner", Scope: c.Scope,
				Actor: &intent.Actor{Subject: "spiffe://example.org/agent/root", Scope: []string{"purchase_order.read"}}}
		}), want: intent.ReasonDelegationInvalid},
		{name: "delegation-sub-not-spiffe", token: mod(func(c *intent.Claims) { c.Delegation = &intent.Actor{Subject: "alice", Scope: c.Scope} }), want: intent.ReasonDelegationInvalid},
		{name: "delegation-cycle-through-issuer", token: mod(func(c *intent.Claims) { c.Delegation = &intent.Actor{Subject: sender, Scope: c.Scope} }), want: intent.ReasonDelegationInvalid},
		{name: "delegation-without-scope", token: mod(func(c *intent.Claims) {
			c.Delegation = &intent.Actor{Subject: "spiffe://example.org/agent/planner", Scope: c.Scope}
			c.Scope = nil
		}), want: intent.ReasonDelegationInvalid},
		{name: "delegation-unknown-member", token: withPayload(func(p string) string {
			return strings.Replace(p, `,"exp":`, `,"dlg":{"scope":["a"],"sub":"spiffe://example.org/agent/x","zzz":1},"exp":`, 1)
		}), want: intent.ReasonDelegationInvalid},
		{name: "delegation-nested-20-deep", token: mod(func(c *intent.Claims) { c.Delegation = chain(20, c.Scope) }), want: intent.ReasonDelegationInvalid},
	}
	// A float NumericDate: valid JSON, not canonical claims.
	cases[indexOf(cases, func(c tc) bool { return c.name == "payload-float-iat" })].token = withPayload(func(p string) string {
		return strings.Replace(p, `,"iat":1767225600`, `,"iat":1767225600.5`, 1)
	})
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, tc.cfg)
			peer, body, now := f.cert, f.body, t0
			if tc.peer != nil || strings.HasPrefix(tc.name, "no-peer") {
				peer = tc.peer
			}
			if tc.body != nil {
				body = tc.body
			}
			if !tc.now.IsZero() {
				now = tc.now
			}
			_, err := v.Verify(context.Background(), tc.token(), peer, body, now)
			if got := intent.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q, want %q (err: %v)", got, tc.want, err)
			}
			seen[tc.want] = true
		})
	}
	seen[intent.ReasonReplay] = true          // TestVerifyReplay
	seen[intent.ReasonReplayCacheFull] = true // TestVerifyReplayCacheFull
	for _, r := range intent.Reasons {
		if !seen[r] {
			t.Errorf("no test produces reason %s", r)
		}
	}
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func indexOf[T any](s []T, f func(T) bool) int {
	for i, v := range s {
		if f(v) {
			return i
		}
	}
	panic("not found")
}

// chain returns n hops, each with scope (so the subset rule holds).
func chain(n int, scope []string) *intent.Actor {
	var a *intent.Actor
	for i := range n {
		a = &intent.Actor{Subject: "spiffe://example.org/agent/hop" + string(rune('a'+i)), Scope: scope, Actor: a}
	}
	return a
}

// joseToken signs the canonical payload of c with go-jose, an independent JOSE
// implementation, with typ intent+jwt.
func joseToken(t testing.TB, alg jose.SignatureAlgorithm, key any, c *intent.Claims) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType(intent.Type))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(payloadOf(c)))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifyReplay(t *testing.T) {
	f := newFixture(t)
	v := newVerifier(t, intent.Config{})
	tok := sign(t, claimsFor(t, f.cert, f.body), f.key)
	if _, err := v.Verify(context.Background(), tok, f.cert, f.body, t0); err != nil {
		t.Fatal(err)
	}
	for _, now := range []time.Time{t0, t0.Add(time.Second), t0.Add(34 * time.Second)} {
		_, err := v.Verify(context.Background(), tok, f.cert, f.body, now)
		if got := intent.ReasonOf(err); got != intent.ReasonReplay {
			t.Fatalf("second presentation at %v: reason %q, want replay", now, got)
		}
	}
}

func TestVerifyReplayCacheFull(t *testing.T) {
	f := newFixture(t)
	v := newVerifier(t, intent.Config{Replay: intent.NewMemoryCache(1)})
	if _, err := v.Verify(context.Background(), sign(t, claimsFor(t, f.cert, f.body), f.key), f.cert, f.body, t0); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(context.Background(), sign(t, claimsFor(t, f.cert, f.body), f.key), f.cert, f.body, t0)
	if got := intent.ReasonOf(err); got != intent.ReasonReplayCacheFull {
		t.Fatalf("reason %q, want replay_cache_full", got)
	}
}

// TestVerifyReturnsClaims: the claims come back exactly as signed, and go-jose, an
// independent implementation, verifies what Sign produced (and we verify what it signs).
func TestVerifyInteropGoJose(t *testing.T) {
	f := newFixture(t)
	for _, k := range []struct {
		name string
		cert *x509.Certificate
		key  crypto.Signer
		alg  jose.SignatureAlgorithm
	}{{"EdDSA", f.cert, f.key, jose.EdDSA}, {"ES256", f.ecCert, f.ecKey, jose.ES256}} {
		t.Run(k.name, func(t *testing.T) {
			want := claimsFor(t, k.cert, f.body)
			tok := sign(t, want, k.key)
			obj, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{k.alg})
			if err != nil {
				t.Fatal(err)
			}
			payload, err := obj.Verify(k.cert.PublicKey)
			if err != nil {
				t.Fatalf("go-jose refuses our token: %v", err)
			}
			if string(payload) != payloadOf(want) {
				t.Fatalf("payload %s", payload)
			}
			v := newVerifier(t, intent.Config{})
			got, err := v.Verify(context.Background(), tok, k.cert, f.body, t0)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("claims differ (-want +got):\n%s", d)
			}
			theirs := joseToken(t, k.alg, k.key, claimsFor(t, k.cert, f.body))
			if _, err := v.Verify(context.Background(), theirs, k.cert, f.body, t0); err != nil {
				t.Fatalf("go-jose token refused: %v", err)
			}
		})
	}
}
