package server

import (
	"os"
	"testing"
)

// FuzzParseSlot: the evidence slot of enroll/renew is untrusted input; parseSlot must
// never panic, and whatever it accepts carries parsed evidence.
func FuzzParseSlot(f *testing.F) {
	if b, err := os.ReadFile("../attest/testdata/affirming.json"); err == nil {
		f.Add(append(append([]byte(`{"evidence":`), b...), []byte(`,"activation":"AAAA"}`)...))
	}
	for _, s := range []string{``, `null`, `{}`, `{"evidence":{}}`, `{"evidence":null}`, `{"evidence":1,"x":2}`,
		`{"evidence":{"version":1}} {}`, `{"activation":"` + string(make([]byte, 0)) + `"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, ev, err := parseSlot(b)
		if err == nil && ev == nil {
			t.Fatal("accepted without evidence")
		}
	})
}
