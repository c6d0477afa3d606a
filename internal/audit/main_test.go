package audit_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind (a Log, Spool shipper
// or database handle that was not closed).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
