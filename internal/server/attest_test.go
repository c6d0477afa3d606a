package server_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// attested is one agent with its own simulated TPM (seed) and measured binary.
type attested struct {
	name, class, role string
	bin               string
	tpm               *attest.Attester
	src               *sdk.Source
}

// attestedEntry registers name with reference values approving its current binary.
func (f *fixture) attestedEntry(t testing.TB, name, class, role string, seed int64) *attested {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, name)
	if err := os.WriteFile(bin, []byte("#!agent "+name+" build 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := attest.FileDigest(bin)
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := attest.AttrsWithRefs(nil, attest.ReferenceValues{Binaries: []string{d}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.CreateEntry(context.Background(), api.Entry{Name: name, Role: role, Class: class, Zone: "cloud", Attrs: attrs}); err != nil {
		t.Fatal(err)
	}
	tpm, err := sdk.OpenTPM(sdk.TPMConfig{TPM: "sim", SimSeed: seed, Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tpm.Close() })
	return &attested{name: name, class: class, role: role, bin: bin, tpm: tpm}
}

func (f *fixture) enrollAttested(t testing.TB, a *attested) error {
	t.Helper()
	svid, bundle, err := sdk.Enroll(context.Background(), sdk.EnrollConfig{ServerURL: f.url, Token: f.token(t, a.name, time.Minute), Attester: a.tpm})
	if err != nil {
		return err
	}
	a.src, err = sdk.NewSource(sdk.SourceConfig{ServerURL: f.url, SVID: svid, Bundle: bundle, Attester: a.tpm})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.src.HTTPClient().CloseIdleConnections)
	return nil
}

// trustDoc fetches and verifies the trust state as the agent sees it.
func trustDoc(t *testing.T, f *fixture, src *sdk.Source) *truststate.Document {
	t.Helper()
	res, err := src.HTTPClient().Get(f.url + api.PathTrustState)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	doc, err := truststate.Verify(b, src, td, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func attestOn() *server.AttestConfig { return &server.AttestConfig{} }

// TestEnrollmentWithoutEvidence: classes that require attestation are refused without
// evidence (attestation_failed / evidence_required); the others enrol with tier none.
func TestEnrollmentWithoutEvidence(t *testing.T) {
	f := start(t, options{att: attestOn()})
	for _, tc := range []struct {
		class  string
		refuse bool
	}{{"read-only", false}, {"advisory", false}, {"transactional", true}, {"regulated", true}} {
		t.Run(tc.class, func(t *testing.T) {
			name := "no-evidence-" + tc.class
			if _, err := f.admin.CreateEntry(context.Background(), api.Entry{Name: name, Role: "r", Class: tc.class, Zone: "cloud"}); err != nil {
				t.Fatal(err)
			}
			svid, bundle, err := sdk.Enroll(context.Background(), sdk.EnrollConfig{ServerURL: f.url, Token: f.token(t, name, time.Minute)})
			if tc.refuse {
				if sdk.Reason(err) != api.ReasonAttestation || sdk.AttestationReason(err) != string(attest.ReasonEvidenceRequired) {
					t.Fatalf("enrol %s without evidence: %v (%s/%s), want attestation_failed/evidence_required", tc.class, err, sdk.Reason(err), sdk.AttestationReason(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("enrol %s without evidence: %v", tc.class, err)
			}
			src, _ := sdk.NewSource(sdk.SourceConfig{ServerURL: f.url, SVID: svid, Bundle: bundle})
			defer src.HTTPClient().CloseIdleConnections()
			got := trustDoc(t, f, src).Attestations[svid.ID.String()]
			if got.Tier != "none" || got.Action != "allow" {
				t.Errorf("trust state attestation = %+v, want tier none, action allow", got)
			}
		})
	}
}

// TestAttestedLifecycle: enrolment with affirming evidence, renewal with fresh evidence,
// and the refusals: no evidence at renewal, a replayed (stale) quote, a quote from
// another TPM.
func TestAttestedLifecycle(t *testing.T) {
	f := start(t, options{att: attestOn()})
	ctx := context.Background()
	a := f.attestedEntry(t, "procurement", "transactional", "procurement", 11)
	if err := f.enrollAttested(t, a); err != nil {
		t.Fatalf("attested enrolment: %v", err)
	}
	sv := mustSVID(a.src)
	doc := trustDoc(t, f, a.src)
	if at := doc.Attestations[sv.ID.String()]; at.Tier != "affirming" || at.Action != "allow" || at.EvidenceDigest == "" {
		t.Fatalf("after enrolment: %+v", at)
	}
	if err := a.src.Renew(ctx); err != nil {
		t.Fatalf("renewal with fresh evidence: %v", err)
	}

	rec := &recorder{Attester: a.tpm}
	replaying, _ := sdk.NewSource(sdk.SourceConfig{ServerURL: f.url, SVID: mustSVID(a.src), Bundle: a.tpm2bundle(a.src), Attester: rec})
	defer replaying.HTTPClient().CloseIdleConnections()
	if err := replaying.Renew(ctx); err != nil { // records the evidence it sent
		t.Fatalf("renewal: %v", err)
	}
	rec.replay = true
	for i, tc := range []struct {
		defect string
		src    func() *sdk.Source
		want   attest.Reason
	}{
		{"stale quote (old nonce) replayed", func() *sdk.Source { return replaying }, attest.ReasonQuoteReplay},
		{"quote from another TPM", func() *sdk.Source {
			other, err := sdk.OpenTPM(sdk.TPMConfig{TPM: "sim", SimSeed: 12, Binary: a.bin})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { other.Close() })
			s, _ := sdk.NewSource(sdk.SourceConfig{ServerURL: f.url, SVID: mustSVID(a.src), Bundle: a.tpm2bundle(a.src), Attester: other})
			return s
		}, attest.ReasonWrongAK},
	} {

		err := tc.src().Renew(ctx)
		if sdk.Reason(err) != api.ReasonAttestation || sdk.AttestationReason(err) != string(tc.want) {
			t.Errorf("%s: %v, want attestation_failed/%s", tc.defect, err, tc.want)
		}
		// The refusal put the transactional agent under review: no renewal without
		// evidence; the hold ends with an operator's restore or an affirming quote.
		if st := trustDoc(t, f, a.src).Status(sv.ID.String()); st != truststate.StatusReview {
			t.Errorf("%s: status = %q, want review", tc.defect, st)
		}
		bare, _ := sdk.NewSource(sdk.SourceConfig{ServerURL: f.url, SVID: mustSVID(a.src), Bundle: a.tpm2bundle(a.src)})
		if err := bare.Renew(ctx); sdk.Reason(err) != api.ReasonIdentityReview {
			t.Errorf("%s: renewal under review without evidence: %v, want identity_under_review", tc.defect, err)
		}
		bare.HTTPClient().CloseIdleConnections()
		if i == 0 {
			if err := a.src.Renew(ctx); err != nil {
				t.Errorf("%s: renewal under review with an affirming quote: %v", tc.defect, err)
			}
			d := trustDoc(t, f, a.src)
			if st := d.Status(sv.ID.String()); st != "active" || d.Attestations[sv.ID.String()].Tier != "affirming" {
				t.Errorf("%s: after an affirming quote: status %q, attestation %+v", tc.defect, st, d.Attestations[sv.ID.String()])
			}
			continue
		}
		if _, err := f.admin.ChangeTrust(ctx, "restore", api.TrustChange{ID: sv.ID.String(), Reason: "checked"}); err != nil {
			t.Fatal(err)
		}
		if st := trustDoc(t, f, a.src).Status(sv.ID.String()); st != "active" {
			t.Errorf("%s: after restore: %q", tc.defect, st)
		}
	}
	bare, _ := sdk.NewSource(sdk.SourceConfig{ServerURL: f.url, SVID: mustSVID(a.src), Bundle: a.tpm2bundle(a.src)})
	defer bare.HTTPClient().CloseIdleConnections()
	if err := bare.Renew(ctx); sdk.AttestationReason(err) != string(attest.ReasonEvidenceRequired) {
		t.Errorf("renewal of an attested agent without evidence: %v, want evidence_required", err)
	}
}

func mustSVID(s *sdk.Source) *x509svid.SVID { sv, _ := s.GetX509SVID(); return sv }

func (a *attested) tpm2bundle(s *sdk.Source) *x509bundle.Bundle {
	b, _ := s.GetX509BundleForTrustDomain(td)
	return b
}

// recorder passes evidence through and, once replay is set, sends the last evidence
// again instead of quoting the new nonce.
type recorder struct {
	sdk.Attester
	mu     sync.Mutex
	last   *attest.Evidence
	replay bool
}

func (r *recorder) Evidence(ctx context.Context, nonce []byte) (*attest.Evidence, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.replay && r.last != nil {
		return r.last, nil
	}
	ev, err := r.Attester.Evidence(ctx, nonce)
	r.last = ev
	return ev, err
}

// TestClassOutcomeTamperedBinary: the binary changes after start; the next renewal is
// refused (tampered_binary) and the class's action is in the trust state.
func TestClassOutcomeTamperedBinary(t *testing.T) {
	f := start(t, options{att: attestOn()})
	for i, tc := range []struct {
		class, role, status string
	}{
		{"read-only", "catalog", truststate.StatusQuarantined},
		{"advisory", "forecasting", truststate.StatusQuarantined},
		{"transactional", "procurement", truststate.StatusReview},
		{"regulated", "compliance", truststate.StatusSuspended},
		{"transactional", "payments", truststate.StatusSuspended}, // role overrides class
	} {
		t.Run(tc.class+"/"+tc.role, func(t *testing.T) {
			a := f.attestedEntry(t, "tamper-"+tc.role, tc.class, tc.role, int64(100+i))
			if err := f.enrollAttested(t, a); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(a.bin, []byte("#!agent patched\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			err := a.src.Renew(context.Background())
			if sdk.AttestationReason(err) != string(attest.ReasonTamperedBinary) {
				t.Fatalf("renewal with a tampered binary: %v, want tampered_binary", err)
			}
			sv := mustSVID(a.src)
			doc := trustDoc(t, f, a.src)
			if st := doc.Status(sv.ID.String()); st != tc.status {
				t.Errorf("status = %q, want %q", st, tc.status)
			}
			at := doc.Attestations[sv.ID.String()]
			if at.Tier != "contraindicated" || at.Reason != "tampered_binary" || at.ResultID == "" {
				t.Errorf("attestation = %+v", at)
			}
		})
	}
}

// TestEventDrivenChallenge: a pushed challenge makes a running agent re-attest at once;
// a tampered binary is caught and handled as the class says. An agent that does not
// answer by the deadline gets stale_evidence.
func TestEventDrivenChallenge(t *testing.T) {
	f := start(t, options{att: &server.AttestConfig{ChallengeTimeout: time.Second}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := f.attestedEntry(t, "logistics", "transactional", "shipping", 21)
	if err := f.enrollAttested(t, a); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = a.src.Run(ctx) }()
	defer wg.Wait()
	defer cancel()
	id := mustSVID(a.src).ID.String()
	if err := os.WriteFile(a.bin, []byte("#!agent patched\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the source's trust-state stream is open
	if _, err := f.admin.Challenge(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, a.src, func(d *truststate.Document) bool {
		return d.Attestations[id].Reason == "tampered_binary" && d.Status(id) == truststate.StatusReview
	})

	silent := f.attestedEntry(t, "silent", "regulated", "compliance", 22)
	if err := f.enrollAttested(t, silent); err != nil {
		t.Fatal(err)
	}
	sid := mustSVID(silent.src).ID.String()
	if _, err := f.admin.Challenge(ctx, sid, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, silent.src, func(d *truststate.Document) bool {
		return d.Attestations[sid].Reason == "stale_evidence" && d.Status(sid) == truststate.StatusSuspended
	})
}

func waitFor(t *testing.T, f *fixture, src *sdk.Source, ok func(*truststate.Document) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := trustDoc(t, f, src)
		if ok(d) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("trust state never reached the expected state: attestations %+v agents %+v", d.Attestations, d.Agents)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestObserveTriggersChallenge: the trigger hook pushes a challenge into the trust state
// when a rule fires (here: 5 denials within the window), once per cooldown.
func TestObserveTriggersChallenge(t *testing.T) {
	f := start(t, options{att: attestOn()})
	a := f.attestedEntry(t, "noisy", "transactional", "procurement", 31)
	if err := f.enrollAttested(t, a); err != nil {
		t.Fatal(err)
	}
	id := mustSVID(a.src).ID.String()
	now := time.Now()
	var fired []attest.TriggerRule
	for i := 0; i < 6; i++ {
		rule, err := f.srv.Observe(context.Background(), id, attest.Observation{Time: now.Add(time.Duration(i) * time.Second), Denied: true})
		if err != nil {
			t.Fatal(err)
		}
		if rule != "" {
			fired = append(fired, rule)
		}
	}
	if len(fired) != 1 || fired[0] != attest.TriggerDenials {
		t.Fatalf("fired %v, want exactly one %s", fired, attest.TriggerDenials)
	}
	if c, ok := trustDoc(t, f, a.src).Challenges[id]; !ok || c.Rule != string(attest.TriggerDenials) {
		t.Fatalf("trust state challenge = %+v, %v", c, ok)
	}
}
