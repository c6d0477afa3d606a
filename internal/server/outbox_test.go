package server_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/enroll"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/store/sqlite"
)

const adminID = "spiffe://supplychain.example/warden/admin"

// TestAdminActionsAudited: every admin action leaves one event of its kind whose actor is
// the admin credential (SPIFFE ID, serial, request id); a join token's secret and its
// hash are in no event.
func TestAdminActionsAudited(t *testing.T) {
	f, st, _ := startAudited(t, &server.AttestConfig{})
	ctx := context.Background()
	procurement := "spiffe://supplychain.example/agent/procurement"
	_, pub, err := approval.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var secret string
	type want struct {
		kind    audit.Kind
		outcome string
		subject string
	}
	steps := []struct {
		name string
		do   func() error
		want want
	}{
		{"create-entry", func() error {
			_, err := f.admin.CreateEntry(ctx, api.Entry{Name: "procurement", Role: "procurement", Class: "transactional", Zone: "cloud"})
			return err
		}, want{audit.KindEntry, "created", procurement}},
		{"set-reference-values", func() error {
			_, err := f.admin.SetEntryAttrs(ctx, "procurement", json.RawMessage(`{"owner":"ops","attestation":{"binaries":["sha256:`+string(bytes.Repeat([]byte("ab"), 32))+`"]}}`))
			return err
		}, want{audit.KindEntry, "updated", procurement}},
		{"create-token", func() error {
			tok, err := f.admin.CreateToken(ctx, "procurement", time.Minute)
			secret = tok.Token
			return err
		}, want{audit.KindJoinToken, "created", procurement}},
		{"quarantine", func() error {
			_, err := f.admin.ChangeTrust(ctx, "quarantine", api.TrustChange{ID: procurement, Reason: "suspicious"})
			return err
		}, want{audit.KindQuarantine, "engaged", procurement}},
		{"suspend", func() error {
			_, err := f.admin.ChangeTrust(ctx, "suspend", api.TrustChange{ID: procurement, Reason: "incident"})
			return err
		}, want{audit.KindSuspension, "engaged", procurement}},
		{"restore", func() error {
			_, err := f.admin.ChangeTrust(ctx, "restore", api.TrustChange{ID: procurement, Reason: "cleared"})
			return err
		}, want{audit.KindQuarantine, "released", procurement}},
		{"revoke-serial", func() error {
			_, err := f.admin.ChangeTrust(ctx, "revoke", api.TrustChange{Serial: "0A1B", Reason: "lost"})
			return err
		}, want{audit.KindRevocation, "revoked", "serial:0a1b"}},
		{"challenge", func() error { _, err := f.admin.Challenge(ctx, procurement, "admin"); return err },
			want{audit.KindAttestation, "challenged", procurement}},
		{"add-approver", func() error {
			_, err := f.admin.AddApprover(ctx, api.Approver{Name: "maria", PublicKey: string(pub)})
			return err
		}, want{audit.KindApprover, "added", "maria"}},
		{"delete-approver", func() error { return f.admin.DeleteApprover(ctx, "maria") }, want{audit.KindApprover, "deleted", "maria"}},
		{"rotate-ca", func() error { _, err := f.admin.RotateCA(ctx, "key ceremony"); return err }, want{audit.KindCARotation, "rotated", "intermediate"}},
		{"delete-entry", func() error { return f.admin.DeleteEntry(ctx, "procurement") }, want{audit.KindEntry, "deleted", procurement}},
	}
	for _, step := range steps {
		before := len(events(t, st))
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got := events(t, st)[before:]
		if len(got) != 1 {
			t.Fatalf("%s: %d events, want 1: %+v", step.name, len(got), got)
		}
		e := got[0]
		if e.Kind != step.want.kind || e.Outcome != step.want.outcome || e.Subject != step.want.subject {
			t.Errorf("%s: event %s/%s about %s, want %+v", step.name, e.Kind, e.Outcome, e.Subject, step.want)
		}
		if e.Actor != adminID || len(e.Detail["credential_serial"]) < 16 || len(e.Detail["request_id"]) != 16 {
			t.Errorf("%s: actor %q, detail %v: want the admin credential and the request id", step.name, e.Actor, e.Detail)
		}
		switch step.name {
		case "set-reference-values":
			if e.Detail["reference_values_sha256"] == "" || e.Detail["previous_attrs_sha256"] != "" && e.Detail["previous_attrs_sha256"] == e.Detail["attrs_sha256"] {
				t.Errorf("%s: detail %v: want the new reference values' digest", step.name, e.Detail)
			}
		case "quarantine", "restore", "challenge":
			if e.Detail["trust_state_version"] == "" {
				t.Errorf("%s: no trust_state_version in %v", step.name, e.Detail)
			}
		}
	}
	if secret == "" {
		t.Fatal("no token created")
	}
	n, _ := st.Size(ctx)
	recs, err := st.Records(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := enroll.ParseToken(secret)
	if err != nil {
		t.Fatal(err)
	}
	hash := hex.EncodeToString(tok.Hash())
	for _, r := range recs {
		if bytes.Contains(r.Data, []byte(secret)) || bytes.Contains(r.Data, []byte(hash)) {
			t.Errorf("event %s carries the join token or its hash: %s", r.ID, r.Data)
		}
	}
}

// TestAdminChangeAnsweredOnlyWithItsEvent: when the audit log cannot take the event, the
// committed change is answered 503 audit_unavailable (not success); its event waits in
// the outbox, and the next server on the database appends it before it serves.
func TestAdminChangeAnsweredOnlyWithItsEvent(t *testing.T) {
	dir := t.TempDir()
	f, _, lg := startAuditedIn(t, dir)
	ctx := context.Background()
	lg.Close() // the log refuses every append from now on
	_, err := f.admin.CreateEntry(ctx, api.Entry{Name: "procurement", Role: "procurement", Class: "transactional", Zone: "cloud"})
	if reason(err) != api.ReasonAuditUnavailable {
		t.Fatalf("CreateEntry with the audit log down: %v, want %s", err, api.ReasonAuditUnavailable)
	}
	st, err := sqlite.Open(filepath.Join(dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.GetEntry(ctx, "procurement"); err != nil {
		t.Fatalf("the committed entry: %v", err)
	}
	staged, err := st.PendingEvents(ctx, 10)
	if err != nil || len(staged) != 1 {
		t.Fatalf("outbox after the failed append: %d events, %v; want the entry's event", len(staged), err)
	}
	// A restart: the staged event reaches the log before the new server serves.
	_, storage, _ := startAuditedIn(t, dir)
	var found bool
	for _, ev := range events(t, storage) {
		found = found || ev.ID == staged[0].ID && ev.Kind == audit.KindEntry && ev.Outcome == "created"
	}
	if !found {
		t.Fatalf("staged event %s not in the log after the restart", staged[0].ID)
	}
	if left, _ := st.PendingEvents(ctx, 10); len(left) != 0 {
		t.Errorf("outbox after the restart: %d events left", len(left))
	}
}

// TestInterruptedCARotation: a rotation whose new intermediate was written but not
// installed when the process died is installed at the next start if its ca_rotation event
// is in the log, and discarded if not: never an intermediate without its event.
func TestInterruptedCARotation(t *testing.T) {
	for _, logged := range []bool{true, false} {
		name := map[bool]string{true: "event-logged-installs", false: "no-event-discards"}[logged]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: filepath.Join(dir, "ca")})
			if err != nil {
				t.Fatal(err)
			}
			old := c.Intermediates()[0]
			// Keep the .next files a crash would leave: copy them at the commit point,
			// abandon the rotation, put them back.
			var next *x509.Certificate
			saved := map[string][]byte{}
			stop := errors.New("crash")
			_, err = c.RotateIntermediateWith(func(cert *x509.Certificate) error {
				next = cert
				for _, n := range []string{"intermediate.pem.next", "intermediate_key.pem.next"} {
					saved[n], _ = os.ReadFile(filepath.Join(dir, "ca", n))
				}
				return stop
			})
			if !errors.Is(err, stop) || len(saved) != 2 {
				t.Fatalf("rotation: %v", err)
			}
			for n, b := range saved {
				if err := os.WriteFile(filepath.Join(dir, "ca", n), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if logged {
				st, err := sqlite.Open(filepath.Join(dir, "warden.db"))
				if err != nil {
					t.Fatal(err)
				}
				storage, err := audit.NewSQLite(context.Background(), st.DB())
				if err != nil {
					t.Fatal(err)
				}
				lg, err := audit.Open(context.Background(), audit.Config{Storage: storage})
				if err != nil {
					t.Fatal(err)
				}
				ev := audit.Event{V: 1, ID: "ca_rotation-" + ca.SerialHex(next), Kind: audit.KindCARotation, Time: time.Now(),
					Subject: "intermediate", Serial: ca.SerialHex(next), Actor: adminID, Outcome: "rotated", Reason: "operator_rotate"}
				if _, err := lg.Append(context.Background(), ev); err != nil {
					t.Fatal(err)
				}
				lg.Close()
				st.Close()
			}
			f, _, _ := startAuditedIn(t, dir)
			got := f.srv.CA().Intermediates()[0]
			want := old
			if logged {
				want = next
			}
			if !got.Equal(want) {
				t.Errorf("intermediate after restart: serial %s, want %s", ca.SerialHex(got), ca.SerialHex(want))
			}
			for n := range saved {
				if _, err := os.Stat(filepath.Join(dir, "ca", n)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s still there after the restart (%v)", n, err)
				}
			}
		})
	}
}
