package attest_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-a2a/warden/internal/attest"
)

const hexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestReferenceValuesYAMLAndAttrs(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	pemKey, _ := attest.MarshalPublicKeyPEM(pub)
	indented := "    " + strings.ReplaceAll(strings.TrimSpace(pemKey), "\n", "\n    ")
	y := "binaries:\n  - SHA256:" + strings.ToUpper(hexA) + "\nconfigs: [\"" + hexA + "\"]\npcrs:\n  23: [\"sha256:" + hexA + "\"]\nbuild_signers:\n  - |\n" + indented + "\n"
	path := filepath.Join(t.TempDir(), "refs.yaml")
	os.WriteFile(path, []byte(y), 0o600)
	r, err := attest.LoadReferenceValues(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "sha256:" + hexA
	if r.Binaries[0] != want || r.Configs[0] != want || r.PCRs[23][0] != want || len(r.BuildSigners) != 1 {
		t.Fatalf("loaded %+v", r)
	}
	// Into an entry's Attrs next to other attributes, and back.
	attrs, err := attest.AttrsWithRefs([]byte(`{"owner":"team-procurement"}`), r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	json.Unmarshal(attrs, &m)
	if string(m["owner"]) != `"team-procurement"` {
		t.Fatalf("other attrs lost: %s", attrs)
	}
	back, err := attest.RefsFromAttrs(attrs)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, back); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	if _, err := attest.RefsFromAttrs([]byte(`{"owner":"x"}`)); !errors.Is(err, attest.ErrNoReferenceValues) {
		t.Fatalf("absent refs: %v", err)
	}
	if _, err := attest.RefsFromAttrs(nil); !errors.Is(err, attest.ErrNoReferenceValues) {
		t.Fatalf("nil attrs: %v", err)
	}
}

func TestReferenceValuesRejects(t *testing.T) {
	for name, y := range map[string]string{
		"unknown-field":    "binaries: [\"" + hexA + "\"]\nbinary: []\n",
		"short-digest":     "binaries: [\"sha256:abcd\"]\n",
		"sha1-digest":      "binaries: [\"sha1:" + hexA[:40] + "\"]\n",
		"bad-signer":       "binaries: [\"" + hexA + "\"]\nbuild_signers: [\"not a key\"]\n",
		"pcr-out-of-range": "binaries: [\"" + hexA + "\"]\npcrs: {24: [\"" + hexA + "\"]}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := attest.ParseReferenceValues([]byte(y)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
