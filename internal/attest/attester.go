package attest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/tpmutil"
)

// Source is a file the attester measures: the agent binary, its config, its dependency
// manifest. It is hashed at NewAttester and again before every Evidence; a changed digest
// is extended into MeasurementPCR as a new event (a PCR can only grow, so the old and the
// new digest both stay in the log and the verifier sees the change).
type Source struct {
	Kind Kind
	Path string
}

// AttesterConfig configures an Attester.
type AttesterConfig struct {
	// Opener opens the TPM (DeviceOpener or tpmsim.Opener).
	Opener Opener
	// Reopen opens the TPM for each operation and closes it after. The go-tpm-tools
	// simulator allows one open instance per process, so several simulated agents in one
	// process (tests, `warden demo`) set Reopen; with a fixed seed per agent the EK and AK
	// are the same on every open and the event log is replayed into the fresh PCR.
	Reopen bool
	// Sources are measured in order at start.
	Sources []Source
	// Provenance is the DSSE envelope (in-toto Statement, subject the binary digest) that
	// shipped with the binary; carried in every Evidence.
	Provenance *Envelope
	// EKCert is the EK certificate (DER). Empty: read from the TPM's NV index for the
	// ECC P-256 EK certificate (0x01C0000A, TCG EK Credential Profile) when it has one.
	EKCert []byte
}

// ekCertNVIndex is where a TPM keeps its manufacturer's certificate of the ECC P-256 EK
// (TCG EK Credential Profile 2.0, §2.2.1.5).
const ekCertNVIndex = 0x01C0000A

// Attester is the RATS attester in the agent: it owns the EK and AK in the TPM, the
// measurement log of MeasurementPCR, and produces Evidence. Safe for concurrent use.
type Attester struct {
	cfg AttesterConfig

	mu       sync.Mutex
	rw       io.ReadWriteCloser // open TPM when !cfg.Reopen
	ak       tpmutil.Handle
	ekPub    []byte
	akPub    []byte
	log      []Event
	lastSeen map[int]string // source index -> last digest extended
	closed   bool
}

