package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
)

// auditorClient asks the admin for an auditor credential and returns an API client
// with it.
func auditorClient(t *testing.T, f *fixture, name string) *adminclient.Client {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id := "spiffe://" + td.Name() + "/warden/auditor/" + name
	res, err := f.admin.CreateAuditor(context.Background(), api.AuditorRequest{Name: name, CSR: csrFor(t, key, id), TTLSec: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if res.SPIFFEID != id || time.Until(res.ExpiresAt) > time.Hour+time.Minute {
		t.Fatalf("auditor credential %+v", res)
	}
	var certs []*x509.Certificate
	for rest := []byte(res.Certificates); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	sv := &x509svid.SVID{ID: spiffeid.RequireFromString(id), Certificates: certs, PrivateKey: key}
	bundle, err := x509bundle.Parse(td, []byte(res.Bundle))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: tlsconfig.MTLSClientConfig(sv, bundle, tlsconfig.AuthorizeID(spiffeid.RequireFromPath(td, "/warden/server")))}
	t.Cleanup(tr.CloseIdleConnections)
	return &adminclient.Client{BaseURL: f.url, HTTP: &http.Client{Timeout: 30 * time.Second, Transport: tr}, ID: sv.ID}
}

// TestAuditorCredentialIsReadOnly: an auditor credential searches the log and is refused
// (403 forbidden, an access event) by every other endpoint, admin reads and writes
// included; issuing it is an audit event.
func TestAuditorCredentialIsReadOnly(t *testing.T) {
	f, st, _ := startAudited(t)
	ctx := context.Background()
	aud := auditorClient(t, f, "alice")
	if _, err := aud.SearchAudit(ctx, url.Values{}); err != nil {
		t.Fatalf("auditor search: %v", err)
	}
	calls := []struct{ method, path, body string }{
		{"GET", api.PathAdminEntries, ""},
		{"POST", api.PathAdminEntries, `{"name":"x","role":"r","class":"read-only","zone":"z"}`},
		{"DELETE", api.PathAdminEntries + "/procurement", ""},
		{"PUT", api.PathAdminEntries + "/procurement/attrs", `{}`},
		{"POST", api.PathAdminTokens, `{"entry":"procurement","ttl_sec":60}`},
		{"POST", api.PathAdminTrust + "revoke", `{"id":"spiffe://supplychain.example/agent/x","reason":"r"}`},
		{"POST", api.PathAdminTrust + "restore", `{"id":"spiffe://supplychain.example/warden/auditor/alice","reason":"r"}`},
		{"POST", api.PathAdminCARotate, `{"reason":"r"}`},
		{"POST", api.PathAdminAuditors, `{"name":"bob","csr":""}`},
		{"POST", api.PathAdminAttestChallenge, `{"id":"spiffe://supplychain.example/agent/x","reason":"r"}`},
		{"GET", api.PathAdminApprovals, ""},
		{"POST", api.PathAdminApprovers, `{}`},
		{"POST", api.PathAuditEvents, `{"events":[]}`},
		{"POST", api.PathRenew, `{}`},
		{"POST", api.PathJWTSVID, `{}`},
		{"GET", api.PathTrustState, ""},
		{"POST", api.PathApprovals, `{}`},
		{"POST", api.PathAuditSearch, ""},
		{"GET", "/v1/admin/not-yet-written", ""},
	}
	for _, c := range calls {
		req, _ := http.NewRequestWithContext(ctx, c.method, f.url+c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		res, err := aud.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden || !strings.Contains(b.String(), `"forbidden"`) || !strings.Contains(b.String(), "read-only") {
			t.Errorf("%s %s with the auditor credential: %d %s", c.method, c.path, res.StatusCode, b.String())
		}
	}
	var issued, refused int
	for _, ev := range events(t, st) {
		if ev.Kind == audit.KindAuditor && ev.Subject == "spiffe://supplychain.example/warden/auditor/alice" && ev.Outcome == "issued" &&
			ev.Actor == "spiffe://supplychain.example/warden/admin" && ev.Serial != "" {
			issued++
		}
		if ev.Kind == audit.KindAccess && ev.Subject == "spiffe://supplychain.example/warden/auditor/alice" && ev.Reason == api.ReasonForbidden {
			refused++
		}
	}
	if issued != 1 || refused != len(calls) {
		t.Fatalf("audit events: %d issued (want 1), %d refusals (want %d)", issued, refused, len(calls))
	}
	// An agent's credential may not search, and a revoked auditor no longer can.
	if _, err := f.admin.ChangeTrust(ctx, "revoke", api.TrustChange{ID: "spiffe://supplychain.example/warden/auditor/alice", Reason: "audit over"}); err != nil {
		t.Fatal(err)
	}
	if _, err := aud.SearchAudit(ctx, url.Values{}); reason(err) != api.ReasonIdentityRevoked {
		t.Fatalf("revoked auditor: %v", err)
	}
}

// TestAuditSearch: every filter selects from the verified bytes, proofs verify against
// the checkpoint, paging goes back, bad queries are refused with a reason, and a record
// whose filter column was edited makes the search fail instead of answering wrongly.
func TestAuditSearch(t *testing.T) {
	f, st, lg := startAudited(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	for i := 0; i < 30; i++ {
		ev := audit.Event{V: 1, ID: fmt.Sprintf("d%02d", i), Kind: audit.KindDecision, Time: t0.Add(time.Duration(i) * time.Minute),
			WorkflowID: fmt.Sprintf("wf-%d", i%3), Caller: "spiffe://supplychain.example/agent/procurement",
			Callee: "spiffe://supplychain.example/agent/vendor-portal", Action: []string{"purchase_order.create", "catalog.read"}[i%2],
			Decision: audit.DecisionAllow}
		if i%5 == 0 {
			ev.Decision, ev.Reason = audit.DecisionDeny, "replay"
		}
		if _, err := lg.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(res api.AuditSearchResponse) string {
		var s []string
		for _, e := range res.Events {
			s = append(s, e.ID)
		}
		return strings.Join(s, ",")
	}
	cases := []struct {
		q    string
		want string
	}{
		{"decision=deny&reason=replay", "d00,d05,d10,d15,d20,d25"},
		{"action=catalog.read&workflow=wf-0", "d03,d09,d15,d21,d27"},
		{"from=2026-11-27T03:10:00Z&to=2026-11-27T03:13:00Z&kind=decision", "d10,d11,d12"},
		{"agent=spiffe://supplychain.example/agent/vendor-portal&decision=deny&limit=2", "d20,d25"},
		{"decision=deny&limit=2&before=20", "d10,d15"},
		{"agent=spiffe://supplychain.example/agent/nobody", ""},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.q)
		res, err := f.admin.SearchAudit(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		if got := ids(res); got != c.want {
			t.Errorf("%s: %s, want %s", c.q, got, c.want)
		}
	}
	// Proofs against one checkpoint, signed now because none covers the records yet.
	res, err := f.admin.SearchAudit(ctx, url.Values{"decision": {"deny"}, "proof": {"true"}})
	if err != nil || len(res.Events) != 6 || res.TreeSize < 30 || res.Checkpoint == "" {
		t.Fatalf("search with proofs: %+v %v", res, err)
	}
	_, v, err := audit.LoadKeys(f.dir + "/audit")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Events {
		p := audit.InclusionProof{Index: e.Index, Event: e.Event, TreeSize: res.TreeSize, Checkpoint: res.Checkpoint}
		size, root, err := audit.OpenCheckpoint([]byte(res.Checkpoint), v)
		if err != nil {
			t.Fatal(err)
		}
		p.Root = root
		p.TreeSize = size
		p.Proof = decodeProof(t, e.Proof)
		if err := audit.VerifyInclusion(p, v); err != nil {
			t.Fatalf("proof of %s: %v", e.ID, err)
		}
	}
	for _, bad := range []string{"decision=maybe", "from=yesterday", "limit=0", "limit=1001", "proof=true&limit=101",
		"kind=nonsense", "before=-3", "colour=red", "decision=deny&decision=allow"} {
		q, _ := url.ParseQuery(bad)
		if _, err := f.admin.SearchAudit(ctx, q); reason(err) != api.ReasonBadRequest {
			t.Errorf("%s: %v, want bad_request", bad, err)
		}
	}
	// A filter column edited behind the log: the search refuses to answer from it.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.dir, "warden.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("UPDATE audit_records SET reason = 'replay' WHERE id = 'd01'"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.SearchAudit(ctx, url.Values{"reason": {"replay"}}); reason(err) != api.ReasonAuditInconsistent {
		t.Fatalf("search over an edited column: %v, want audit_inconsistent", err)
	}
	if _, err := audit.Verify(ctx, st, v); err == nil {
		t.Fatal("verify missed the edited column")
	}
}

func decodeProof(t *testing.T, hs []string) tlog.RecordProof {
	t.Helper()
	var p tlog.RecordProof
	for _, h := range hs {
		b, err := base64.StdEncoding.DecodeString(h)
		if err != nil || len(b) != tlog.HashSize {
			t.Fatalf("proof hash %q", h)
		}
		p = append(p, tlog.Hash(b))
	}
	return p
}
