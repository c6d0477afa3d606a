package demo

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"github.com/google/go-tpm/legacy/tpm2"

	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/attest/tpmsim"
	"github.com/warden-a2a/warden/internal/audit"
)

// tpmVendor stands in for a TPM manufacturer's PKI: a root and an issuing CA that
// certify EKs (TCG EK Credential Profile).
type tpmVendor struct {
	root, issuer *x509.Certificate
	issuerKey    *ecdsa.PrivateKey
}

func newTPMVendor(name string) (*tpmVendor, error) {
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issuerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := func(cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{Organization: []string{name}, CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(20 * 365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	rootTpl := ca(name + " EK Root CA")
	der, err := x509.CreateCertificate(rand.Reader, rootTpl, rootTpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, err
	}
	root, _ := x509.ParseCertificate(der)
	der, err = x509.CreateCertificate(rand.Reader, ca(name+" EK Issuing CA"), root, issuerKey.Public(), rootKey)
	if err != nil {
		return nil, err
	}
	issuer, _ := x509.ParseCertificate(der)
	return &tpmVendor{root: root, issuer: issuer, issuerKey: issuerKey}, nil
}

func (v *tpmVendor) pools() (roots, inters *x509.CertPool) {
	roots, inters = x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(v.root)
	inters.AddCert(v.issuer)
	return roots, inters
}

// ekCert certifies ekPublic (a TPMT_PUBLIC) as the EK of one TPM: the TCG EK key purpose.
func (v *tpmVendor) ekCert(ekPublic []byte) ([]byte, error) {
	pub, err := tpm2.DecodePublic(ekPublic)
	if err != nil {
		return nil, err
	}
	key, err := pub.Key()
	if err != nil {
		return nil, err
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour), KeyUsage: x509.KeyUsageKeyAgreement,
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{{2, 23, 133, 8, 1}}}
	return x509.CreateCertificate(rand.Reader, tpl, v.issuer, key.(crypto.PublicKey), v.issuerKey)
}

// pem is the vendor's root and issuing CA as PEM (`warden server --tpm-ek-roots`).
func (v *tpmVendor) pem() []byte {
	var b []byte
	for _, c := range []*x509.Certificate{v.root, v.issuer} {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// renewWithEKCert renews name with its own simulated TPM presenting cert as its EK
// certificate (as a TPM that keeps one in NV would).
func (e *env) renewWithEKCert(ctx context.Context, name string, cert []byte) error {
	a, err := e.agent(name)
	if err != nil {
		return err
	}
	att, err := attest.NewAttester(attest.AttesterConfig{Opener: tpmsim.Opener{Seed: a.TPMSeed}, Reopen: true, EKCert: cert,
		Sources: []attest.Source{{Kind: attest.KindBinary, Path: a.Binary}}})
	if err != nil {
		return err
	}
	defer att.Close()
	return e.renewWith(ctx, name, att)
}

// ekCertGenuine: vendor-portal's TPM presents its vendor's EK certificate; the control
// plane verifies it against the vendor roots it was given (--tpm-ek-roots) and records
// genuine hardware in the attestation's audit event.
func ekCertGenuine(ctx context.Context, e *env) {
	s := Step{Name: "vendor-portal's TPM presents its vendor's EK certificate (genuine hardware)", Kind: "workflow", Expected: "allow",
		Command: commands("# in process: vendor-portal's renewal, its TPM presenting an EK certificate of the vendor in $DIR/tpm-vendor-roots.pem",
			"warden audit tail --kind attestation --agent "+e.ID("vendor-portal").String()+" --json --data-dir $DIR/server")}
	err := func() error {
		a, err := e.agent("vendor-portal")
		if err != nil {
			return err
		}
		tpm, err := a.TPM()
		if err != nil {
			return err
		}
		cert, err := e.vendor.ekCert(tpm.EKPublic())
		tpm.Close()
		if err != nil {
			return err
		}
		start := time.Now().Add(-time.Second)
		if err := e.renewWithEKCert(ctx, "vendor-portal", cert); err != nil {
			return err
		}
		ev, err := e.WaitAudit(ctx, 30*time.Second, "vendor-portal's attestation", func(ev audit.Event) bool {
			return ev.Kind == "attestation" && ev.Subject == a.ID.String() && ev.Time.After(start)
		})
		if err != nil {
			return err
		}
		if ev.Detail["hardware"] != "2" {
			return fmt.Errorf("attestation %s records hardware claim %s, not genuine_hw (2)", ev.ID, ev.Detail["hardware"])
		}
		s.Reason = "EK certificate chains to the vendor root; attestation " + ev.Detail["result_id"] + ": hardware genuine_hw"
		return nil
	}()
	if err != nil {
		s.Observed, s.Reason, s.DecisionID = outcome(err)
	} else {
		s.Observed = "allow"
	}
	e.record(s)
}

// ekCertOtherVendor: the same TPM presents an EK certificate from a vendor the control
// plane does not trust: the evidence is refused, not just left without a hardware claim.
func ekCertOtherVendor(ctx context.Context, e *env) {
	s := Step{Name: "renew vendor-portal with an EK certificate from an untrusted vendor", Kind: "attack", Expected: "deny",
		Command: "# in process: vendor-portal's renewal, its TPM presenting an EK certificate of a vendor the server does not trust"}
	err := func() error {
		a, err := e.agent("vendor-portal")
		if err != nil {
			return err
		}
		rogue, err := newTPMVendor("Rogue TPM Vendor")
		if err != nil {
			return err
		}
		tpm, err := a.TPM()
		if err != nil {
			return err
		}
		cert, err := rogue.ekCert(tpm.EKPublic())
		tpm.Close()
		if err != nil {
			return err
		}
		return e.renewWithEKCert(ctx, "vendor-portal", cert)
	}()
	// The refusal held vendor-portal for review; clear it so the next steps start from a
	// healthy agent, as an operator would after checking the TPM.
	r := e.Admin(ctx, "restore", "--id", e.ID("vendor-portal").String(), "--reason", "demo: rogue EK certificate investigated")
	s.Command = commands(s.Command, r.Command)
	e.recordRefusal(s, err)
}