// NewAttester opens the TPM, creates the EK (TCG EK Credential Profile ECC P-256 template)
// and an AK (restricted ECDSA P-256 signing key) as primary objects in the endorsement
// hierarchy, resets MeasurementPCR and extends the sources' digests into it.
func NewAttester(cfg AttesterConfig) (*Attester, error) {
	if cfg.Opener == nil {
		return nil, errors.New("attest: AttesterConfig.Opener is nil")
	}
	a := &Attester{cfg: cfg, lastSeen: map[int]string{}}
	err := a.session(func(rw io.ReadWriter) error {
		ek, ekPub, err := createEK(rw)
		if err != nil {
			return err
		}
		defer tpm2.FlushContext(rw, ek)
		a.ekPub = ekPub
		if len(a.cfg.EKCert) == 0 {
			a.cfg.EKCert = readEKCert(rw) // none on a simulator or a TPM without one
		}
		return a.measureLocked(rw)
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// session runs fn with an open TPM whose AK is loaded (a.ak) and whose MeasurementPCR
// holds a.log. Caller holds no lock; session takes a.mu.
func (a *Attester) session(fn func(rw io.ReadWriter) error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errors.New("attest: attester closed")
	}
	if a.rw != nil {
		return fn(a.rw)
	}
	rw, err := a.cfg.Opener.OpenTPM()
	if err != nil {
		return err
	}
	ak, akPub, err := createAK(rw)
	if err != nil {
		rw.Close()
		return err
	}
	if a.akPub != nil && string(a.akPub) != string(akPub) {
		tpm2.FlushContext(rw, ak)
		rw.Close()
		return errors.New("attest: TPM returned a different AK than before (another TPM?)")
	}
	a.ak, a.akPub = ak, akPub
	if err := tpm2.PCRReset(rw, tpmutil.Handle(MeasurementPCR)); err != nil {
		tpm2.FlushContext(rw, ak)
		rw.Close()
		return fmt.Errorf("attest: reset PCR %d: %w", MeasurementPCR, err)
	}
	for _, e := range a.log {
		if err := extend(rw, e); err != nil {
			tpm2.FlushContext(rw, ak)
			rw.Close()
			return err
		}
	}
	if !a.cfg.Reopen {
		a.rw = rw
		return fn(rw)
	}
	defer func() {
		tpm2.FlushContext(rw, ak)
		rw.Close()
	}()
	return fn(rw)
}

func createEK(rw io.ReadWriter) (tpmutil.Handle, []byte, error) {
	h, pub, _, _, _, _, err := tpm2.CreatePrimaryEx(rw, tpm2.HandleEndorsement, tpm2.PCRSelection{}, "", "", ekTemplate())
	if err != nil {
		return 0, nil, fmt.Errorf("attest: create EK: %w", err)
	}
	return h, pub, nil
}

// readEKCert returns the EK certificate from the TPM's NV storage, without the padding
// some TPMs store after it, or nil when there is none or it is not one DER certificate.
func readEKCert(rw io.ReadWriter) []byte {
	raw, err := tpm2.NVReadEx(rw, tpmutil.Handle(ekCertNVIndex), tpm2.HandleOwner, "", 0)
	if err != nil || len(raw) == 0 {
		return nil
	}
	rest, err := asn1.Unmarshal(raw, &asn1.RawValue{})
	if err != nil {
		return nil
	}
	der := raw[:len(raw)-len(rest)]
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil
	}
	return der
}

func createAK(rw io.ReadWriter) (tpmutil.Handle, []byte, error) {
	h, pub, _, _, _, _, err := tpm2.CreatePrimaryEx(rw, tpm2.HandleEndorsement, tpm2.PCRSelection{}, "", "", akTemplate())
	if err != nil {
		return 0, nil, fmt.Errorf("attest: create AK: %w", err)
	}
	return h, pub, nil
}

func extend(rw io.ReadWriter, e Event) error {
	d, err := e.extendDigest()
	if err != nil {
		return err
	}
	if err := tpm2.PCRExtend(rw, tpmutil.Handle(MeasurementPCR), tpm2.AlgSHA256, d[:], ""); err != nil {
		return fmt.Errorf("attest: extend PCR %d: %w", MeasurementPCR, err)
	}
	return nil
}

// measureLocked hashes every source and extends those whose digest changed.
func (a *Attester) measureLocked(rw io.ReadWriter) error {
	for i, s := range a.cfg.Sources {
		d, err := FileDigest(s.Path)
		if err != nil {
			return err
		}
		if a.lastSeen[i] == d {
			continue
		}
		if err := a.extendLocked(rw, Event{Kind: s.Kind, Digest: d, Name: s.Path}); err != nil {
			return err
		}
		a.lastSeen[i] = d
	}
	return nil
}

func (a *Attester) extendLocked(rw io.ReadWriter, e Event) error {
	if err := extend(rw, e); err != nil {
		return err
	}
	a.log = append(a.log, e)
	return nil
}

// Extend measures one digest that is not a file (e.g. an image digest): kind and
// "sha256:<hex>" digest are extended into MeasurementPCR and appended to the log.
func (a *Attester) Extend(kind Kind, digest, name string) error {
	if !kind.valid() {
		return fmt.Errorf("attest: kind %q", kind)
	}
	d, err := NormalizeDigest(digest)
	if err != nil {
		return err
	}
	return a.session(func(rw io.ReadWriter) error {
		return a.extendLocked(rw, Event{Kind: kind, Digest: d, Name: name})
	})
}

// FileDigest returns "sha256:<hex>" of the file's content.
func FileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("attest: measure: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("attest: measure %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// EKPublic returns the EK's TPMT_PUBLIC.
func (a *Attester) EKPublic() []byte { return append([]byte(nil), a.ekPub...) }

// AKPublic returns the AK's TPMT_PUBLIC.
func (a *Attester) AKPublic() []byte { return append([]byte(nil), a.akPub...) }

// EventLog returns a copy of the measurement log.
func (a *Attester) EventLog() []Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Event(nil), a.log...)
}

