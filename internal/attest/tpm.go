package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/tpmutil"
)

// Opener opens a TPM 2.0: the device (DeviceOpener) or the simulator (tpmsim.Opener). The
// attester code is the same for both.
type Opener interface {
	OpenTPM() (io.ReadWriteCloser, error)
}

// DeviceOpener opens a TPM character device, the kernel resource manager by default.
type DeviceOpener struct {
	Path string // "" means DefaultTPMDevice
}

// DefaultTPMDevice is the Linux TPM resource manager.
const DefaultTPMDevice = "/dev/tpmrm0"

// OpenTPM opens the device.
func (d DeviceOpener) OpenTPM() (io.ReadWriteCloser, error) {
	p := d.Path
	if p == "" {
		p = DefaultTPMDevice
	}
	rw, err := tpm2.OpenTPM(p)
	if err != nil {
		return nil, fmt.Errorf("attest: open %s: %w", p, err)
	}
	return rw, nil
}

// HaveTPMDevice reports whether the default TPM device exists.
func HaveTPMDevice() bool {
	_, err := os.Stat(DefaultTPMDevice)
	return err == nil
}

// ekAuthPolicy is PolicySecret(TPM_RH_ENDORSEMENT) with an empty policyRef, the default EK
// authPolicy of the TCG EK Credential Profile 2.0 §B.3.3:
// SHA256(SHA256(0^32 || TPM_CC_PolicySecret || TPM_RH_ENDORSEMENT-name) || "").
func ekAuthPolicy() []byte {
	buf, err := tpmutil.Pack(tpm2.CmdPolicySecret, tpm2.HandleEndorsement)
	if err != nil {
		panic(err)
	}
	d1 := sha256.Sum256(append(make([]byte, 32), buf...))
	d2 := sha256.Sum256(d1[:])
	return d2[:]
}

// ekTemplate is the TCG EK Credential Profile low-range ECC NIST P-256 template (template
// L-2): a restricted decryption key usable only through the EK policy.
func ekTemplate() tpm2.Public {
	return tpm2.Public{
		Type:    tpm2.AlgECC,
		NameAlg: tpm2.AlgSHA256,
		Attributes: (tpm2.FlagStorageDefault | tpm2.FlagAdminWithPolicy) &^
			tpm2.FlagUserWithAuth,
		AuthPolicy: ekAuthPolicy(),
		ECCParameters: &tpm2.ECCParams{
			Symmetric: &tpm2.SymScheme{Alg: tpm2.AlgAES, KeyBits: 128, Mode: tpm2.AlgCFB},
			CurveID:   tpm2.CurveNISTP256,
			Point:     tpm2.ECPoint{XRaw: make([]byte, 32), YRaw: make([]byte, 32)},
		},
	}
}

// akTemplate is a restricted ECDSA P-256 / SHA-256 signing key that never leaves the TPM
// (fixedTPM, fixedParent, sensitiveDataOrigin): the attributes Verifier requires of an AK.
func akTemplate() tpm2.Public {
	return tpm2.Public{
		Type:       tpm2.AlgECC,
		NameAlg:    tpm2.AlgSHA256,
		Attributes: tpm2.FlagSignerDefault, // fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign
		ECCParameters: &tpm2.ECCParams{
			Sign:    &tpm2.SigScheme{Alg: tpm2.AlgECDSA, Hash: tpm2.AlgSHA256},
			CurveID: tpm2.CurveNISTP256,
			Point:   tpm2.ECPoint{XRaw: make([]byte, 32), YRaw: make([]byte, 32)},
		},
	}
}

// requiredAKAttrs are the TPMA_OBJECT bits an AK must have (Part 2 §8.3): a restricted
// signing key whose private part was generated in and cannot leave the TPM. Restricted
// means the TPM refuses to sign data that begins with TPM_GENERATED_VALUE, so a quote can
// only come from the TPM itself.
const requiredAKAttrs = tpm2.FlagFixedTPM | tpm2.FlagFixedParent | tpm2.FlagSensitiveDataOrigin |
	tpm2.FlagRestricted | tpm2.FlagSign

// tpmName returns "sha256:<hex>" of the TPM name of a TPMT_PUBLIC (Part 1 §16: nameAlg
// digest of the public area), and the decoded public area.
func tpmName(pubBlob []byte) (string, tpm2.Public, *tpm2.HashValue, error) {
	pub, err := tpm2.DecodePublic(pubBlob)
	if err != nil {
		return "", pub, nil, err
	}
	if enc, err := pub.Encode(); err != nil || !bytes.Equal(enc, pubBlob) {
		return "", pub, nil, fmt.Errorf("TPMT_PUBLIC is not canonically encoded")
	}
	if pub.NameAlg != tpm2.AlgSHA256 {
		return "", pub, nil, fmt.Errorf("nameAlg %v, want SHA-256", pub.NameAlg)
	}
	// The blob is canonical, so the name digest is the hash of the blob as given.
	d := sha256.Sum256(pubBlob)
	return "sha256:" + hex.EncodeToString(d[:]), pub, &tpm2.HashValue{Alg: tpm2.AlgSHA256, Value: d[:]}, nil
}
