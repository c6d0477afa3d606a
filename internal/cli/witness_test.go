package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestWitnessAndVerifyFlagsRefused: the witness needs a log key; verify's witness flags
// go together (keys decide whom to trust, URLs or files give the newest checkpoint) and
// the quorum cannot exceed the keys.
func TestWitnessAndVerifyFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	makeLog(t, dir, 3)
	if code, _ := runAudit(t, "witness", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"); code != 2 {
		t.Fatalf("witness without --log-key: exit %d, want 2", code)
	}
	if code, _ := runAudit(t, "witness", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--log-key", filepath.Join(dir, "nope")); code != 2 {
		t.Fatalf("witness with a missing log key: exit %d, want 2", code)
	}
	wdir := t.TempDir()
	if _, err := loadOrCreateWitnessKey(wdir, "witness.test/w1"); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(wdir, witnessVKeyFile)
	for _, args := range [][]string{
		{"--witness-key", key},
		{"--witness-url", "http://127.0.0.1:1"},
		{"--witness-checkpoint", filepath.Join(dir, "cp")},
		{"--witness-key", key, "--witness-url", "http://127.0.0.1:1", "--witness-quorum", "2"},
		{"--witness-key", filepath.Join(dir, "audit", "verifier.key"), "--witness-url", "http://127.0.0.1:1"}, // a log key, not a witness key
	} {
		code, out := runAudit(t, append([]string{"audit", "verify", "--data-dir", dir}, args...)...)
		if code != 1 || strings.HasPrefix(out, "OK") {
			t.Errorf("verify %s: exit %d %q, want 1", strings.Join(args, " "), code, out)
		}
	}
	// The witness key made on first use is reused, and is private.
	s1, err := loadOrCreateWitnessKey(wdir, "other-name")
	if err != nil || s1.Name() != "witness.test/w1" {
		t.Fatalf("second load: %v %v", s1, err)
	}
}
