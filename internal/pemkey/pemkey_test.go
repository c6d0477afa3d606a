package pemkey_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/warden-a2a/warden/internal/pemkey"
)

func pub(t *testing.T, k any) []byte {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestParsePublic(t *testing.T) {
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	r, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, c := range map[string]struct {
		in   []byte
		ok   bool
		kind bool
	}{
		"ed25519":             {pub(t, ed), true, false},
		"p256":                {pub(t, &p256.PublicKey), true, false},
		"p256-trailing-space": {append(pub(t, &p256.PublicKey), "\n\n"...), true, false},
		"p384":                {pub(t, &p384.PublicKey), false, true},
		"rsa":                 {pub(t, &r.PublicKey), false, true},
		"two-blocks":          {append(pub(t, ed), pub(t, ed)...), false, false},
		"garbage":             {[]byte("nope"), false, false},
	} {
		_, err := pemkey.ParsePublic(c.in)
		if (err == nil) != c.ok || errors.Is(err, pemkey.ErrKind) != c.kind {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzParsePublic(f *testing.F) {
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(ed)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := pemkey.ParsePublic(b)
		if err != nil {
			return
		}
		switch k := k.(type) {
		case ed25519.PublicKey:
		case *ecdsa.PublicKey:
			if k.Curve != elliptic.P256() {
				t.Fatal("accepted another curve")
			}
		default:
			t.Fatalf("accepted %T", k)
		}
	})
}
