package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/audit/auditdoc"
	"github.com/warden-a2a/warden/internal/federation/federationtest"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/sdk"
)

// TestEveryDocumentedKindIsWritten: every kind docs/audit-events.md says the server or
// its anomaly detector writes is in the audit log after one run of the real code paths
// (enrolment, renewal, admin changes, live controls, an approval, a refused request, a
// gate's denials), and every field it documents for lifecycle events (and for all
// events) is carried by one of them. A kind documented with no code path that writes it
// fails here: docs/audit-events.md lists only what is emitted. Decision events and their
// fields are checked where gates write them (internal/gate
// TestDocumentedDecisionFieldsAreWritten).
func TestEveryDocumentedKindIsWritten(t *testing.T) {
	doc, err := auditdoc.Load("../../docs/audit-events.md")
	if err != nil {
		t.Fatal(err)
	}
	// Attestation on (challenges are attestation events), required of no class, so that
	// the test's agents enrol with a join token alone.
	f, st, _ := startAudited(t, &server.AttestConfig{Require: map[string]bool{}})
	ctx := context.Background()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	procurement := "spiffe://supplychain.example/agent/procurement"
	_, src := f.enroll(t, "procurement") // entry, join_token, enrollment
	must("renew", src.Renew(ctx))        // renewal
	for _, op := range []string{"quarantine", "suspend", "restore"} {
		_, err := f.admin.ChangeTrust(ctx, op, api.TrustChange{ID: procurement, Reason: "drill"})
		must(op, err)
	}
	_, err = f.admin.ChangeTrust(ctx, "revoke", api.TrustChange{Serial: "0a1b2c", Reason: "lost laptop"})
	must("revoke", err)
	_, err = f.admin.Challenge(ctx, procurement, "admin") // attestation
	must("challenge", err)
	_, pub, _ := approval.GenerateKey()
	_, err = f.admin.AddApprover(ctx, api.Approver{Name: "maria", PublicKey: string(pub)})
	must("approver", err)
	_, err = f.admin.RotateCA(ctx, "drill") // ca_rotation
	must("rotate", err)
	_, err = f.admin.EngageKillSwitch(ctx, api.KillSwitchRequest{Scope: "action", Value: "payment.release", Reason: "drill"})
	must("kill switch", err)
	_, err = f.admin.Incident(ctx, "start", api.IncidentRequest{Reason: "drill"})
	must("incident", err)
	_, err = f.admin.SetZone(ctx, "edge", api.ZoneRequest{State: "degraded", Reason: "drill"})
	must("zone", err)
	partner := federationtest.New(t, "partner.example") // federation
	partnerBundle, _ := partner.Bundle().Marshal()
	_, err = f.admin.AddFederation(ctx, api.FederationRequest{TrustDomain: "partner.example", EndpointURL: partner.ServeSPIFFE(t),
		Profile: "https_spiffe", EndpointSPIFFEID: partner.EndpointID.String(), Bundle: partnerBundle})
	must("federation", err)
	auditorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err = f.admin.CreateAuditor(ctx, api.AuditorRequest{Name: "alice", CSR: csrFor(t, auditorKey, "spiffe://supplychain.example/warden/auditor/alice")})
	must("auditor", err)
	// policy_bundle: a push this control plane cannot verify (no --policy-public-key) is
	// refused and recorded (TestPolicyPush covers the activation).
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	raw, _ := signedDefaultBundle(t, key)
	if _, err := f.admin.PushPolicy(ctx, api.PolicyPush{Bundle: raw, Reason: "drill"}); apiCode(err) != api.ReasonNoPolicyKey {
		t.Fatalf("push: %v", err)
	}

	// access: an agent on the admin API.
	res, err := src.HTTPClient().Get(f.url + api.PathAdminEntries)
	must("agent on the admin API", err)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("agent on the admin API: %d", res.StatusCode)
	}

	// A gate identity files an approval (approval) and ships five denials of one caller
	// (anomaly: repeated_denials).
	_, err = f.admin.CreateEntry(ctx, api.Entry{Name: "bank", Kind: "gate", Role: "gate", Class: "regulated", Zone: "finance"})
	must("gate entry", err)
	tok, err := f.admin.CreateToken(ctx, "bank", time.Minute)
	must("gate token", err)
	gsvid, bundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: f.url, Token: tok.Token})
	must("gate enrolment", err)
	gsrc, err := sdk.NewSource(sdk.SourceConfig{ServerURL: f.url, SVID: gsvid, Bundle: bundle})
	must("gate source", err)
	ac := approval.NewClient(f.url, gsrc, gsrc, td)
	defer ac.HTTP.CloseIdleConnections()
	c := paymentClaims(`{"amount":25000}`)
	_, err = ac.Request(ctx, paymentRequest(c))
	must("approval request", err)
	sink := audit.HTTPSink{URL: f.url, Client: gsrc.HTTPClient()}
	var batch [][]byte
	for i := range 5 {
		ev := audit.Event{V: 1, ID: fmt.Sprintf("dec-%d", i), Kind: audit.KindDecision, Time: time.Now(), Caller: procurement,
			Callee: gsvid.ID.String(), Action: "payment.release", Decision: audit.DecisionDeny, Reason: "policy_deny", GateID: gsvid.ID.String()}
		b, err := ev.Canonical()
		must("decision", err)
		batch = append(batch, b)
	}
	must("ship", sink.Ship(ctx, batch))

	written := map[string]bool{}
	kinds := map[string]bool{}
	for _, ev := range events(t, st) {
		kinds[string(ev.Kind)] = true
		if ev.Kind == audit.KindDecision {
			continue // shipped by this test; gates' own decisions are checked in internal/gate
		}
		b, err := ev.Canonical()
		must("canonical", err)
		var m map[string]any
		must("json", json.Unmarshal(b, &m))
		for k := range m {
			written[k] = true
		}
	}
	want := doc.KindsWrittenBy("server", "detector")
	if len(want) < 10 {
		t.Fatalf("only %d server and detector kinds documented: the table moved?", len(want))
	}
	for _, k := range want {
		if !kinds[k] {
			t.Errorf("docs/audit-events.md: kind %q is written by the server, but no code path of this run wrote it", k)
		}
	}
	for _, fld := range doc.FieldsIn("lifecycle", "all") {
		if !written[fld] {
			t.Errorf("docs/audit-events.md: field %q is documented for lifecycle events, but none carries it", fld)
		}
	}
	var got []string
	for k := range kinds {
		got = append(got, k)
	}
	slices.Sort(got)
	t.Logf("kinds written: %v", got)
}
