package policy

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func mustB64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sbOf(t *testing.T, b []byte) signedBundle {
	t.Helper()
	var sb signedBundle
	if err := json.Unmarshal(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sb
}
