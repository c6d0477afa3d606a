package server_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/truststate"
)

func apiCode(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// TestKillSwitchLifecycle: engage writes a signed version naming the switch, who and why;
// a second switch on the same scope is a conflict; release by scope removes it; both are
// audit events with actor and reason text.
func TestKillSwitchLifecycle(t *testing.T) {
	f, st, _ := startAudited(t)
	ctx := context.Background()
	out, err := f.admin.EngageKillSwitch(ctx, api.KillSwitchRequest{Scope: "action", Value: "payment.release", Reason: "fraud wave INC-42", Operator: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.ID, "ks-") || out.Version < 2 {
		t.Fatalf("engage: %+v", out)
	}
	_, doc := f.srv.Trust().Current()
	if len(doc.KillSwitches) != 1 {
		t.Fatalf("trust state switches %+v", doc.KillSwitches)
	}
	k := doc.KillSwitches[0]
	if k.ID != out.ID || k.Scope != "action" || k.Value != "payment.release" || k.Reason != "fraud wave INC-42" ||
		k.Operator != "alice" || k.By != "spiffe://"+td.Name()+"/warden/admin" || k.At.IsZero() || !k.Expires.IsZero() {
		t.Errorf("switch %+v", k)
	}
	if _, err := f.admin.EngageKillSwitch(ctx, api.KillSwitchRequest{Scope: "action", Value: "payment.release", Reason: "again"}); apiCode(err) != api.ReasonConflict {
		t.Errorf("second switch on the same scope: %v, want conflict", err)
	}
	stat, err := f.admin.Status(ctx)
	if err != nil || len(stat.KillSwitches) != 1 || stat.KillSwitches[0].ID != out.ID || stat.TrustStateVersion != out.Version {
		t.Fatalf("status %+v, %v", stat, err)
	}
	rel, err := f.admin.ReleaseKillSwitch(ctx, api.KillSwitchRelease{Scope: "action", Value: "payment.release", Reason: "fraud contained", Operator: "bob"})
	if err != nil || !slices.Equal(rel.Released, []string{out.ID}) || rel.Version != out.Version+1 {
		t.Fatalf("release: %+v, %v", rel, err)
	}
	if _, err := f.admin.ReleaseKillSwitch(ctx, api.KillSwitchRelease{ID: out.ID, Reason: "again"}); apiCode(err) != api.ReasonConflict {
		t.Errorf("release of a released switch: %v, want conflict", err)
	}
	var got []audit.Event
	for _, ev := range events(t, st) {
		if ev.Kind == audit.KindKillSwitch {
			got = append(got, ev)
		}
	}
	if len(got) != 2 {
		t.Fatalf("kill_switch events %+v", got)
	}
	admin := "spiffe://" + td.Name() + "/warden/admin"
	if e := got[0]; e.Outcome != "engaged" || e.Actor != admin || e.Detail["operator"] != "alice" || e.Subject != "action:payment.release" ||
		e.Detail["text"] != "fraud wave INC-42" || e.Detail["id"] != out.ID || e.Detail["trust_state_version"] == "" {
		t.Errorf("engage event %+v", e)
	}
	if e := got[1]; e.Outcome != "released" || e.Actor != admin || e.Detail["operator"] != "bob" || e.Reason != "operator_release" || e.Detail["text"] != "fraud contained" {
		t.Errorf("release event %+v", e)
	}
}

// TestKillSwitchTTLExpires: a switch with a ttl leaves the trust state by itself, with a
// released event whose reason is ttl_expired.
func TestKillSwitchTTLExpires(t *testing.T) {
	f, st, _ := startAudited(t)
	ctx := context.Background()
	out, err := f.admin.EngageKillSwitch(ctx, api.KillSwitchRequest{Scope: "agent", Value: "procurement", Reason: "test", TTLSec: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, doc := f.srv.Trust().Current()
	if len(doc.KillSwitches) != 1 || doc.KillSwitches[0].Expires.Sub(doc.KillSwitches[0].At) != time.Second {
		t.Fatalf("switches %+v", doc.KillSwitches)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, doc = f.srv.Trust().Current(); len(doc.KillSwitches) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("switch %s still in the trust state after its ttl", out.ID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The new version is served as soon as it is committed (its event with it, in the
	// outbox); the event reaches the Merkle log right after: wait for it, don't assume.
	for {
		for _, ev := range events(t, st) {
			if ev.Kind == audit.KindKillSwitch && ev.Outcome == "released" && ev.Reason == "ttl_expired" && ev.Detail["id"] == out.ID && ev.Actor == "server" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no ttl_expired event")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLiveControlsRefuseBadInput: each malformed request is refused with bad_request and
// nothing changes.
func TestLiveControlsRefuseBadInput(t *testing.T) {
	f := start(t, options{})
	ctx := context.Background()
	_, before := f.srv.Trust().Current()
	for name, call := range map[string]func() error{
		"no reason": func() error {
			_, err := f.admin.EngageKillSwitch(ctx, api.KillSwitchRequest{Scope: "action", Value: "payment.release"})
			return err
		},
		"blank reason": func() error {
			_, err := f.admin.EngageKillSwitch(ctx, api.KillSwitchRequest{Scope: "action", Value: "payment.release", Reason: " \t"})
			return err
		},
		"reason too long": func() error {
			_, err := f.admin.EngageKillSwitch(ctx, api.KillSwitchRequest{Scope: "action", Value: "payment.release", Reason: strings.Repeat("x", api.MaxReasonBytes+1)})
			return err
		},
		"unknown scope": func() error {
			_, err := f.admin.EngageKillSwitch(ctx, api.KillSwitchRequest{Scope: "galaxy", Value: "andromeda", Reason: "r"})
			return err
		},
		"empty value": func() error {
			_, err := f.admin.EngageKillSwitch(ctx, api.KillSwitchRequest{Scope: "action", Reason: "r"})
			return err
		},
		"action with spaces": func() error {
			_, err := f.admin.EngageKillSwitch(ctx, api.KillSwitchRequest{Scope: "action", Value: "payment release", Reason: "r"})
			return err
		},
		"negative ttl": func() error {
			_, err := f.admin.EngageKillSwitch(ctx, api.KillSwitchRequest{Scope: "action", Value: "payment.release", Reason: "r", TTLSec: -1})
			return err
		},
		"operator with a newline": func() error {
			_, err := f.admin.EngageKillSwitch(ctx, api.KillSwitchRequest{Scope: "action", Value: "payment.release", Reason: "r", Operator: "alice\nadmin"})
			return err
		},
		"release naming id and scope": func() error {
			_, err := f.admin.ReleaseKillSwitch(ctx, api.KillSwitchRelease{ID: "ks-1", Scope: "action", Value: "x", Reason: "r"})
			return err
		},
		"incident responder not an id": func() error {
			_, err := f.admin.Incident(ctx, "start", api.IncidentRequest{Reason: "r", Responders: []string{"not an id!"}})
			return err
		},
		"incident end with responders": func() error {
			_, err := f.admin.Incident(ctx, "end", api.IncidentRequest{Reason: "r", Responders: []string{"logistics"}})
			return err
		},
		"zone state unknown": func() error {
			_, err := f.admin.SetZone(ctx, "edge", api.ZoneRequest{State: "on-fire", Reason: "r"})
			return err
		},
		"zone staleness not a duration": func() error {
			_, err := f.admin.SetZone(ctx, "edge", api.ZoneRequest{State: "normal", MaxStaleness: "soon", Reason: "r"})
			return err
		},
		"zone staleness negative": func() error {
			_, err := f.admin.SetZone(ctx, "edge", api.ZoneRequest{State: "normal", MaxStaleness: "-1m", Reason: "r"})
			return err
		},
		"zone name upper case": func() error {
			_, err := f.admin.SetZone(ctx, "EDGE", api.ZoneRequest{State: "normal", Reason: "r"})
			return err
		},
	} {
		if err := call(); apiCode(err) != api.ReasonBadRequest {
			t.Errorf("%s: %v, want bad_request", name, err)
		}
	}
	if _, after := f.srv.Trust().Current(); after.Version != before.Version {
		t.Errorf("refused requests wrote version %d (was %d)", after.Version, before.Version)
	}
	if err := api.Do(ctx, f.admin.HTTP, http.MethodPost, f.url+api.PathAdminIncident+"pause", api.IncidentRequest{Reason: "r"}, nil); apiCode(err) != api.ReasonNotFound {
		t.Errorf("unknown incident op: %v", err)
	}
}

// TestLiveControlsNeedAdmin: an agent's SVID cannot engage a switch, start an incident,
// set a zone or read the status.
func TestLiveControlsNeedAdmin(t *testing.T) {
	f := start(t, options{})
	_, src := f.enroll(t, "procurement")
	client := src.HTTPClient()
	ctx := context.Background()
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, api.PathAdminKillSwitches, api.KillSwitchRequest{Scope: "action", Value: "*", Reason: "r"}},
		{http.MethodPost, api.PathAdminKillSwitchRelease, api.KillSwitchRelease{ID: "ks-1", Reason: "r"}},
		{http.MethodPost, api.PathAdminIncident + "start", api.IncidentRequest{Reason: "r"}},
		{http.MethodPut, api.PathAdminZones + "edge", api.ZoneRequest{State: "quarantined", Reason: "r"}},
		{http.MethodGet, api.PathAdminStatus, nil},
	} {
		if err := api.Do(ctx, client, c.method, f.url+c.path, c.body, nil); apiCode(err) != api.ReasonForbidden {
			t.Errorf("%s %s by an agent: %v, want forbidden", c.method, c.path, err)
		}
	}
}

// TestIncidentAndZones: incident start/end and zone states are written with who and why,
// listed by status, and audited (incident_mode, zone).
func TestIncidentAndZones(t *testing.T) {
	f, st, _ := startAudited(t)
	ctx := context.Background()
	if _, err := f.admin.Incident(ctx, "start", api.IncidentRequest{Reason: "INC-7 ledger", Responders: []string{"payment-release", "spiffe://" + td.Name() + "/agent/incident-bot"}, Zone: "finance", Operator: "carol"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.Incident(ctx, "start", api.IncidentRequest{Reason: "again"}); apiCode(err) != api.ReasonConflict {
		t.Errorf("second start: %v, want conflict", err)
	}
	if _, err := f.admin.SetZone(ctx, "warehouse", api.ZoneRequest{State: "quarantined", MaxStaleness: "2m", Reason: "scanner firmware", Operator: "dave"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.SetZone(ctx, "warehouse", api.ZoneRequest{State: "degraded", Reason: "firmware rolled back"}); err != nil {
		t.Fatal(err)
	}
	stat, err := f.admin.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in := stat.Incident; in == nil || in.Zone != "finance" || in.Reason != "INC-7 ledger" || in.Operator != "carol" || in.Since.IsZero() || len(stat.Responders) != 2 {
		t.Errorf("incident in status: %+v %v", stat.Incident, stat.Responders)
	}
	if z := stat.Zones["warehouse"]; z.State != truststate.ZoneDegraded || z.MaxStaleness != "2m0s" || z.Reason != "firmware rolled back" {
		t.Errorf("zone %+v (max_staleness is kept when not given)", z)
	}
	if _, err := f.admin.SetZone(ctx, "warehouse", api.ZoneRequest{State: "normal", MaxStaleness: "0s", Reason: "all clear"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.Incident(ctx, "end", api.IncidentRequest{Reason: "contained"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.Incident(ctx, "end", api.IncidentRequest{Reason: "again"}); apiCode(err) != api.ReasonConflict {
		t.Errorf("second end: %v, want conflict", err)
	}
	_, doc := f.srv.Trust().Current()
	if doc.IncidentMode || doc.Incident != nil || doc.Responders != nil || doc.Zones != nil {
		t.Errorf("after end and normal: incident %v %+v responders %v zones %v", doc.IncidentMode, doc.Incident, doc.Responders, doc.Zones)
	}
	var kinds []string
	for _, ev := range events(t, st) {
		switch ev.Kind {
		case audit.KindIncidentMode, audit.KindZone:
			kinds = append(kinds, string(ev.Kind)+":"+ev.Outcome+":"+ev.Subject+":"+ev.Detail["operator"])
		}
	}
	want := []string{"incident_mode:started:zone:finance:carol", "zone:quarantined:zone:warehouse:dave",
		"zone:degraded:zone:warehouse:", "zone:normal:zone:warehouse:", "incident_mode:ended:zone:finance:"}
	if !slices.Equal(kinds, want) {
		t.Errorf("events\n got %q\nwant %q", kinds, want)
	}
}
