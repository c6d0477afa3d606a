package crashtest_test

import (
	"os"
	"testing"

	"github.com/warden-a2a/warden/internal/cli"
	"github.com/warden-a2a/warden/internal/proc"
)

// TestMain lets this test binary act as the warden binary for its `warden server` child.
func TestMain(m *testing.M) {
	if proc.IsChild() {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}
