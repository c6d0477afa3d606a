package attesttest_test

import (
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/attest/attesttest"
)

func TestMemoryNonces(t *testing.T) {
	attesttest.RunNonceStore(t, func(_ *testing.T, ttl time.Duration, max int) attest.NonceStore {
		return attest.NewMemoryNonces(ttl, max)
	})
}
