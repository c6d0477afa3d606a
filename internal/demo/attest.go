package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// challengeTimeout is how long a demo agent has to answer a pushed challenge.
const challengeTimeout = 2 * time.Second

// attestSteps are the rows of the attestation layer (issue 6). Every agent enrolled with
// TPM evidence in enrolAll; these steps change binaries, replay quotes and swap TPMs, and
// check the outcome in the trust state as a gate would see it.
var attestSteps = []func(context.Context, *env){
	enrolWithoutEvidence,
	periodicReattestation,
	staleQuote,
	ekCertGenuine,
	ekCertOtherVendor,
	foreignTPM,
	tamperedEventDriven,
	tamperedPeriodic,
	unansweredChallenge,
}

// agentTPM writes the agent's "binary" (a stand-in build artefact), opens its simulated
// TPM (seed: its identity) and returns the entry attributes approving that binary.
func (e *env) agentTPM(name string, seed int64) (*attest.Attester, []byte, error) {
	bin := filepath.Join(e.cfg.DataDir, "agents", name, "bin", name)
	if err := os.MkdirAll(filepath.Dir(bin), 0o700); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(bin, []byte("#!/supplychain/"+name+" build 2026.11.1\n"), 0o755); err != nil {
		return nil, nil, err
	}
	d, err := attest.FileDigest(bin)
	if err != nil {
		return nil, nil, err
	}
	attrs, err := attest.AttrsWithRefs(nil, attest.ReferenceValues{Binaries: []string{d}})
	if err != nil {
		return nil, nil, err
	}
	tpm, err := sdk.OpenTPM(sdk.TPMConfig{TPM: "sim", SimSeed: seed, Binary: bin})
	if err != nil {
		return nil, nil, fmt.Errorf("TPM simulator: %w", err)
	}
	e.tpms[name], e.bins[name], e.seeds[name] = tpm, bin, seed
	return tpm, attrs, nil
}

func (e *env) closeTPMs() {
	for _, t := range e.tpms {
		t.Close()
	}
}

// attestOutcome is outcome; an attestation refusal reads "attestation_failed: <attest
// reason>: <detail>".
func attestOutcome(err error) (observed, reason, decisionID string) { return outcome(err) }

func enrolWithoutEvidence(ctx context.Context, e *env) {
	s := Step{Name: "enrol a transactional agent without TPM evidence", Kind: "attack", Expected: "deny"}
	err := func() error {
		if _, err := e.admin.CreateEntry(ctx, api.Entry{Name: "procurement-shadow", Role: "procurement", Class: "transactional", Zone: "cloud"}); err != nil {
			return err
		}
		tok, err := e.admin.CreateToken(ctx, "procurement-shadow", time.Minute)
		if err != nil {
			return err
		}
		_, _, err = sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: e.srv.URL(), Token: tok.Token})
		return err
	}()
	s.Observed, s.Reason, s.DecisionID = attestOutcome(err)
	e.record(s)
}

func periodicReattestation(ctx context.Context, e *env) {
	s := Step{Name: "procurement renews with a fresh quote (periodic re-attestation)", Kind: "workflow", Expected: "allow"}
	err := e.agents["procurement"].Renew(ctx)
	s.Observed, s.Reason, s.DecisionID = attestOutcome(err)
	if err == nil {
		at := e.doc().Attestations[e.id("procurement")]
		s.Reason = fmt.Sprintf("trust state: tier %s, evidence %.20s..., result %s", at.Tier, at.EvidenceDigest, at.ResultID)
	}
	e.record(s)
}

// replayer sends, once armed, the evidence it recorded last instead of quoting the new
// nonce: an attacker replaying a captured quote.
type replayer struct {
	sdk.Attester
	mu    sync.Mutex
	last  *attest.Evidence
	armed bool
}

func (r *replayer) Evidence(ctx context.Context, nonce []byte) (*attest.Evidence, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.armed && r.last != nil {
		return r.last, nil
	}
	ev, err := r.Attester.Evidence(ctx, nonce)
	r.last = ev
	return ev, err
}

