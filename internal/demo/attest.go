package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// attestSteps are the rows of the attestation layer. Every agent enrolled with TPM
// evidence in enrolAll; these steps change binaries, replay quotes and swap TPMs, and
// check the outcome in the trust state as a gate would see it.
var attestSteps = []func(context.Context, *env){
	enrolWithoutEvidence,
	periodicReattestation,
	staleQuote,
	ekCertGenuine,
	ekCertOtherVendor,
	foreignTPM,
	tamperedEventDriven,
	reviewHold, // strict.go
	tamperedPeriodic,
	unansweredChallenge,
}

// enrolWithoutEvidence: `warden enroll` without --tpm for a transactional entry.
func enrolWithoutEvidence(ctx context.Context, e *env) {
	s := Step{Name: "enrol a transactional agent without TPM evidence", Kind: "attack", Expected: "deny"}
	r := e.Admin(ctx, "entry", "create", "--name", "procurement-shadow", "--role", "procurement", "--class", "transactional", "--zone", "cloud")
	s.Command = r.Command
	if r.Err != nil {
		s.Observed, s.Reason, _ = outcome(r.Err)
		e.record(s)
		return
	}
	tok, err := e.Token(ctx, "procurement-shadow")
	if err != nil {
		s.Observed, s.Reason, _ = outcome(err)
		e.record(s)
		return
	}
	r = e.Procs.Run(ctx, []string{"enroll", "--server", e.URL, "--out", filepath.Join(e.Dir, "agents", "procurement-shadow")}, "WARDEN_JOIN_TOKEN="+tok.Stdout)
	s.Command = commands(s.Command, "TOKEN=$("+tok.Command+")", "WARDEN_JOIN_TOKEN=$TOKEN "+r.Command)
	e.recordCLI(s, r)
}

