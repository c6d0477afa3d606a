package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/warden-a2a/warden/internal/api"
)

// TestEnrollServesWorkloadAPI: `warden enroll --watch --workload-api` serves the agent's
// SVID to a go-spiffe client of the selected uid; `warden jwt-svid` prints a JWT-SVID
// from that socket and from the SVID files, both verifying with the control plane's
// bundle; --workload-api without --watch or without a selector is a usage error.
func TestEnrollServesWorkloadAPI(t *testing.T) {
	dir, srv, _, admin := startControlPlane(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := admin.CreateEntry(ctx, api.Entry{Name: "carrier-desk", Role: "shipping", Class: "advisory", Zone: "cloud"}); err != nil {
		t.Fatal(err)
	}
	tok, _ := admin.CreateToken(ctx, "carrier-desk", time.Minute)
	out := filepath.Join(dir, "agent")
	sock := "unix://" + filepath.Join(dir, "run", "agent.sock")
	base := []string{"enroll", "--server", srv.URL(), "--token", tok.Token, "--out", out}
	if _, code := run(t, append(base, "--workload-api", sock, "--workload-uid", strconv.Itoa(os.Getuid()))...); code != 2 {
		t.Errorf("--workload-api without --watch: exit %d", code)
	}
	if _, code := run(t, append(base, "--watch", "--workload-api", sock)...); code != 2 {
		t.Errorf("--workload-api without a selector: exit %d", code)
	}

	runEnrollWatch(t, ctx, append(base, "--watch", "--workload-api", sock, "--workload-uid", strconv.Itoa(os.Getuid())))

	fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
	defer fcancel()
	var sv interface{ String() string }
	for {
		x, err := workloadapi.FetchX509SVID(fctx, workloadapi.WithAddr(sock))
		if err == nil {
			sv = x.ID
			break
		}
		if fctx.Err() != nil {
			t.Fatalf("no SVID over the Workload API: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sv.String() != "spiffe://supplychain.example/agent/carrier-desk" {
		t.Fatalf("SVID for %s", sv)
	}

	jb := jwtbundle.FromJWTAuthorities(srv.CA().TrustDomain(), srv.CA().SPIFFEBundle().JWTAuthorities())
	for name, args := range map[string][]string{
		"workload api": {"jwt-svid", "--aud", "spiffe://partner.example/agent/carrier", "--workload-api", sock},
		"svid files":   {"jwt-svid", "--aud", "spiffe://partner.example/agent/carrier", "--svid-dir", out, "--server", srv.URL(), "--ttl", "2m"},
	} {
		tok, code := run(t, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, tok)
		}
		got, err := jwtsvid.ParseAndValidate(strings.TrimSpace(tok), jb, []string{"spiffe://partner.example/agent/carrier"})
		if err != nil || got.ID.String() != sv.String() {
			t.Fatalf("%s: %v %v", name, got, err)
		}
	}
}

// runEnrollWatch runs `warden enroll --watch ...` (args) in process until the test ends.
func runEnrollWatch(t *testing.T, ctx context.Context, args []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	root := newRootCmd()
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(args)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
