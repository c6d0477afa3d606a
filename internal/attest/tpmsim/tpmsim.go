// Package tpmsim opens the go-tpm-tools TPM 2.0 simulator (Microsoft's reference TPM,
// built with cgo against OpenSSL's libcrypto) behind attest.Opener, for tests and
// `warden demo` on machines without /dev/tpmrm0.
//
// The simulator is one global instance per process: OpenTPM blocks until the previous
// instance is closed. Each OpenTPM starts a freshly manufactured TPM whose hierarchy seeds
// derive from Seed, so one Seed is one stable "TPM" (same EK, same AK) across opens; use
// attest.AttesterConfig.Reopen with it. Seeds make the keys predictable: never outside
// tests and demos.
package tpmsim

import (
	"io"

	"github.com/google/go-tpm-tools/simulator"

	"github.com/warden-a2a/warden/internal/attest"
)

// Opener opens the simulator with a fixed seed.
type Opener struct {
	Seed int64
}

var _ attest.Opener = Opener{}

// OpenTPM opens the simulator (blocking while another instance is open).
func (o Opener) OpenTPM() (io.ReadWriteCloser, error) {
	return simulator.GetWithFixedSeedInsecure(o.Seed)
}

// Default returns the device opener when /dev/tpmrm0 exists and a simulator opener with
// seed otherwise, and whether it chose the simulator (which needs AttesterConfig.Reopen
// when several attesters share the process).
func Default(seed int64) (attest.Opener, bool) {
	if attest.HaveTPMDevice() {
		return attest.DeviceOpener{}, false
	}
	return Opener{Seed: seed}, true
}
