package attest_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/attest"
)

// TestSimulatorEvidenceTampering edits genuine simulator evidence the way an attacker on
// the wire or on the host would, and checks each edit is refused with its own reason.
func TestSimulatorEvidenceTampering(t *testing.T) {
	r := newRig(t, 20)
	res, ak := r.enroll()
	wantReason(t, res, attest.ReasonNone)

	other := newRig(t, 21) // a second TPM, for a foreign AK and quote
	otherCh, otherEv := other.evidence()
	other.att.Close()
	foreign, err := attest.ParseEvidence(otherEv)
	if err != nil {
		t.Fatal(err)
	}
	tamperedDigest := "sha256:" + "ab" + r.refs.Binaries[0][9:]

	tests := []struct {
		name   string
		mutate func(ev *attest.Evidence, ch *attest.Challenge)
		want   attest.Reason
	}{
		{"untouched", func(*attest.Evidence, *attest.Challenge) {}, attest.ReasonNone},
		{"quote-from-foreign-ak-claiming-enrolled-ak", func(ev *attest.Evidence, _ *attest.Challenge) {
			ev.Quote, ev.QuoteSignature = foreign.Quote, foreign.QuoteSignature
		}, attest.ReasonWrongAK},
		{"foreign-ak", func(ev *attest.Evidence, _ *attest.Challenge) {
			ev.AKPublic, ev.Quote, ev.QuoteSignature = foreign.AKPublic, foreign.Quote, foreign.QuoteSignature
		}, attest.ReasonWrongAK},
		{"nonce-field-swapped-quote-has-old-nonce", func(ev *attest.Evidence, ch *attest.Challenge) {
			ev.Nonce = otherCh.Nonce
			ch.Nonce = otherCh.Nonce
		}, attest.ReasonQuoteReplay},
		{"event-log-rewritten-to-hide-binary", func(ev *attest.Evidence, _ *attest.Challenge) {
			ev.EventLog[0].Digest = tamperedDigest
		}, attest.ReasonPCRMismatch},
		{"event-dropped", func(ev *attest.Evidence, _ *attest.Challenge) {
			ev.EventLog = ev.EventLog[:1]
		}, attest.ReasonPCRMismatch},
		{"pcr-value-edited", func(ev *attest.Evidence, _ *attest.Challenge) {
			ev.PCRs[attest.MeasurementPCR] = make([]byte, 32)
		}, attest.ReasonPCRMismatch},
		{"provenance-missing", func(ev *attest.Evidence, _ *attest.Challenge) {
			ev.Provenance = nil
		}, attest.ReasonBadProvenance},
		{"provenance-signature-flipped", func(ev *attest.Evidence, _ *attest.Challenge) {
			p := *ev.Provenance
			p.Signatures = []attest.DSSESignature{{KeyID: p.Signatures[0].KeyID, Sig: append([]byte(nil), p.Signatures[0].Sig...)}}
			p.Signatures[0].Sig[0] ^= 1
			ev.Provenance = &p
		}, attest.ReasonBadProvenance},
		{"provenance-for-another-binary", func(ev *attest.Evidence, _ *attest.Challenge) {
			st, _ := attest.NewProvenance("procurement-agent", tamperedDigest, map[string]any{})
			ev.Provenance, _ = attest.SignStatement(r.buildKey, st)
		}, attest.ReasonBadProvenance},
		{"provenance-payload-type-changed", func(ev *attest.Evidence, _ *attest.Challenge) {
			p := *ev.Provenance
			p.PayloadType = "application/json"
			ev.Provenance = &p
		}, attest.ReasonBadProvenance},
		{"ak-public-made-unrestricted", func(ev *attest.Evidence, _ *attest.Challenge) {
			// TPMT_PUBLIC: type(2) nameAlg(2) objectAttributes(4); clear restricted (bit 16).
			ev.AKPublic = append([]byte(nil), ev.AKPublic...)
			ev.AKPublic[5] &^= 0x01
		}, attest.ReasonUnsafeAK},
		{"version-2", func(ev *attest.Evidence, _ *attest.Challenge) { ev.Version = 2 }, attest.ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch, raw := r.evidence()
			ev, err := attest.ParseEvidence(raw)
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(ev, &ch)
			b, _ := json.Marshal(ev)
			res := r.v.Appraise(attest.Request{Evidence: b, Refs: r.refs, Nonce: ch.Nonce,
				IssuedAt: ch.IssuedAt, EnrolledAK: ak, Now: r.now})
			wantReason(t, res, tc.want)
		})
	}
}

func TestAppraiseFailsClosed(t *testing.T) {
	r := newRig(t, 22)
	_, ak := r.enroll()
	ch, ev := r.evidence()
	base := attest.Request{Evidence: ev, Refs: r.refs, Nonce: ch.Nonce, IssuedAt: ch.IssuedAt, EnrolledAK: ak, Now: r.now}
	tests := []struct {
		name string
		edit func(q *attest.Request)
		want attest.Reason
	}{
		{"no-reference-values", func(q *attest.Request) { q.Refs = attest.ReferenceValues{} }, attest.ReasonNoReferenceValues},
		{"not-json", func(q *attest.Request) { q.Evidence = []byte("{not json") }, attest.ReasonMalformed},
		{"trailing-data", func(q *attest.Request) { q.Evidence = append(append([]byte(nil), ev...), []byte(" {}")...) }, attest.ReasonMalformed},
		{"unknown-field", func(q *attest.Request) { q.Evidence = append([]byte(`{"x":1,`), ev[1:]...) }, attest.ReasonMalformed},
		{"no-expected-nonce", func(q *attest.Request) { q.Nonce = nil }, attest.ReasonQuoteReplay},
		{"zero-issued-at", func(q *attest.Request) { q.IssuedAt = time.Time{} }, attest.ReasonStaleEvidence},
		{"issued-in-future", func(q *attest.Request) { q.IssuedAt = q.Now.Add(time.Hour) }, attest.ReasonStaleEvidence},
		{"pcr-not-approved", func(q *attest.Request) {
			q.Refs.PCRs = map[int][]string{23: {"sha256:" + r.refs.Binaries[0][7:]}}
		}, attest.ReasonPCRMismatch},
		{"config-required-but-unknown", func(q *attest.Request) {
			q.Refs.Configs = []string{r.refs.Binaries[0]}
		}, attest.ReasonUnapprovedConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := base
			q.Refs.Binaries = append([]string(nil), base.Refs.Binaries...)
			tc.edit(&q)
			wantReason(t, r.v.Appraise(q), tc.want)
		})
	}
}

// TestAttesterPersistentTPM: the same flow with the TPM kept open (how a real /dev/tpmrm0
// is used).
func TestAttesterPersistentTPM(t *testing.T) {
	r := newRig(t, 30)
	r.att.Close()
	att, err := attest.NewAttester(attest.AttesterConfig{Opener: simOpener(30), Sources: []attest.Source{
		{Kind: attest.KindBinary, Path: r.bin}, {Kind: attest.KindConfig, Path: r.cfg}}})
	if err != nil {
		t.Fatal(err)
	}
	r.att = att
	defer att.Close()
	r.refs.BuildSigners = nil // this attester ships no provenance
	res, ak := r.enroll()
	wantReason(t, res, attest.ReasonNone)
	wantReason(t, r.renew(ak), attest.ReasonNone)
	writeFile(t, r.bin, "replaced")
	wantReason(t, r.renew(ak), attest.ReasonTamperedBinary)
	if n := len(att.EventLog()); n != 3 {
		t.Fatalf("event log has %d events, want 3 (binary, config, new binary)", n)
	}
}