// periodicReattestation: procurement's enroll --watch renews with a fresh quote over a
// fresh nonce (what it does at every half-life; the operator's challenge makes it now).
func periodicReattestation(ctx context.Context, e *env) {
	s := Step{Name: "procurement renews with a fresh quote (re-attestation by its enroll --watch)", Kind: "workflow", Expected: "allow"}
	_, _, cmd, err := e.renewNow(ctx, "procurement", "periodic re-attestation drill")
	s.Command = cmd
	s.Observed, s.Reason, s.DecisionID = outcome(err)
	if err == nil {
		doc, derr := e.TrustState(ctx)
		if derr != nil {
			s.Observed, s.Reason, _ = outcome(derr)
		} else {
			at := doc.Attestations[e.ID("procurement").String()]
			s.Reason = fmt.Sprintf("trust state: tier %s, evidence %.20s..., result %s", at.Tier, at.EvidenceDigest, at.ResultID)
			if at.Tier != "affirming" {
				s.Observed = "deny"
			}
		}
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

// renewWith renews name in process, from its current files, with att as its TPM.
func (e *env) renewWith(ctx context.Context, name string, att sdk.Attester) error {
	a, err := e.agent(name)
	if err != nil {
		return err
	}
	src, err := a.Source(e.URL, att)
	if err != nil {
		return err
	}
	defer src.HTTPClient().CloseIdleConnections()
	return src.Renew(ctx)
}

func staleQuote(ctx context.Context, e *env) {
	s := Step{Name: "renew procurement with its earlier quote (old nonce)", Kind: "attack", Expected: "deny",
		Command: "# in process: procurement's renewal with its own TPM, then again sending the quote captured from the first"}
	err := func() error {
		a, err := e.agent("procurement")
		if err != nil {
			return err
		}
		tpm, err := a.TPM()
		if err != nil {
			return err
		}
		defer tpm.Close()
		rp := &replayer{Attester: tpm}
		src, err := a.Source(e.URL, rp)
		if err != nil {
			return err
		}
		defer src.HTTPClient().CloseIdleConnections()
		if err := src.Renew(ctx); err != nil { // genuine: the quote is captured
			return err
		}
		rp.armed = true
		if err := src.Renew(ctx); err != nil {
			return err
		}
		return nil
	}()
	if err == nil {
		s.Observed, s.Reason = "allow", "a replayed quote was accepted"
	} else {
		s.Observed, s.Reason, s.DecisionID = outcome(err)
	}
	e.record(s)
}

func foreignTPM(ctx context.Context, e *env) {
	s := Step{Name: "renew vendor-portal with a quote from another TPM", Kind: "attack", Expected: "deny",
		Command: "# in process: vendor-portal's renewal quoted by another simulated TPM (seed 9999) measuring the same approved binary"}
	err := func() error {
		a, err := e.agent("vendor-portal")
		if err != nil {
			return err
		}
		other, err := sdk.OpenTPM(sdk.TPMConfig{TPM: "sim", SimSeed: 9999, Binary: a.Binary})
		if err != nil {
			return err
		}
		defer other.Close()
		return e.renewWith(ctx, "vendor-portal", other)
	}()
	e.recordRefusal(s, err)
}

// recordRefusal records an attack step whose attack is a call that should fail.
func (e *env) recordRefusal(s Step, err error) {
	if err == nil {
		s.Observed, s.Reason = "allow", "accepted"
	} else {
		s.Observed, s.Reason, s.DecisionID = outcome(err)
	}
	e.record(s)
}

// tamperedEventDriven: logistics runs (its enroll --watch follows the trust state); its
// binary is replaced; the operator pushes a challenge; its enroll --watch re-attests at
// once and is caught.
func tamperedEventDriven(ctx context.Context, e *env) {
	s := Step{Name: "logistics' binary replaced after start, caught by a pushed challenge", Kind: "attack", Expected: "deny"}
	a, err := e.agent("logistics")
	if err != nil {
		s.Observed, s.Reason, _ = outcome(err)
		e.record(s)
		return
	}
	id := a.ID.String()
	a.Watch.ExpectExit() // refused, its enroll --watch stops
	err = os.WriteFile(a.Binary, []byte("#!/supplychain/logistics build 2026.11.1 + implant\n"), 0o755)
	s.Command = "# the agent's executable " + e.show(a.Binary) + " is replaced"
	var seen time.Duration
	var doc *truststate.Document
	if err == nil {
		seen, doc, err = e.ChangeAndWatch(ctx, 30*time.Second, func() error {
			r := e.Admin(ctx, "attest", "challenge", "--id", id, "--reason", "admin")
			s.Command = commands(s.Command, r.Command)
			return r.Err
		}, func(d *truststate.Document) bool { return d.Attestations[id].Reason != "" })
	}
	e.recordCaught(s, id, seen, doc, err)
}

// tamperedPeriodic: compliance's (regulated) and a read-only agent's binaries change; the
// next periodic renewal is refused and the class's action is in the trust state.
func tamperedPeriodic(ctx context.Context, e *env) {
	cases := []AgentSpec{{Name: "compliance", Class: "regulated", Role: "compliance"}, {Name: "catalog", Class: "read-only", Role: "catalog", Zone: "cloud", TPMSeed: 3000}}
	for _, c := range cases {
		s := Step{Name: c.Name + " (" + c.Class + ") binary replaced, caught at the next renewal", Kind: "attack", Expected: "deny"}
		a := e.agents[c.Name]
		if a == nil { // enrol the extra read-only agent first
			var err error
			if a, err = e.Enrol(ctx, c); err != nil {
				s.Observed, s.Reason, _ = outcome(err)
				e.record(s)
				continue
			}
			e.agents[c.Name] = a
			s.Command = commands(a.Commands...)
		}
		id := a.ID.String()
		a.Watch.ExpectExit()
		err := os.WriteFile(a.Binary, []byte("#!/supplychain/"+c.Name+" patched\n"), 0o755)
		s.Command = commands(s.Command, "# the agent's executable "+e.show(a.Binary)+" is replaced",
			"# in process: the renewal its enroll --watch makes at half-life, made now (sdk.Source.Renew with a fresh quote)")
		var seen time.Duration
		var doc *truststate.Document
		var renewErr error
		if err == nil {
			seen, doc, err = e.ChangeAndWatch(ctx, 30*time.Second, func() error {
				if renewErr = e.Renew(ctx, a); renewErr == nil {
					return errors.New("renewal with a tampered binary was accepted")
				}
				return nil
			}, func(d *truststate.Document) bool { return d.Attestations[id].Reason != "" })
		}
		if err == nil {
			_, s.Reason, s.DecisionID = outcome(renewErr)
		}
		e.recordCaught(s, id, seen, doc, err)
	}
}

// unansweredChallenge: payment-release is challenged but does not answer (its enroll
// --watch is stopped); at the deadline the control plane records stale_evidence and
// suspends it.
func unansweredChallenge(ctx context.Context, e *env) {
	s := Step{Name: "payment-release ignores a pushed challenge", Kind: "attack", Expected: "deny"}
	a, err := e.agent("payment-release")
	if err != nil {
		s.Observed, s.Reason, _ = outcome(err)
		e.record(s)
		return
	}
	_ = a.Watch.Stop()
	s.Command = fmt.Sprintf("kill %d   # payment-release's enroll --watch: nobody will answer", a.Watch.Pid())
	id := a.ID.String()
	seen, doc, err := e.ChangeAndWatch(ctx, 30*time.Second, func() error {
		r := e.Admin(ctx, "attest", "challenge", "--id", id, "--reason", "admin")
		s.Command = commands(s.Command, r.Command)
		return r.Err
	}, func(d *truststate.Document) bool { return d.Attestations[id].Reason != "" })
	e.recordCaught(s, id, seen, doc, err)
}

// recordCaught records a tampering row: deny when the trust state carries a
// non-affirming result and the class's status.
func (e *env) recordCaught(s Step, id string, seen time.Duration, doc *truststate.Document, err error) {
	switch {
	case err != nil:
		s.Observed, s.Reason, s.DecisionID = outcome(err)
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
