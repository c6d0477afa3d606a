package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the warden command line and returns stdout and the exit code.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return out.String(), 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			out.WriteString(ee.err.Error())
		}
		return out.String(), ee.code
	}
	return out.String() + err.Error(), 1
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

const policies = "../../policies"

func TestPolicyCheckDefaultBundle(t *testing.T) {
	out, code := runCLI(t, "policy", "check", policies)
	if code != 0 || !strings.Contains(out, "ok: ") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestPolicyCheckTypeErrorExits1WithFileLine(t *testing.T) {
	dir := copyDir(t, policies)
	if err := os.WriteFile(filepath.Join(dir, "bad.cedar"), []byte("\n\n@id(\"bad\")\n@reason(\"x\")\npermit (principal is Agent, action == Action::\"invoice.read\", resource) when { context.amount like \"*\" };\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, "policy", "check", dir)
	if code != 1 || !strings.Contains(out, "bad.cedar:3: policy \"bad\"") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	// And the bundle is never loaded by anything else either.
	if _, code := runCLI(t, "policy", "test", dir); code != 1 {
		t.Fatalf("policy test loaded a bundle with a type error")
	}
}

func TestPolicyTestEndsWithCounts(t *testing.T) {
	out, code := runCLI(t, "policy", "test", policies)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || !strings.HasSuffix(lines[len(lines)-1], " passed, 0 failed") {
		t.Fatalf("exit %d, last line %q", code, lines[len(lines)-1])
	}
	dir := copyDir(t, policies)
	b, _ := os.ReadFile(filepath.Join(dir, "tests", "roles.yaml"))
	b = bytes.Replace(b, []byte("expect: allow"), []byte("expect: deny"), 1)
	if err := os.WriteFile(filepath.Join(dir, "tests", "roles.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = runCLI(t, "policy", "test", dir)
	if code != 1 || !strings.Contains(out, " passed, 1 failed") {
		t.Fatalf("a failing case: exit %d, output tail %q", code, out[max(0, len(out)-200):])
	}
}

func TestPolicyExceptionsMarksExpired(t *testing.T) {
	out, code := runCLI(t, "policy", "exceptions", policies)
	if code != 0 || !strings.Contains(out, "EXC-2026-007") || !strings.Contains(out, "EXPIRED") || !strings.Contains(out, "maria.keller@supplychain.example") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestPolicyBundleAndDiff(t *testing.T) {
	tmp := t.TempDir()
	key := filepath.Join(tmp, "bundle.key")
	bundle := filepath.Join(tmp, "bundle.json")
	out, code := runCLI(t, "policy", "bundle", policies, "-o", bundle, "--key", key)
	if code != 0 || !strings.Contains(out, "revision ") {
		t.Fatalf("bundle: exit %d: %s", code, out)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	out, code = runCLI(t, "policy", "diff", "--baseline", bundle, "--current", policies, "--pub", key+".pub")
	if code != 0 || !strings.Contains(out, "no drift") {
		t.Fatalf("diff bundle vs its source: exit %d: %s", code, out)
	}
	dir := copyDir(t, policies)
	if err := os.Remove(filepath.Join(dir, "exceptions", "EXC-2026-007.yaml")); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(filepath.Join(dir, "guards.cedar"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\n@id(\"freeze-all\")\n@reason(\"freeze\")\nforbid (principal, action, resource);\n")
	f.Close()
	out, code = runCLI(t, "policy", "diff", "--baseline", bundle, "--current", dir)
	for _, want := range []string{"- exception EXC-2026-007 (removed)", "+ policy freeze-all (added)", "2 change(s)"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("diff lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	if _, code := runCLI(t, "policy", "diff", "--baseline", bundle, "--current", dir, "--exit-code"); code != 1 {
		t.Errorf("--exit-code with drift: exit %d, want 1", code)
	}
	// A bundle that does not verify is refused.
	b, _ := os.ReadFile(bundle)
	b = bytes.Replace(b, []byte(`"signature": "`), []byte(`"signature": "AAAA`), 1)
	os.WriteFile(bundle, b, 0o644)
	if out, code := runCLI(t, "policy", "diff", "--baseline", bundle, "--current", policies, "--pub", key+".pub"); code != 1 {
		t.Fatalf("tampered bundle accepted: %s", out)
	}
}
