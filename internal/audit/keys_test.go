package audit_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-a2a/warden/internal/audit"
)

func TestKeysCreatedOnceWithPrivateMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	s1, v1, err := audit.LoadOrCreateKeys(dir, audit.NoteName("example.org"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, audit.SignerKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signer.key mode %v err %v, want 0600", fi.Mode().Perm(), err)
	}
	s2, v2, err := audit.LoadOrCreateKeys(dir, audit.NoteName("example.org"))
	if err != nil || s1.KeyHash() != s2.KeyHash() || v1.KeyHash() != v2.KeyHash() {
		t.Fatalf("second load gave another key (err %v)", err)
	}
	if s1.Name() != "warden-audit/example.org" {
		t.Fatalf("name %q", s1.Name())
	}
}

func TestKeysVerifierRederivedAfterCrashBetweenWrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	s1, _, err := audit.LoadOrCreateKeys(dir, audit.NoteName("example.org"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, audit.VerifierKeyFile))
	_, v, err := audit.LoadOrCreateKeys(dir, audit.NoteName("example.org"))
	if err != nil || v.KeyHash() != s1.KeyHash() {
		t.Fatalf("verifier not re-derived: %v", err)
	}
}

func TestKeysRefused(t *testing.T) {
	cases := []struct {
		name  string
		setup func(dir string)
		want  string
	}{
		{"signer-key-world-readable", func(dir string) { os.Chmod(filepath.Join(dir, audit.SignerKeyFile), 0o644) }, ""},
		{"signer-key-garbage", func(dir string) {
			os.WriteFile(filepath.Join(dir, audit.SignerKeyFile), []byte("PRIVATE+KEY+x"), 0o600)
		}, ""},
		{"other-trust-domain", func(string) {}, "other.org"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			if _, _, err := audit.LoadOrCreateKeys(dir, audit.NoteName("example.org")); err != nil {
				t.Fatal(err)
			}
			tc.setup(dir)
			td := "example.org"
			if tc.want == "other.org" {
				td = "other.org"
			}
			if _, _, err := audit.LoadOrCreateKeys(dir, audit.NoteName(td)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
