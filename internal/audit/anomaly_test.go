package audit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/audit"
)

func call(caller, callee, zone, decision string, at time.Duration) audit.Event {
	return audit.Event{V: 1, ID: fmt.Sprintf("d-%s-%v", caller, at), Kind: audit.KindDecision, Time: t0.Add(at),
		Caller: caller, Callee: callee, Zone: zone, Decision: decision, WorkflowID: "wf-1"}
}

const (
	proc   = "spiffe://example.org/agent/procurement"
	erp    = "spiffe://example.org/agent/erp"
	acme   = "spiffe://acme.example/agent/portal"
	globex = "spiffe://globex.example/agent/edi"
)

func TestDetectorSignals(t *testing.T) {
	zones := map[string]string{proc: "plant-1", erp: "plant-1"}
	cases := []struct {
		name   string
		events func() []audit.Event
		want   []string // reasons emitted, in order
	}{
		{"five-denials-in-a-minute", func() (evs []audit.Event) {
			for i := 0; i < 5; i++ {
				evs = append(evs, call(proc, erp, "plant-1", "deny", time.Duration(i)*10*time.Second))
			}
			return
		}, []string{audit.AnomalyRepeatedDenials}},
		{"five-denials-spread-over-five-minutes-is-quiet", func() (evs []audit.Event) {
			for i := 0; i < 5; i++ {
				evs = append(evs, call(proc, erp, "plant-1", "deny", time.Duration(i)*time.Minute))
			}
			return
		}, nil},
		{"twenty-denials-signal-once-per-window", func() (evs []audit.Event) {
			for i := 0; i < 20; i++ {
				evs = append(evs, call(proc, erp, "plant-1", "deny", time.Duration(i)*time.Second))
			}
			return
		}, []string{audit.AnomalyRepeatedDenials}},
		{"certificate-churn", func() (evs []audit.Event) {
			for i := 0; i < 5; i++ {
				evs = append(evs, audit.Event{V: 1, ID: fmt.Sprint("r", i), Kind: audit.KindRenewal, Time: t0.Add(time.Duration(i) * time.Second), Subject: proc})
			}
			return
		}, []string{audit.AnomalyCertChurn}},
		{"new-cross-zone-route-once", func() []audit.Event {
			return []audit.Event{call(proc, erp, "plant-1", "allow", 0), call(proc, erp, "dc-east", "allow", time.Second),
				call(proc, erp, "dc-east", "allow", 2*time.Minute)}
		}, []string{audit.AnomalyCrossZone}},
		{"partner-to-partner", func() []audit.Event {
			return []audit.Event{call(acme, erp, "", "allow", 0), call(acme, globex, "", "allow", time.Second)}
		}, []string{audit.AnomalyPartnerToPartner}},
		{"rate-spike", func() (evs []audit.Event) {
			for i := 0; i < 20; i++ { // 20 calls in the first minute
				evs = append(evs, call(proc, erp, "plant-1", "allow", time.Duration(i)*time.Second))
			}
			for i := 0; i < 150; i++ { // 150 in the next
				evs = append(evs, call(proc, erp, "plant-1", "allow", time.Minute+time.Duration(i)*100*time.Millisecond))
			}
			return
		}, []string{audit.AnomalyRateSpike}},
		{"steady-high-rate-is-quiet", func() (evs []audit.Event) {
			for m := 0; m < 3; m++ {
				for i := 0; i < 150; i++ {
					evs = append(evs, call(proc, erp, "plant-1", "allow", time.Duration(m)*time.Minute+time.Duration(i)*100*time.Millisecond))
				}
			}
			return
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			d := audit.NewDetector(audit.DetectorConfig{HomeTrustDomain: "example.org",
				ZoneOf: func(id string) string { return zones[id] },
				Emit: func(ev audit.Event) {
					if err := ev.Validate(); err != nil {
						t.Fatalf("emitted invalid event: %v", err)
					}
					got = append(got, ev.Reason)
				}})
			for _, ev := range tc.events() {
				d.Observe(ev)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("emitted %v, want %v", got, tc.want)
			}
		})
	}
}
