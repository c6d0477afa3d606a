package attest_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/attest"
)

func TestPolicyClassTable(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	good := attest.Result{Tier: attest.TierAffirming, Time: now.Add(-time.Minute),
		TrustVector: attest.TrustVector{InstanceIdentity: 2, Executables: 2}}
	tampered := attest.Result{Tier: attest.TierContraindicated, Reason: attest.ReasonTamperedBinary, Time: now}
	stale := good
	stale.Time = now.Add(-time.Hour)
	noReason := attest.Result{Tier: attest.TierWarning, Time: now}
	p := attest.DefaultPolicy()
	tests := []struct {
		name        string
		r           attest.Result
		class, role string
		want        attest.Action
		wantReason  attest.Reason
		wantRule    string
	}{
		{"affirming-regulated-allowed", good, attest.ClassRegulated, "", attest.ActionAllow, "", "affirming"},
		{"read-only-tampered-quarantined", tampered, attest.ClassReadOnly, "catalog", attest.ActionQuarantine, attest.ReasonTamperedBinary, "class:read-only"},
		{"advisory-tampered-quarantined", tampered, attest.ClassAdvisory, "", attest.ActionQuarantine, attest.ReasonTamperedBinary, "class:advisory"},
		{"transactional-tampered-review", tampered, attest.ClassTransactional, "procurement", attest.ActionReview, attest.ReasonTamperedBinary, "class:transactional"},
		{"regulated-tampered-suspended", tampered, attest.ClassRegulated, "compliance", attest.ActionSuspend, attest.ReasonTamperedBinary, "class:regulated"},
		{"payments-role-suspended", tampered, attest.ClassTransactional, "payments", attest.ActionSuspend, attest.ReasonTamperedBinary, "role:payments"},
		{"transactional-stale-affirming-review", stale, attest.ClassTransactional, "", attest.ActionReview, attest.ReasonStaleEvidence, "class:transactional"},
		{"read-only-stale-quarantined", stale, attest.ClassReadOnly, "", attest.ActionQuarantine, attest.ReasonStaleEvidence, "class:read-only"},
		{"unknown-class-suspended", tampered, "gold", "", attest.ActionSuspend, attest.ReasonTamperedBinary, "unknown-class"},
		{"affirming-empty-class-allowed", good, "", "", attest.ActionAllow, "", "affirming"},
		{"none-tier-no-evidence-quarantined", attest.Result{Tier: attest.TierNone, Reason: attest.ReasonStaleEvidence, Time: now}, attest.ClassReadOnly, "", attest.ActionQuarantine, attest.ReasonStaleEvidence, "class:read-only"},
		{"non-affirming-without-reason-fails-closed", noReason, attest.ClassReadOnly, "", attest.ActionQuarantine, attest.ReasonVerifierError, "class:read-only"},
		{"zero-result-fails-closed", attest.Result{}, attest.ClassRegulated, "", attest.ActionSuspend, attest.ReasonVerifierError, "class:regulated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(tc.r, tc.class, tc.role, now)
			if d.Action != tc.want || d.Reason != tc.wantReason || d.Rule != tc.wantRule {
				t.Fatalf("Decide = %+v, want %s/%s/%s", d, tc.want, tc.wantReason, tc.wantRule)
			}
		})
	}
}

