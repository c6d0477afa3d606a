package attest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/tpmutil"

	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/attest/tpmsim"
)

// manufacturer is a stand-in TPM vendor PKI: a root and an intermediate CA.
type manufacturer struct {
	root, inter       *x509.Certificate
	rootKey, interKey *ecdsa.PrivateKey
}

func newManufacturer(t *testing.T, name string) *manufacturer {
	t.Helper()
	m := &manufacturer{}
	m.rootKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	m.interKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := func(cn string, serial int64) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{Organization: []string{name}, CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	rootTpl := ca(name+" EK root", 1)
	der, err := x509.CreateCertificate(rand.Reader, rootTpl, rootTpl, m.rootKey.Public(), m.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	m.root, _ = x509.ParseCertificate(der)
	der, err = x509.CreateCertificate(rand.Reader, ca(name+" EK CA 01", 2), m.root, m.interKey.Public(), m.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	m.inter, _ = x509.ParseCertificate(der)
	return m
}

// ekCert certifies pub as a TPM's EK (TCG EK Credential Profile: the EK key purpose and a
// critical subjectAltName naming the TPM model).
func (m *manufacturer) ekCert(t *testing.T, pub crypto.PublicKey, notAfter time.Time) []byte {
	t.Helper()
	san, _ := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: []byte{0x30, 0x00}}})
	tpl := &x509.Certificate{SerialNumber: big.NewInt(77), NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage:           x509.KeyUsageKeyEncipherment,
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{{2, 23, 133, 8, 1}},
		ExtraExtensions:    []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Critical: true, Value: san}}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, m.inter, pub, m.interKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func (m *manufacturer) pools() (roots, inter *x509.CertPool) {
	roots, inter = x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(m.root)
	inter.AddCert(m.inter)
	return roots, inter
}

// TestEKCertificate: with manufacturer roots configured, an EK certificate that chains to
// them and certifies the bound EK makes the hardware claim genuine; a certificate of
// another key, another vendor, or an expired one is refused unknown_ek; without roots
// the certificate is not looked at (no hardware claim).
func TestEKCertificate(t *testing.T) {
	vendor, other := newManufacturer(t, "Vendor"), newManufacturer(t, "Other")
	probe := newRig(t, 41)
	pub, err := tpm2.DecodePublic(probe.att.EKPublic())
	if err != nil {
		t.Fatal(err)
	}
	ekKey, err := pub.Key()
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	roots, inter := vendor.pools()
	for _, tc := range []struct {
		name   string
		cert   []byte
		roots  bool
		reason attest.Reason
		hw     attest.Claim
	}{
		{"vendor certificate of this EK", vendor.ekCert(t, ekKey, time.Now().Add(time.Hour)), true, attest.ReasonNone, attest.ClaimGenuineHardware},
		{"certificate of another key", vendor.ekCert(t, stranger.Public(), time.Now().Add(time.Hour)), true, attest.ReasonUnknownEK, attest.ClaimUnrecognizedHardware},
		{"another vendor's certificate", other.ekCert(t, ekKey, time.Now().Add(time.Hour)), true, attest.ReasonUnknownEK, attest.ClaimUnrecognizedHardware},
		{"expired certificate", vendor.ekCert(t, ekKey, time.Now().Add(-time.Minute)), true, attest.ReasonUnknownEK, attest.ClaimUnrecognizedHardware},
		{"not a certificate", []byte("\x30\x03garbage"), true, attest.ReasonUnknownEK, attest.ClaimUnrecognizedHardware},
		{"no roots configured", vendor.ekCert(t, ekKey, time.Now().Add(time.Hour)), false, attest.ReasonNone, attest.ClaimNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 41)
			r.att.Close()
			r.att, err = attest.NewAttester(attest.AttesterConfig{Opener: tpmsim.Opener{Seed: 41}, Reopen: true, EKCert: tc.cert,
				Sources: []attest.Source{{Kind: attest.KindBinary, Path: r.bin}, {Kind: attest.KindConfig, Path: r.cfg}}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.att.Close() })
			r.refs.BuildSigners = nil // this attester ships no provenance
			cfg := attest.Config{MaxEvidenceAge: time.Minute}
			if tc.roots {
				cfg.EKRoots, cfg.EKIntermediates = roots, inter
			}
			r.v = attest.NewVerifier(cfg)
			res, _ := r.enroll()
			wantReason(t, res, tc.reason)
			if res.TrustVector.Hardware != tc.hw {
				t.Errorf("hardware claim %v, want %v (%s)", res.TrustVector.Hardware, tc.hw, res.Detail)
			}
		})
	}
}

// nvOpener is a simulated TPM whose manufacturer stored an EK certificate in NV.
type nvOpener struct {
	seed int64
	cert []byte
}

func (o nvOpener) OpenTPM() (io.ReadWriteCloser, error) {
	rw, err := tpmsim.Opener{Seed: o.seed}.OpenTPM()
	if err != nil {
		return nil, err
	}
	const idx = tpmutil.Handle(0x01C0000A)
	padded := append(append([]byte(nil), o.cert...), make([]byte, 16)...) // some TPMs pad
	if err := tpm2.NVDefineSpace(rw, tpm2.HandleOwner, idx, "", "", nil,
		tpm2.AttrOwnerWrite|tpm2.AttrOwnerRead|tpm2.AttrAuthRead|tpm2.AttrNoDA, uint16(len(padded))); err != nil {
		rw.Close()
		return nil, err
	}
	if err := tpm2.NVWrite(rw, tpm2.HandleOwner, idx, "", padded, 0); err != nil {
		rw.Close()
		return nil, err
	}
	return rw, nil
}

// TestEKCertificateFromNV: the attester reads the EK certificate the TPM keeps in NV
// (padding removed) and the verifier, given the vendor's roots, grants genuine_hw.
func TestEKCertificateFromNV(t *testing.T) {
	vendor := newManufacturer(t, "Vendor")
	probe := newRig(t, 43)
	pub, err := tpm2.DecodePublic(probe.att.EKPublic())
	if err != nil {
		t.Fatal(err)
	}
	ekKey, _ := pub.Key()
	cert := vendor.ekCert(t, ekKey, time.Now().Add(time.Hour))
	probe.att.Close()

	r := newRig(t, 43)
	r.att.Close()
	r.att, err = attest.NewAttester(attest.AttesterConfig{Opener: nvOpener{seed: 43, cert: cert},
		Sources: []attest.Source{{Kind: attest.KindBinary, Path: r.bin}, {Kind: attest.KindConfig, Path: r.cfg}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.att.Close() })
	r.refs.BuildSigners = nil
	roots, inter := vendor.pools()
	r.v = attest.NewVerifier(attest.Config{MaxEvidenceAge: time.Minute, EKRoots: roots, EKIntermediates: inter})
	res, _ := r.enroll()
	wantReason(t, res, attest.ReasonNone)
	if res.TrustVector.Hardware != attest.ClaimGenuineHardware {
		t.Fatalf("hardware claim %v (%s): the NV certificate was not used", res.TrustVector.Hardware, res.Detail)
	}
}
