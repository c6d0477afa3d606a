package attest_test

import (
	"testing"

	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/tpmutil"

	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/attest/tpmsim"
)

// TestLoadExternalAKCannotActivate is the attack on credential activation itself: the
// attacker owns the legitimate TPM (EK B) but wants the verifier to accept an AK that lives
// elsewhere (TPM A, or software). It loads only the public area of AK A into TPM B with
// TPM2_LoadExternal — the loaded object then has AK A's name — and asks TPM B to activate
// the credential made for EK B + AK A. The TPM must refuse: a public-only object cannot
// authorize the ADMIN role ActivateCredential needs on activateHandle.
func TestLoadExternalAKCannotActivate(t *testing.T) {
	a := newRig(t, 60)
	akA := a.att.AKPublic()
	a.att.Close()

	b := newRig(t, 61)
	ekB := b.att.EKPublic()
	b.att.Close()

	v := attest.NewVerifier(attest.Config{})
	cc, pending, err := v.MakeCredential(ekB, akA)
	if err != nil {
		t.Fatal(err)
	}

	rw, err := tpmsim.Opener{Seed: 61}.OpenTPM()
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	tmpl := mustDecodePublic(t, ekB) // the EK template: the same public area with a zero unique
	tmpl.ECCParameters.Point = tpm2.ECPoint{XRaw: make([]byte, 32), YRaw: make([]byte, 32)}
	ek, ekPub, _, _, _, _, err := tpm2.CreatePrimaryEx(rw, tpm2.HandleEndorsement, tpm2.PCRSelection{}, "", "", tmpl)
	if err != nil {
		t.Fatal(err)
	}
	defer tpm2.FlushContext(rw, ek)
	if string(ekPub) != string(ekB) {
		t.Fatal("recreated EK differs")
	}
	// TPM2_LoadExternal with an empty inPrivate (public-only) in the null hierarchy.
	resp, _, err := tpmutil.RunCommand(rw, tpm2.TagNoSessions, tpm2.CmdLoadExternal,
		tpmutil.U16Bytes(nil), tpmutil.U16Bytes(akA), tpm2.HandleNull)
	if err != nil {
		t.Logf("TPM refused to load the foreign AK public area: %v", err)
		return
	}
	var h tpmutil.Handle
	if _, err := tpmutil.Unpack(resp, &h); err != nil {
		t.Fatal(err)
	}
	defer tpm2.FlushContext(rw, h)
	sess, _, err := tpm2.StartAuthSession(rw, tpm2.HandleNull, tpm2.HandleNull, make([]byte, 16), nil,
		tpm2.SessionPolicy, tpm2.AlgNull, tpm2.AlgSHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer tpm2.FlushContext(rw, sess)
	pw := tpm2.AuthCommand{Session: tpm2.HandlePasswordSession, Attributes: tpm2.AttrContinueSession}
	if _, _, err := tpm2.PolicySecret(rw, tpm2.HandleEndorsement, pw, sess, nil, nil, nil, 0); err != nil {
		t.Fatal(err)
	}
	secret, err := tpm2.ActivateCredentialUsingAuth(rw, []tpm2.AuthCommand{pw,
		{Session: sess, Attributes: tpm2.AttrContinueSession}}, h, ek, cc.CredBlob, cc.EncSecret)
	if err == nil && string(secret) == string(pending.Secret) {
		t.Fatal("TPM released the credential for a public-only foreign AK: activation proves nothing")
	}
	t.Logf("ActivateCredential on a public-only AK refused: %v", err)
}

func mustDecodePublic(t *testing.T, b []byte) tpm2.Public {
	t.Helper()
	p, err := tpm2.DecodePublic(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
