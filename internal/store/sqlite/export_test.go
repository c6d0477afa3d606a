package sqlite

// SetSynchronous changes the PRAGMA synchronous used by later Opens (benchmarks only)
// and returns a function that restores it.
func SetSynchronous(v string) (restore func()) {
	old := synchronous
	synchronous = v
	return func() { synchronous = old }
}
