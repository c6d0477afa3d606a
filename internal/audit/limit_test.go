package audit

import (
	"testing"
	"time"
)

// TestPerSecond: at most N events are admitted per second; the first one admitted after
// a cut counts those left out.
func TestPerSecond(t *testing.T) {
	l := PerSecond{N: 50}
	t0 := time.Unix(1_800_000_000, 0)
	for i := 0; i < 50; i++ {
		if ok, d := l.Take(t0); !ok || d != 0 {
			t.Fatalf("event %d: ok %v dropped %d", i, ok, d)
		}
	}
	for i := 0; i < 7; i++ {
		if ok, _ := l.Take(t0.Add(500 * time.Millisecond)); ok {
			t.Fatal("over the limit within the same second")
		}
	}
	if ok, d := l.Take(t0.Add(time.Second)); !ok || d != 7 {
		t.Fatalf("next second: ok %v dropped %d, want true 7", ok, d)
	}
	if ok, d := l.Take(t0.Add(time.Second)); !ok || d != 0 {
		t.Fatalf("then: ok %v dropped %d", ok, d)
	}
}