// TestPolicyRoleCannotWeaken: a role rule milder than its class rule is ignored.
func TestPolicyRoleCannotWeaken(t *testing.T) {
	p := attest.DefaultPolicy()
	p.Roles["lenient"] = attest.ActionQuarantine
	d := p.Decide(attest.Result{Tier: attest.TierWarning, Reason: attest.ReasonPCRMismatch}, attest.ClassRegulated, "lenient", time.Now())
	if d.Action != attest.ActionSuspend {
		t.Fatalf("role weakened the class rule: %+v", d)
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := attest.DefaultPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []attest.Policy{
		{Classes: map[string]attest.Action{"read-only": attest.ActionAllow}},
		{Classes: map[string]attest.Action{"read-only": "ignore"}},
		{Roles: map[string]attest.Action{"x": ""}},
	} {
		if bad.Validate() == nil {
			t.Fatalf("accepted %+v", bad)
		}
	}
}

func TestTrustVectorTier(t *testing.T) {
	tests := []struct {
		v    attest.TrustVector
		want attest.Tier
	}{
		{attest.TrustVector{}, attest.TierNone},
		{attest.TrustVector{InstanceIdentity: 2, Executables: 2}, attest.TierAffirming},
		{attest.TrustVector{InstanceIdentity: 2, Executables: 33}, attest.TierWarning},
		{attest.TrustVector{InstanceIdentity: 99, Executables: 2}, attest.TierContraindicated},
		{attest.TrustVector{InstanceIdentity: 1}, attest.TierNone},
		{attest.TrustVector{Hardware: -2}, attest.TierAffirming},
		{attest.TrustVector{Hardware: -128}, attest.TierContraindicated},
	}
	for _, tc := range tests {
		if got := tc.v.Tier(); got != tc.want {
			t.Errorf("%+v: tier %s, want %s", tc.v, got, tc.want)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	p, err := attest.ParsePolicy([]byte("classes:\n  read-only: quarantine\n  regulated: suspend\nroles:\n  payment-release: suspend\nmax_result_age: 5m\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxResultAge != 5*time.Minute || p.Unknown != attest.ActionSuspend || p.Classes["read-only"] != attest.ActionQuarantine {
		t.Fatalf("parsed %+v", p)
	}
	for _, bad := range []string{"classes: {read-only: allow}\n", "klasses: {}\n", "classes: {read-only: ignore}\n"} {
		if _, err := attest.ParsePolicy([]byte(bad)); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
}

// TestRefusedIsNeverAffirming: every reason code, built outside Appraise, is non-affirming
// and goes to the class action.
func TestRefusedIsNeverAffirming(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, reason := range []attest.Reason{attest.ReasonNone, attest.ReasonMalformed, attest.ReasonQuoteReplay,
		attest.ReasonStaleEvidence, attest.ReasonAKNotInEKTPM, attest.ReasonWrongAK, attest.ReasonUnsafeAK,
		attest.ReasonUnknownEK, attest.ReasonPCRMismatch, attest.ReasonMissingMeasurement,
		attest.ReasonTamperedBinary, attest.ReasonUnapprovedConfig, attest.ReasonUnknownBuildSigner,
		attest.ReasonBadProvenance, attest.ReasonNoReferenceValues, attest.ReasonVerifierError} {
		r := attest.Refused(reason, []byte("{}"), now, "")
		if r.Affirming() || r.Tier == attest.TierAffirming || r.Reason == attest.ReasonNone {
			t.Errorf("%q: %+v", reason, r)
		}
		if d := attest.DefaultPolicy().Decide(r, attest.ClassTransactional, "", now); d.Action != attest.ActionReview {
			t.Errorf("%q: %+v", reason, d)
		}
	}
}

// TestResultJSON: the shape the trust state and audit events carry, and its round trip.
func TestResultJSON(t *testing.T) {
	r := attest.Result{Tier: attest.TierContraindicated, Reason: attest.ReasonTamperedBinary,
		TrustVector:    attest.TrustVector{InstanceIdentity: 2, Executables: 96},
		EvidenceDigest: "sha256:" + hexA, Time: time.Date(2026, 11, 27, 3, 0, 0, 0, time.FixedZone("x", 3600))}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"tier":"contraindicated","reason":"tampered_binary","trust_vector":{"instance-identity":2,"configuration":0,"executables":96,"file-system":0,"hardware":0,"runtime-opaque":0,"storage-opaque":0,"sourced-data":0},"evidence_digest":"sha256:` + hexA + `","time":"2026-11-27T02:00:00Z"}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	var back attest.Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Tier != r.Tier || back.TrustVector != r.TrustVector || !back.Time.Equal(r.Time) {
		t.Fatalf("round trip %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"tier":"great"}`), &back); err == nil {
		t.Fatal("unknown tier accepted")
	}
}
