package federation_test

import (
	"testing"

	"github.com/warden-a2a/warden/internal/federation"
)

// FuzzParseBundle: foreign bundle documents are untrusted input. Whatever is accepted
// stays within the limits and marshals back to a document that parses to the same
// bundle.
func FuzzParseBundle(f *testing.F) {
	for _, s := range []string{
		`{"keys":[{"use":"jwt-svid","kty":"EC","kid":"k","crv":"P-256","x":"WtjnvHG9b_IKBLn4QYTHz-AGTmX-jHb2lm7jAumCuXE","y":"lHXq2nPv9VzDUOZ29iZnrT3p-4fMm7qGDWNCaCnDcLE"}],"spiffe_refresh_hint":300,"spiffe_sequence":2}`,
		`{"keys":[]}`,
		`{"spiffe_refresh_hint":-1,"keys":[]}`,
		`{"keys":[{"use":"x509-svid","kty":"EC","x5c":["AA=="]}]}`,
		`{}`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		b, err := federation.ParseBundle(partner, doc)
		if err != nil {
			return
		}
		if len(b.X509Authorities()) > federation.MaxAuthorities || len(b.JWTAuthorities()) > federation.MaxAuthorities {
			t.Fatal("limits not enforced")
		}
		if h, ok := b.RefreshHint(); ok && h < 0 {
			t.Fatal("negative refresh hint accepted")
		}
		out, err := b.Marshal()
		if err != nil {
			t.Fatalf("accepted bundle does not marshal: %v", err)
		}
		again, err := federation.ParseBundle(partner, out)
		if err != nil || !again.Equal(b) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