// Evidence re-measures the sources, then quotes MeasurementPCR with the verifier's nonce
// as extraData (TPM2_Quote, Part 3 §18.4) and returns the evidence.
func (a *Attester) Evidence(ctx context.Context, nonce []byte) (*Evidence, error) {
	if len(nonce) < 16 || len(nonce) > 64 {
		return nil, fmt.Errorf("attest: nonce length %d, want 16..64", len(nonce))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sel := tpm2.PCRSelection{Hash: tpm2.AlgSHA256, PCRs: []int{MeasurementPCR}}
	ev := &Evidence{Version: EvidenceVersion, EKPublic: a.EKPublic(), EKCert: a.cfg.EKCert,
		Provenance: a.cfg.Provenance, Nonce: append([]byte(nil), nonce...)}
	err := a.session(func(rw io.ReadWriter) error {
		if err := a.measureLocked(rw); err != nil {
			return err
		}
		q, sig, err := tpm2.QuoteRaw(rw, a.ak, "", "", nonce, sel, tpm2.AlgNull)
		if err != nil {
			return fmt.Errorf("attest: quote: %w", err)
		}
		pcrs, err := tpm2.ReadPCRs(rw, sel)
		if err != nil {
			return fmt.Errorf("attest: read PCRs: %w", err)
		}
		ev.AKPublic = append([]byte(nil), a.akPub...)
		ev.Quote, ev.QuoteSignature, ev.PCRs = q, sig, pcrs
		ev.EventLog = append([]Event(nil), a.log...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// ActivateCredential answers a verifier's credential challenge (TPM2_ActivateCredential,
// Part 3 §12.5): the TPM releases the secret only if the EK that decrypts the seed and the
// AK whose name the credential was made for are both loaded in this TPM. The EK is used
// through its policy (PolicySecret of the endorsement hierarchy).
func (a *Attester) ActivateCredential(ctx context.Context, ch CredentialChallenge) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var secret []byte
	err := a.session(func(rw io.ReadWriter) error {
		ek, _, err := createEK(rw)
		if err != nil {
			return err
		}
		defer tpm2.FlushContext(rw, ek)
		sess, _, err := tpm2.StartAuthSession(rw, tpm2.HandleNull, tpm2.HandleNull,
			make([]byte, 16), nil, tpm2.SessionPolicy, tpm2.AlgNull, tpm2.AlgSHA256)
		if err != nil {
			return fmt.Errorf("attest: policy session: %w", err)
		}
		defer tpm2.FlushContext(rw, sess)
		pw := tpm2.AuthCommand{Session: tpm2.HandlePasswordSession, Attributes: tpm2.AttrContinueSession}
		if _, _, err := tpm2.PolicySecret(rw, tpm2.HandleEndorsement, pw, sess, nil, nil, nil, 0); err != nil {
			return fmt.Errorf("attest: PolicySecret: %w", err)
		}
		secret, err = tpm2.ActivateCredentialUsingAuth(rw, []tpm2.AuthCommand{pw,
			{Session: sess, Attributes: tpm2.AttrContinueSession}}, a.ak, ek, ch.CredBlob, ch.EncSecret)
		if err != nil {
			return fmt.Errorf("attest: activate credential: %w", err)
		}
		return nil
	})
	return secret, err
}

// Close flushes the keys and closes the TPM.
func (a *Attester) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	if a.rw == nil {
		return nil
	}
	tpm2.FlushContext(a.rw, a.ak)
	err := a.rw.Close()
	a.rw = nil
	return err
}
