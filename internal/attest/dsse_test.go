package attest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"

	"github.com/warden-a2a/warden/internal/attest"
)

// TestPAE checks the encoding against the DSSE protocol.md example.
func TestPAE(t *testing.T) {
	got := string(attest.PAE("http://example.com/HelloWorld", []byte("hello world")))
	want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"
	if got != want {
		t.Fatalf("PAE = %q, want %q", got, want)
	}
	if got := string(attest.PAE("", nil)); got != "DSSEv1 0  0 " {
		t.Fatalf("empty PAE = %q", got)
	}
}

func TestEnvelopeSignVerify(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	for _, signer := range []crypto.Signer{ed, ec} {
		env, err := attest.SignEnvelope(signer, attest.PayloadTypeInToto, []byte(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		// JSON round trip, as evidence carries it.
		b, _ := json.Marshal(env)
		var back attest.Envelope
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if _, err := attest.VerifyEnvelope(&back, []crypto.PublicKey{stranger.Public(), signer.Public()}); err != nil {
			t.Fatalf("%T: %v", signer, err)
		}
		tests := []struct {
			name string
			edit func(e *attest.Envelope)
			keys []crypto.PublicKey
			want error
		}{
			{"payload-type-changed", func(e *attest.Envelope) { e.PayloadType = "text/plain" }, []crypto.PublicKey{signer.Public()}, attest.ErrBadSignature},
			{"payload-changed", func(e *attest.Envelope) { e.Payload = []byte(`{"a":2}`) }, []crypto.PublicKey{signer.Public()}, attest.ErrBadSignature},
			{"keyid-removed-still-bad", func(e *attest.Envelope) { e.Payload = []byte(`{"a":2}`); e.Signatures[0].KeyID = "" }, []crypto.PublicKey{signer.Public()}, attest.ErrUnknownSigner},
			{"keyid-lies-but-sig-good", func(e *attest.Envelope) { e.Signatures[0].KeyID = "nonsense" }, []crypto.PublicKey{signer.Public()}, nil},
			{"untrusted-signer", func(e *attest.Envelope) {}, []crypto.PublicKey{stranger.Public()}, attest.ErrUnknownSigner},
			{"no-keys", func(e *attest.Envelope) {}, nil, attest.ErrUnknownSigner},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				e := *env
				e.Signatures = append([]attest.DSSESignature(nil), env.Signatures...)
				tc.edit(&e)
				_, err := attest.VerifyEnvelope(&e, tc.keys)
				if !errors.Is(err, tc.want) {
					t.Fatalf("%T: err %v, want %v", signer, err, tc.want)
				}
			})
		}
	}
}

func TestB64AcceptsBothAlphabets(t *testing.T) {
	for _, s := range []string{`"-_8="`, `"+/8="`, `"+/8"`, `"-_8"`} {
		var b attest.B64
		if err := json.Unmarshal([]byte(s), &b); err != nil || len(b) != 2 || b[0] != 0xfb || b[1] != 0xff {
			t.Fatalf("%s: %x %v", s, []byte(b), err)
		}
	}
}

func TestParsePublicKeyPEMRejectsOtherCurves(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p, _ := attest.MarshalPublicKeyPEM(k.Public())
	if _, err := attest.ParsePublicKeyPEM(p); err == nil {
		t.Fatal("P-384 build key accepted")
	}
	if _, err := attest.ParsePublicKeyPEM("not pem"); err == nil {
		t.Fatal("garbage accepted")
	}
}
