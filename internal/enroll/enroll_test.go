package enroll_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/enroll"
)

func TestTokenRoundTrip(t *testing.T) {
	var pin [32]byte
	pin[0] = 7
	tok, s := enroll.NewToken(pin)
	got, err := enroll.ParseToken(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pin != pin || string(got.Hash()) != string(tok.Hash()) {
		t.Error("round trip changed the token")
	}
	if strings.Contains(s, " ") || !strings.HasPrefix(s, "wdn1.") {
		t.Errorf("format: %q", s)
	}
}

func TestParseTokenRefuses(t *testing.T) {
	_, good := enroll.NewToken([32]byte{})
	parts := strings.Split(good, ".")
	for name, in := range map[string]string{
		"empty":            "",
		"wrong-prefix":     "wdn2." + parts[1] + "." + parts[2],
		"two-parts":        parts[0] + "." + parts[1],
		"short-secret":     parts[0] + "." + parts[1][:20] + "." + parts[2],
		"padded-base64":    parts[0] + "." + parts[1] + "=." + parts[2],
		"standard-base64+": parts[0] + "." + strings.Replace(parts[1], parts[1][:1], "+", 1) + "." + parts[2],
		"extra-part":       good + ".x",
	} {
		if _, err := enroll.ParseToken(in); !errors.Is(err, enroll.ErrTokenFormat) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	_, good := enroll.NewToken([32]byte{1})
	f.Add(good)
	f.Add("wdn1..")
	f.Add("wdn1.AAAA.BBBB")
	f.Fuzz(func(t *testing.T, in string) {
		tok, err := enroll.ParseToken(in)
		if err != nil {
			return
		}
		// Whatever parses formats back to a token that parses to the same value.
		again, err := enroll.ParseToken(tok.String())
		if err != nil || again.Secret != tok.Secret || again.Pin != tok.Pin {
			t.Fatalf("round trip of %q failed", in)
		}
	})
}

func FuzzCheckCSR(f *testing.F) {
	want := spiffeid.RequireFromString("spiffe://supplychain.example/agent/a")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	plain, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	other, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{spiffeid.RequireFromString("spiffe://supplychain.example/agent/b").URL()}}, key)
	f.Add(plain)
	f.Add(other)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		pub, err := enroll.CheckCSR(der, want)
		if err != nil {
			return
		}
		// Anything accepted has a self-signature that checks and asks for no other name.
		csr, perr := x509.ParseCertificateRequest(der)
		if perr != nil || csr.CheckSignature() != nil {
			t.Fatal("accepted a CSR that does not parse or verify")
		}
		if len(csr.URIs) > 1 || len(csr.URIs) == 1 && csr.URIs[0].String() != want.String() || len(csr.DNSNames) > 0 {
			t.Fatal("accepted a CSR asking for another name")
		}
		if enroll.CheckKey(pub) != nil {
			t.Fatal("accepted a weak key")
		}
	})
}
