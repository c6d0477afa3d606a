package witness

import (
	"bytes"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// FuzzParseRequest: the add-checkpoint parser never panics, and what it accepts encodes
// back to the same bytes (one spelling per request: no leading zeros, strict base64).
func FuzzParseRequest(f *testing.F) {
	f.Add(encodeRequest(0, nil, []byte("warden-audit/example.org\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— warden-audit/example.org AAAA\n")))
	f.Add(encodeRequest(20852014, tlog.TreeProof{{1}, {2}}, []byte("x\n")))
	f.Add([]byte("old 01\n\nx"))
	f.Add([]byte("old -1\n\nx"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRequest(b)
		if err != nil {
			return
		}
		if got := encodeRequest(r.old, r.proof, r.checkpoint); !bytes.Equal(got, b) {
			t.Fatalf("parsed %q, re-encoded %q", b, got)
		}
	})
}
