package audit

import (
	"testing"
)

// FuzzParseSignatureLines: a witness's answer (untrusted) never panics the parser, and
// every accepted line renders back to itself.
func FuzzParseSignatureLines(f *testing.F) {
	f.Add([]byte("— witness.example/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"))
	f.Add([]byte("— a b\n— c ZGVm\n"))
	f.Add([]byte("— x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sigs, err := ParseSignatureLines(b)
		if err != nil {
			return
		}
		if got := SignatureLines(sigs); string(got) != string(b) {
			t.Fatalf("parsed %q, rendered %q", b, got)
		}
		for _, s := range sigs {
			_, _ = CosignatureTime(s)
		}
	})
}

// FuzzNewCosignatureVerifier: witness verifier keys come from files an operator copies.
func FuzzNewCosignatureVerifier(f *testing.F) {
	_, vkey, _ := GenerateCosignerKey("witness.example/w1")
	f.Add(vkey)
	f.Add("a+00000000+BA==")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := NewCosignatureVerifier(s)
		if err != nil {
			return
		}
		_ = v.Verify([]byte("x\n"), make([]byte, cosigSigSize))
	})
}