func (e *env) sourceWith(name string, att sdk.Attester) (*sdk.Source, error) {
	cur := e.agents[name]
	sv, _ := cur.GetX509SVID()
	b, _ := cur.GetX509BundleForTrustDomain(e.td)
	return sdk.NewSource(sdk.SourceConfig{ServerURL: e.srv.URL(), SVID: sv, Bundle: b, Attester: att})
}

func staleQuote(ctx context.Context, e *env) {
	s := Step{Name: "renew procurement with its earlier quote (old nonce)", Kind: "attack", Expected: "deny"}
	rp := &replayer{Attester: e.tpms["procurement"]}
	src, err := e.sourceWith("procurement", rp)
	if err == nil {
		err = src.Renew(ctx) // genuine: the quote is captured
		if err == nil {
			rp.armed = true
			err = src.Renew(ctx)
			if err == nil {
				err = errors.New("a replayed quote was accepted")
			}
		}
		src.HTTPClient().CloseIdleConnections()
	}
	s.Observed, s.Reason, s.DecisionID = attestOutcome(err)
	e.record(s)
}

func foreignTPM(ctx context.Context, e *env) {
	s := Step{Name: "renew vendor-portal with a quote from another TPM", Kind: "attack", Expected: "deny"}
	err := func() error {
		bin := e.bins["vendor-portal"]
		other, err := sdk.OpenTPM(sdk.TPMConfig{TPM: "sim", SimSeed: 9999, Binary: bin}) // same approved binary, other TPM
		if err != nil {
			return err
		}
		defer other.Close()
		src, err := e.sourceWith("vendor-portal", other)
		if err != nil {
			return err
		}
		defer src.HTTPClient().CloseIdleConnections()
		return src.Renew(ctx)
	}()
	s.Observed, s.Reason, s.DecisionID = attestOutcome(err)
	e.record(s)
}

// tamperedEventDriven: logistics runs (its Source follows the trust state); its binary is
// replaced; the operator pushes a challenge; logistics re-attests at once and is caught.
func tamperedEventDriven(ctx context.Context, e *env) {
	s := Step{Name: "logistics' binary replaced after start, caught by a pushed challenge", Kind: "attack", Expected: "deny"}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = e.agents["logistics"].Run(rctx) }()
	defer func() { cancel(); wg.Wait() }()
	id := e.id("logistics")
	time.Sleep(300 * time.Millisecond) // logistics' trust-state stream is open
	err := os.WriteFile(e.bins["logistics"], []byte("#!/supplychain/logistics build 2026.11.1 + implant\n"), 0o755)
	var seen time.Duration
	var doc *truststate.Document
	if err == nil {
		seen, doc, err = e.changeAndWatch(ctx, func() error {
			_, err := e.admin.Challenge(ctx, id, "admin")
			return err
		}, func(d *truststate.Document) bool { return d.Attestations[id].Reason != "" })
	}
	e.recordCaught(s, id, seen, doc, err)
}

// tamperedPeriodic: compliance's (regulated) and a read-only agent's binaries change; the
// next periodic renewal is refused and the class's action is in the trust state.
func tamperedPeriodic(ctx context.Context, e *env) {
	cases := []struct{ name, class, role string }{{"compliance", "regulated", "compliance"}, {"catalog", "read-only", "catalog"}}
	for _, c := range cases {
		s := Step{Name: c.name + " (" + c.class + ") binary replaced, caught at the next renewal", Kind: "attack", Expected: "deny"}
		if _, ok := e.agents[c.name]; !ok { // enrol the extra read-only agent first
			if err := e.enrolExtra(ctx, c.name, c.role, c.class, 3000); err != nil {
				s.Observed, s.Reason, _ = outcome(err)
				e.record(s)
				continue
			}
		}
		id := e.id(c.name)
		err := os.WriteFile(e.bins[c.name], []byte("#!/supplychain/"+c.name+" patched\n"), 0o755)
		var seen time.Duration
		var doc *truststate.Document
		var renewErr error
		if err == nil {
			seen, doc, err = e.changeAndWatch(ctx, func() error {
				renewErr = e.agents[c.name].Renew(ctx)
				if renewErr == nil {
					return errors.New("renewal with a tampered binary was accepted")
				}
				return nil
			}, func(d *truststate.Document) bool { return d.Attestations[id].Reason != "" })
		}
		if err == nil {
			_, s.Reason, s.DecisionID = attestOutcome(renewErr)
		}
		e.recordCaught(s, id, seen, doc, err)
	}
}

