package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runWarden(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// TestAttestCLIProvenanceRoundTrip: keygen → sign-provenance → refs → verify-provenance
// passes; the same envelope against a modified binary fails with bad_provenance, and
// against refs pinning another key with unknown_build_signer.
func TestAttestCLIProvenanceRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	os.WriteFile(p("agent"), []byte("agent build 1"), 0o755)
	os.WriteFile(p("agent.yaml"), []byte("zone: eu\n"), 0o644)

	pub, err := runWarden(t, "attest", "keygen", "-o", p("build.key"))
	if err != nil || !strings.Contains(pub, "BEGIN PUBLIC KEY") {
		t.Fatalf("keygen: %v %q", err, pub)
	}
	os.WriteFile(p("build.pub"), []byte(pub), 0o644)
	if _, err := runWarden(t, "attest", "sign-provenance", "--binary", p("agent"), "--key", p("build.key"), "-o", p("prov.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := runWarden(t, "attest", "refs", "--binary", p("agent"), "--config", p("agent.yaml"), "--build-signer", p("build.pub"), "-o", p("refs.yaml")); err != nil {
		t.Fatal(err)
	}
	if out, err := runWarden(t, "attest", "verify-provenance", "--binary", p("agent"), "--envelope", p("prov.json"), "--refs", p("refs.yaml")); err != nil || !strings.HasPrefix(out, "ok sha256:") {
		t.Fatalf("verify: %v %q", err, out)
	}

	os.WriteFile(p("agent"), []byte("agent build 1 + implant"), 0o755)
	if _, err := runWarden(t, "attest", "verify-provenance", "--binary", p("agent"), "--envelope", p("prov.json"), "--refs", p("refs.yaml")); err == nil || !strings.HasPrefix(err.Error(), "bad_provenance") {
		t.Fatalf("modified binary: %v", err)
	}
	os.WriteFile(p("agent"), []byte("agent build 1"), 0o755)
	other, _ := runWarden(t, "attest", "keygen", "-o", p("other.key"))
	os.WriteFile(p("other.pub"), []byte(other), 0o644)
	runWarden(t, "attest", "refs", "--binary", p("agent"), "--build-signer", p("other.pub"), "-o", p("refs2.yaml"))
	if _, err := runWarden(t, "attest", "verify-provenance", "--binary", p("agent"), "--envelope", p("prov.json"), "--refs", p("refs2.yaml")); err == nil || !strings.HasPrefix(err.Error(), "unknown_build_signer") {
		t.Fatalf("other signer: %v", err)
	}
	if _, err := runWarden(t, "attest", "keygen", "-o", p("build.key")); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}
}
