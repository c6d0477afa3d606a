package attest_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/attest"
)

var update = flag.Bool("update", false, "rewrite testdata/ from the simulator")

// fixture is testdata/affirming.json: genuine simulator evidence with the reference values
// and enrolled AK it is affirming against.
type fixture struct {
	Evidence json.RawMessage        `json:"evidence"`
	Refs     attest.ReferenceValues `json:"refs"`
}

func fixturePath() string { return filepath.Join("testdata", "affirming.json") }

// TestTestdataFixture rewrites (with -update) and checks the committed fixture.
func TestTestdataFixture(t *testing.T) {
	if *update {
		r := newRig(t, 40)
		_, ev := r.evidence()
		b, _ := json.MarshalIndent(fixture{Evidence: ev, Refs: r.refs}, "", "  ")
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(fixturePath(), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fx, ev := loadFixture(t)
	res := appraiseFixture(fx, ev, fx.Evidence)
	wantReason(t, res, attest.ReasonNone)
}

func loadFixture(t testing.TB) (fixture, *attest.Evidence) {
	b, err := os.ReadFile(fixturePath())
	if err != nil {
		t.Fatal(err)
	}
	var fx fixture
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	ev, err := attest.ParseEvidence(fx.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	return fx, ev
}

var fixtureVerifier = attest.NewVerifier(attest.Config{MaxEvidenceAge: time.Minute})

func appraiseFixture(fx fixture, ev *attest.Evidence, raw []byte) attest.Result {
	now := time.Now()
	return fixtureVerifier.Appraise(attest.Request{Evidence: raw, Refs: fx.Refs, Nonce: ev.Nonce,
		IssuedAt: now, EnrolledAK: ev.AKPublic, Now: now})
}

// FuzzParseEvidence: the evidence parser takes untrusted bytes; it must not panic, and
// what it accepts must re-encode and parse again.
func FuzzParseEvidence(f *testing.F) {
	fx, _ := loadFixture(f)
	f.Add([]byte(fx.Evidence))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"pcrs":{"23":"AAAA"},"event_log":[{"kind":"binary","digest":"sha256:00"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := attest.ParseEvidence(b)
		if err != nil {
			return
		}
		again, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := attest.ParseEvidence(again); err != nil {
			t.Fatalf("accepted evidence does not round-trip: %v", err)
		}
	})
}

// FuzzAppraise: appraisal of arbitrary bytes never panics, and an affirming result only
// comes from evidence that parses and whose binary is approved.
func FuzzAppraise(f *testing.F) {
	fx, ev := loadFixture(f)
	f.Add([]byte(fx.Evidence))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		res := appraiseFixture(fx, ev, b)
		if !res.Affirming() {
			if res.Reason == attest.ReasonNone {
				t.Fatalf("non-affirming result without reason: %+v", res)
			}
			return
		}
		got, err := attest.ParseEvidence(b)
		if err != nil {
			t.Fatalf("affirmed unparsable evidence: %v", err)
		}
		for _, e := range got.EventLog {
			if e.Kind == attest.KindBinary && e.Digest != fx.Refs.Binaries[0] {
				t.Fatalf("affirmed unapproved binary %s", e.Digest)
			}
		}
	})
}

// FuzzParseStatement: provenance payloads are attacker-controlled until verified.
func FuzzParseStatement(f *testing.F) {
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"00"}}],"predicateType":"x"}`))
	f.Add([]byte(`{"_type":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := attest.ParseStatement(b)
		if err == nil && (st.Type != attest.StatementTypeV1 || len(st.Subject) == 0) {
			t.Fatalf("accepted %+v", st)
		}
		st.HasSubjectDigest("sha256:" + hexA)
	})
}