// unansweredChallenge: payment-release is challenged but does not answer (its Source is
// not running); at the deadline the control plane records stale_evidence and suspends it.
func unansweredChallenge(ctx context.Context, e *env) {
	s := Step{Name: "payment-release ignores a pushed challenge", Kind: "attack", Expected: "deny"}
	id := e.id("payment-release")
	seen, doc, err := e.changeAndWatch(ctx, func() error {
		_, err := e.admin.Challenge(ctx, id, "admin")
		return err
	}, func(d *truststate.Document) bool { return d.Attestations[id].Reason != "" })
	e.recordCaught(s, id, seen, doc, err)
}

func (e *env) enrolExtra(ctx context.Context, name, role, class string, seed int64) error {
	tpm, attrs, err := e.agentTPM(name, seed)
	if err != nil {
		return err
	}
	if _, err := e.admin.CreateEntry(ctx, api.Entry{Name: name, Role: role, Class: class, Zone: "cloud", Attrs: attrs}); err != nil {
		return err
	}
	tok, err := e.admin.CreateToken(ctx, name, time.Minute)
	if err != nil {
		return err
	}
	sv, b, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: e.srv.URL(), Token: tok.Token, Attester: tpm})
	if err != nil {
		return err
	}
	src, err := sdk.NewSource(sdk.SourceConfig{ServerURL: e.srv.URL(), SVID: sv, Bundle: b, Attester: tpm})
	e.agents[name] = src
	return err
}

// recordCaught records a tampering row: deny when the trust state carries a
// non-affirming result and the class's status.
func (e *env) recordCaught(s Step, id string, seen time.Duration, doc *truststate.Document, err error) {
	switch {
	case err != nil:
		s.Observed, s.Reason, s.DecisionID = attestOutcome(err)
	case doc.Attestations[id].Action == "allow" || doc.Status(id) == "active":
		s.Observed, s.Reason = "allow", fmt.Sprintf("trust state: %+v, status %s", doc.Attestations[id], doc.Status(id))
	default:
		at := doc.Attestations[id]
		suffix := ""
		if s.Reason != "" {
			suffix = "; renewal refused: " + s.Reason
		}
		s.Observed = "deny"
		s.Reason = fmt.Sprintf("%s -> %s: trust state v%d (tier %s, result %s) seen by a follower %s after the trigger%s",
			at.Reason, doc.Status(id), doc.Version, at.Tier, at.ResultID, seen.Round(time.Millisecond), suffix)
	}
	e.record(s)
}

// changeAndWatch follows the trust state as a gate does (verified, pushed), runs act,
// and returns how long until a document satisfying done arrived.
func (e *env) changeAndWatch(ctx context.Context, act func() error, done func(*truststate.Document) bool) (time.Duration, *truststate.Document, error) {
	watcher := e.agents["procurement"]
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	f := truststate.NewFollower(truststate.FollowerConfig{URL: e.srv.URL(), Client: watcher.HTTPClient(), Bundle: watcher, TrustDomain: e.td})
	updates := make(chan *truststate.Document, 64)
	go func() {
		_ = f.Run(ctx, func(d *truststate.Document) {
			select {
			case updates <- d:
			case <-ctx.Done():
			}
		})
	}()
	var base int64
	select {
	case d := <-updates:
		base = d.Version
	case <-ctx.Done():
		return 0, nil, errors.New("no trust state from the stream")
	}
	start := time.Now()
	if err := act(); err != nil {
		return 0, nil, err
	}
	for {
		select {
		case d := <-updates:
			if d.Version > base && done(d) {
				return time.Since(start), d, nil
			}
		case <-ctx.Done():
			return 0, nil, errors.New("the trust state did not change within 10s")
		}
	}
}

func (e *env) id(name string) string { return spiffeid.RequireFromPath(e.td, "/agent/"+name).String() }

func (e *env) doc() *truststate.Document {
	_, d := e.srv.Trust().Current()
	return d
}
