package attest_test

import (
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/attest"
)

func TestEvaluateTrigger(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	cfg := attest.TriggerConfig{HigherClass: true, UncatalogedPath: true, DependencyChange: true,
		Denials: 3, DenialWindow: 10 * time.Second}
	tests := []struct {
		name string
		cfg  attest.TriggerConfig
		obs  []attest.Observation
		want []attest.TriggerRule // per observation
	}{
		{"first-action-sets-baseline-higher-fires-once", cfg, []attest.Observation{
			{Time: at(0), ActionClass: attest.ClassReadOnly},
			{Time: at(1), ActionClass: attest.ClassReadOnly},
			{Time: at(2), ActionClass: attest.ClassTransactional},
			{Time: at(3), ActionClass: attest.ClassTransactional},
			{Time: at(4), ActionClass: attest.ClassAdvisory},
			{Time: at(5), ActionClass: attest.ClassRegulated},
		}, []attest.TriggerRule{"", "", attest.TriggerHigherClass, "", "", attest.TriggerHigherClass}},
		{"first-action-above-agent-class", cfg, []attest.Observation{
			{Time: at(0), AgentClass: attest.ClassAdvisory, ActionClass: attest.ClassReadOnly},
			{Time: at(1), AgentClass: attest.ClassAdvisory, ActionClass: attest.ClassAdvisory},
			{Time: at(2), AgentClass: attest.ClassAdvisory, ActionClass: attest.ClassRegulated},
			{Time: at(3), AgentClass: attest.ClassAdvisory, ActionClass: attest.ClassRegulated},
		}, []attest.TriggerRule{"", "", attest.TriggerHigherClass, ""}},
		{"first-ever-action-above-agent-class", cfg, []attest.Observation{
			{Time: at(0), AgentClass: attest.ClassReadOnly, ActionClass: attest.ClassTransactional},
		}, []attest.TriggerRule{attest.TriggerHigherClass}},
		{"uncataloged-path", cfg, []attest.Observation{
			{Time: at(0), Path: "/a2a", InCatalog: true},
			{Time: at(1), Path: "/admin/export", InCatalog: false},
		}, []attest.TriggerRule{"", attest.TriggerUncatalogedPath}},
		{"dependency-change", cfg, []attest.Observation{
			{Time: at(0), DependencyDigest: "sha256:aa"},
			{Time: at(1), DependencyDigest: "sha256:aa"},
			{Time: at(2), DependencyDigest: "sha256:bb"},
		}, []attest.TriggerRule{"", "", attest.TriggerDependencyChange}},
		{"three-denials-in-ten-seconds", cfg, []attest.Observation{
			{Time: at(0), Denied: true},
			{Time: at(5), Denied: true},
			{Time: at(11), Denied: true}, // the first fell out of the window
			{Time: at(12), Denied: true},
		}, []attest.TriggerRule{"", "", "", attest.TriggerDenials}},
		{"rules-off", attest.TriggerConfig{}, []attest.Observation{
			{Time: at(0), ActionClass: attest.ClassReadOnly, DependencyDigest: "sha256:aa"},
			{Time: at(1), ActionClass: attest.ClassRegulated, Path: "/x", DependencyDigest: "sha256:bb", Denied: true},
		}, []attest.TriggerRule{"", ""}},
		{"cooldown", attest.TriggerConfig{UncatalogedPath: true, Cooldown: 30 * time.Second}, []attest.Observation{
			{Time: at(0), Path: "/x"},
			{Time: at(10), Path: "/y"},
			{Time: at(31), Path: "/z"},
		}, []attest.TriggerRule{attest.TriggerUncatalogedPath, "", attest.TriggerUncatalogedPath}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s attest.TriggerState
			for i, o := range tc.obs {
				before := s
				var got attest.TriggerRule
				s, got = attest.EvaluateTrigger(tc.cfg, s, o)
				if got != tc.want[i] {
					t.Fatalf("observation %d: fired %q, want %q (state %+v)", i, got, tc.want[i], before)
				}
			}
		})
	}
}
