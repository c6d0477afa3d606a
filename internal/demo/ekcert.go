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
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/google/go-tpm/legacy/tpm2"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/attest/tpmsim"
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

// renewWithEKCert renews name with its own simulated TPM presenting cert as its EK
// certificate (as a TPM that keeps one in NV would).
func (e *env) renewWithEKCert(ctx context.Context, name string, cert []byte) error {
	att, err := attest.NewAttester(attest.AttesterConfig{Opener: tpmsim.Opener{Seed: e.seeds[name]}, Reopen: true, EKCert: cert,
		Sources: []attest.Source{{Kind: attest.KindBinary, Path: e.bins[name]}}})
	if err != nil {
		return err
	}
	defer att.Close()
	src, err := e.sourceWith(name, att)
	if err != nil {
		return err
	}
	defer src.HTTPClient().CloseIdleConnections()
	return src.Renew(ctx)
}

// ekCertGenuine: vendor-portal's TPM presents its vendor's EK certificate; the control
// plane verifies it against the vendor roots it was given and records genuine hardware.
func ekCertGenuine(ctx context.Context, e *env) {
	s := Step{Name: "vendor-portal's TPM presents its vendor's EK certificate (genuine hardware)", Kind: "workflow", Expected: "allow"}
	err := func() error {
		cert, err := e.vendor.ekCert(e.tpms["vendor-portal"].EKPublic())
		if err != nil {
			return err
		}
		if err := e.renewWithEKCert(ctx, "vendor-portal", cert); err != nil {
			return err
		}
		evs, err := e.auditEvents(ctx)
		if err != nil {
			return err
		}
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Kind == "attestation" && evs[i].Subject == e.id("vendor-portal") {
				if evs[i].Detail["hardware"] != "2" {
					return fmt.Errorf("attestation %s records hardware claim %s, not genuine_hw (2)", evs[i].ID, evs[i].Detail["hardware"])
				}
				s.Reason = "EK certificate chains to the vendor root; attestation " + evs[i].Detail["result_id"] + ": hardware genuine_hw"
				return nil
			}
		}
		return errors.New("no attestation event for vendor-portal")
	}()
	if err != nil {
		s.Observed, s.Reason, s.DecisionID = attestOutcome(err)
	} else {
		s.Observed = "allow"
	}
	e.record(s)
}

// ekCertOtherVendor: the same TPM presents an EK certificate from a vendor the control
// plane does not trust: the evidence is refused, not just left without a hardware claim.
func ekCertOtherVendor(ctx context.Context, e *env) {
	s := Step{Name: "renew vendor-portal with an EK certificate from an untrusted vendor", Kind: "attack", Expected: "deny"}
	err := func() error {
		rogue, err := newTPMVendor("Rogue TPM Vendor")
		if err != nil {
			return err
		}
		cert, err := rogue.ekCert(e.tpms["vendor-portal"].EKPublic())
		if err != nil {
			return err
		}
		return e.renewWithEKCert(ctx, "vendor-portal", cert)
	}()
	s.Observed, s.Reason, s.DecisionID = attestOutcome(err)
	e.record(s)
	// The refusal held vendor-portal for review; clear it so the next steps start from a
	// healthy agent, as an operator would after checking the TPM.
	_, _ = e.admin.ChangeTrust(ctx, "restore", api.TrustChange{ID: e.id("vendor-portal"), Reason: "demo: rogue EK certificate investigated"})
}
