package sdk_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/warden-a2a/warden/sdk"
)

// TestFileSourceFollowsRotation: a FileSource on the directory a renewing Source writes
// serves each new SVID within its poll interval, and a TLS server built on it presents
// the newest certificate on the next handshake — without ever renewing itself.
func TestFileSourceFollowsRotation(t *testing.T) {
	srv, admin := controlPlane(t, time.Minute)
	dir := t.TempDir()
	writer := enrol(t, srv, admin, "vendor-portal", dir)
	if err := writer.Renew(context.Background()); err != nil { // writes the files
		t.Fatal(err)
	}
	fs, err := sdk.OpenFileSource(sdk.FileSourceConfig{Dir: dir, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go fs.Run(ctx)

	caller := enrol(t, srv, admin, "procurement", t.TempDir())
	tc := tlsconfig.MTLSServerConfig(fs, fs, tlsconfig.AuthorizeAny())
	ln, _ := tls.Listen("tcp", "127.0.0.1:0", tc)
	hs := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	go hs.Serve(ln)
	defer hs.Close()
	served := func() string { // serial of the certificate a fresh handshake sees
		c, err := tls.Dial("tcp", ln.Addr().String(), tlsconfig.MTLSClientConfig(caller, caller, tlsconfig.AuthorizeAny()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	for i := 0; i < 3; i++ {
		if err := writer.Renew(context.Background()); err != nil {
			t.Fatal(err)
		}
		want, _ := writer.GetX509SVID()
		serial := want.Certificates[0].SerialNumber.String()
		deadline := time.Now().Add(5 * time.Second)
		for served() != serial {
			if time.Now().After(deadline) {
				t.Fatalf("rotation %d: the TLS server still presents an old SVID 5 s after the files changed", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestFileSourceRefusesWrongFiles: files replaced by another identity, or by an SVID
// older than the one held, are not taken; the held SVID stays and Reload says why.
func TestFileSourceRefusesWrongFiles(t *testing.T) {
	srv, admin := controlPlane(t, time.Minute)
	dir, other := t.TempDir(), t.TempDir()
	writer := enrol(t, srv, admin, "vendor-portal", dir)
	first, _ := writer.GetX509SVID()
	time.Sleep(1100 * time.Millisecond) // certificate times have whole seconds
	if err := writer.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	fs, err := sdk.OpenFileSource(sdk.FileSourceConfig{Dir: dir, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	held, _ := fs.GetX509SVID()
	b, _ := writer.GetX509BundleForTrustDomain(td)

	// An older SVID of the same identity (a restored backup): kept the newer.
	if err := sdk.WriteFiles(dir, first, b); err != nil {
		t.Fatal(err)
	}
	if changed, err := fs.Reload(); changed || err == nil || !strings.Contains(err.Error(), "older") {
		t.Errorf("older SVID: changed %v, err %v", changed, err)
	}
	// Another identity's files.
	intruder := enrol(t, srv, admin, "logistics", other)
	isv, _ := intruder.GetX509SVID()
	if err := sdk.WriteFiles(dir, isv, b); err != nil {
		t.Fatal(err)
	}
	if changed, err := fs.Reload(); changed || err == nil || !strings.Contains(err.Error(), "identity changes need a restart") {
		t.Errorf("other identity: changed %v, err %v", changed, err)
	}
	if now, _ := fs.GetX509SVID(); now.Certificates[0].SerialNumber.Cmp(held.Certificates[0].SerialNumber) != 0 || fs.ID() != held.ID {
		t.Errorf("the held SVID changed to %s %s", now.ID, now.Certificates[0].SerialNumber)
	}
}

// TestFileSourceReadsAtOnceWhenExpired: with the held SVID expired, a handshake does not
// wait for the next poll: GetX509SVID re-reads the files itself.
func TestFileSourceReadsAtOnceWhenExpired(t *testing.T) {
	srv, admin := controlPlane(t, 2*time.Second)
	dir := t.TempDir()
	writer := enrol(t, srv, admin, "vendor-portal", dir)
	if err := writer.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	fs, err := sdk.OpenFileSource(sdk.FileSourceConfig{Dir: dir, Interval: time.Hour}) // no polling in this test
	if err != nil {
		t.Fatal(err)
	}
	held, _ := fs.GetX509SVID()
	time.Sleep(time.Until(held.Certificates[0].NotAfter) + 10*time.Millisecond)
	if err := writer.Renew(context.Background()); err == nil {
		t.Fatal("renewed with an expired SVID")
	}
	// The writer cannot renew an expired SVID over mTLS; a fresh enrolment of the same
	// identity stands in for its recovery.
	tok, _ := admin.CreateToken(context.Background(), "vendor-portal", time.Minute)
	svid, bundle, err := sdk.Enroll(context.Background(), sdk.EnrollConfig{ServerURL: srv.URL(), Token: tok.Token})
	if err != nil {
		t.Fatal(err)
	}
	if err := sdk.WriteFiles(dir, svid, bundle); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond) // past the 200 ms between forced reads
	got, _ := fs.GetX509SVID()
	if got.Certificates[0].SerialNumber.Cmp(svid.Certificates[0].SerialNumber) != 0 {
		t.Fatal("an expired SVID was served although new files were on disk")
	}
}

// TestFileSourceHTTPClientPresentsNewest: the control-plane client of a FileSource
// authenticates with the newest SVID (here: fetching the trust state after the files
// moved past the SVID the source opened with has expired).
func TestFileSourceHTTPClientPresentsNewest(t *testing.T) {
	srv, admin := controlPlane(t, 3*time.Second)
	dir := t.TempDir()
	writer := enrol(t, srv, admin, "vendor-portal", dir)
	if err := writer.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	fs, err := sdk.OpenFileSource(sdk.FileSourceConfig{Dir: dir, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go fs.Run(ctx)
	go writer.Run(ctx)
	first, _ := fs.GetX509SVID()
	time.Sleep(time.Until(first.Certificates[0].NotAfter) + 500*time.Millisecond)
	fs.HTTPClient().CloseIdleConnections() // a new handshake
	res, err := fs.HTTPClient().Get(srv.URL() + "/v1/trust-state")
	if err != nil {
		t.Fatalf("trust-state fetch after the first SVID expired: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
}
