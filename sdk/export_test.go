package sdk

import "time"

// RetryDelay exposes retryDelay to the tests.
var RetryDelay = retryDelay

// SetRenewGrace shortens the renewal grace after NotAfter for one test.
func SetRenewGrace(t interface{ Cleanup(func()) }, d time.Duration) {
	old := renewGrace
	renewGrace = d
	t.Cleanup(func() { renewGrace = old })
}
