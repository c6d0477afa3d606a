package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the warden command line in-process and returns stdout and the exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(args)
	err := root.Execute()
	code := 0
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return strings.TrimSpace(out.String()), code
}

// TestIntentSignVerify signs with the spec fixtures and verifies: valid, then a body
// byte changed, then presented with another agent's certificate.
func TestIntentSignVerify(t *testing.T) {
	td := "../intent/testdata/"
	dir := t.TempDir()
	body := filepath.Join(dir, "body.json")
	os.WriteFile(body, []byte(`{"sku":"1001","qty":40}`), 0o644)
	tampered := filepath.Join(dir, "tampered.json")
	os.WriteFile(tampered, []byte(`{"sku":"1001","qty":41}`), 0o644)
	const aud = "spiffe://example.org/agent/vendor-portal"
	for _, alg := range []string{"ed25519", "p256"} {
		t.Run(alg, func(t *testing.T) {
			cert := td + "procurement-" + alg + "-cert.pem"
			tok, code := run(t, "intent", "sign", "--key", td+"procurement-"+alg+"-key.pem", "--cert", cert,
				"--aud", aud, "--act", "purchase_order.create", "--res", "po/1001", "--scope", "b,a", "--now", "1767225600", "--body", body)
			if code != 0 || strings.Count(tok, ".") != 2 {
				t.Fatalf("sign: code %d, out %q", code, tok)
			}
			verify := func(cert, body string) (string, int) {
				return run(t, "intent", "verify", "--token", tok, "--cert", cert, "--aud", aud, "--body", body, "--now", "1767225610")
			}
			out, code := verify(cert, body)
			if code != 0 || !strings.Contains(out, `"act":"purchase_order.create"`) || !strings.Contains(out, `"scope":["a","b"]`) {
				t.Fatalf("verify: code %d, out %q", code, out)
			}
			if out, code := verify(cert, tampered); code != 1 || out != "body_mismatch" {
				t.Fatalf("tampered body: code %d, out %q", code, out)
			}
			if out, code := verify(td+"logistics-ed25519-cert.pem", body); code != 1 || out != "channel_mismatch" {
				t.Fatalf("other cert: code %d, out %q", code, out)
			}
		})
	}
	if _, code := run(t, "intent", "sign", "--key", td+"ca-cert.pem", "--cert", td+"ca-cert.pem", "--aud", aud, "--act", "a", "--body", body); code != 1 {
		t.Fatalf("sign with a certificate as key: code %d", code)
	}
}
