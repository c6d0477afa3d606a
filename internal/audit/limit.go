package audit

import (
	"sync"
	"time"
)

// PerSecond bounds how many events of one sort a component writes per wall-clock second,
// for refusals that cost their sender almost nothing (a TLS handshake, an
// unauthenticated request) and would otherwise let anyone fill the log. What it leaves
// out is counted, and the next event admitted says how many.
type PerSecond struct {
	N int // events admitted per second

	mu         sync.Mutex
	second     int64
	n, dropped int
}

// Take reports whether one more event may be written at now, and how many were left out
// since the last one admitted.
func (l *PerSecond) Take(now time.Time) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := now.Unix(); s != l.second {
		l.second, l.n = s, 0
	}
	if l.n >= l.N {
		l.dropped++
		return false, 0
	}
	l.n++
	dropped, l.dropped = l.dropped, 0
	return true, dropped
}
