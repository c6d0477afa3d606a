package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/audit"
)

// flakySink fails its first `down` calls (an outage), then passes batches to next.
type flakySink struct {
	down  atomic.Int64
	calls atomic.Int64
	next  audit.Sink
}

func (f *flakySink) Ship(ctx context.Context, batch [][]byte) error {
	f.calls.Add(1)
	if f.down.Add(-1) >= 0 {
		return errors.New("control plane unreachable")
	}
	return f.next.Ship(ctx, batch)
}

// collectSink records every payload it acknowledges.
type collectSink struct {
	mu  sync.Mutex
	got [][]byte
}

func (c *collectSink) Ship(_ context.Context, batch [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range batch {
		c.got = append(c.got, append([]byte(nil), b...))
	}
	return nil
}

func (c *collectSink) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSpoolOutageLosesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := newSQLiteBackend(t)
	l, err := audit.Open(ctx, audit.Config{Storage: b.st})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sp, err := audit.OpenSpool(audit.SpoolConfig{Dir: t.TempDir(), SegmentSize: 4096, MaxBatch: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	sink := &flakySink{next: audit.LogSink{Log: l}}
	sink.down.Store(5) // five failed shipments before the control plane is back
	done := make(chan error, 1)
	go func() { done <- sp.Run(ctx, sink) }()
	const n = 400
	for i := 0; i < n; i++ {
		d := audit.Batched
		if i%3 == 0 {
			d = audit.Sync
		}
		if err := sp.Append(ctx, decisionEvent(i), d); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all events shipped", func() bool { return sp.Depth() == 0 })
	if sz, _ := b.st.Size(ctx); sz != n {
		t.Fatalf("log has %d events, want %d", sz, n)
	}
	for i := 0; i < n; i++ {
		if _, err := b.st.Lookup(ctx, decisionEvent(i).ID); err != nil {
			t.Fatalf("event %d lost: %v", i, err)
		}
	}
	if sink.calls.Load() <= 5 {
		t.Fatal("the outage was not exercised")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}

func TestSpoolResumesAfterRestartAndCutsTornTail(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sp, err := audit.OpenSpool(audit.SpoolConfig{Dir: dir, SegmentSize: 2048, MaxBatch: 7})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if err := sp.Append(ctx, decisionEvent(i), audit.Sync); err != nil {
			t.Fatal(err)
		}
	}
	// Ship some of it, then stop as if the gate were restarted.
	first := &collectSink{}
	rctx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- sp.Run(rctx, first) }()
	waitFor(t, "first shipments", func() bool { return first.count() >= 14 })
	cancel()
	<-ran
	shipped := 30 - int(sp.Depth())
	sp.Close()

	// A crash mid-write left half a frame at the end of the last segment.
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	last := segs[len(segs)-1]
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0, 0, 1, 0, 0xde, 0xad, '{'})
	f.Close()

	sp, err = audit.OpenSpool(audit.SpoolConfig{Dir: dir, SegmentSize: 2048, MaxBatch: 7})
	if err != nil {
		t.Fatalf("reopen after torn write: %v", err)
	}
	defer sp.Close()
	if d := sp.Depth(); d != int64(30-shipped) {
		t.Fatalf("depth after restart %d, want %d", d, 30-shipped)
	}
	if err := sp.Append(ctx, decisionEvent(30), audit.Sync); err != nil {
		t.Fatal(err)
	}
	second := &collectSink{}
	rctx, cancel = context.WithCancel(ctx)
	defer cancel()
	go sp.Run(rctx, second)
	waitFor(t, "rest shipped", func() bool { return sp.Depth() == 0 })
	got := append(first.got[:shipped:shipped], second.got...)
	if len(got) != 31 {
		t.Fatalf("shipped %d events in total, want 31", len(got))
	}
	for i, p := range got {
		want, _ := decisionEvent(i).Canonical()
		if !bytes.Equal(p, want) {
			t.Fatalf("event %d out of order or changed", i)
		}
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(segs) != 1 {
		t.Fatalf("%d segment files left after everything was shipped, want 1", len(segs))
	}
}

func TestSpoolRefusesCorruptMiddleSegment(t *testing.T) {
	dir := t.TempDir()
	sp, _ := audit.OpenSpool(audit.SpoolConfig{Dir: dir, SegmentSize: 1024})
	for i := 0; i < 10; i++ {
		sp.Append(context.Background(), decisionEvent(i), audit.Sync)
	}
	sp.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 2 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	b, _ := os.ReadFile(segs[0])
	b[20] ^= 1
	os.WriteFile(segs[0], b, 0o600)
	if _, err := audit.OpenSpool(audit.SpoolConfig{Dir: dir, SegmentSize: 1024}); !errors.Is(err, audit.ErrSpoolCorrupt) {
		t.Fatalf("err %v, want ErrSpoolCorrupt", err)
	}
}

func TestLogSinkRejectsMalformedEvent(t *testing.T) {
	b := newSQLiteBackend(t)
	l, _ := audit.Open(context.Background(), audit.Config{Storage: b.st})
	defer l.Close()
	err := audit.LogSink{Log: l}.Ship(context.Background(), [][]byte{[]byte(`{"v":1}`)})
	if !errors.Is(err, audit.ErrInvalidEvent) {
		t.Fatalf("err %v, want ErrInvalidEvent", err)
	}
}

// FuzzReadFrames: a spool file is read back after crashes and may be damaged.
func FuzzReadFrames(f *testing.F) {
	dir := f.TempDir()
	sp, _ := audit.OpenSpool(audit.SpoolConfig{Dir: dir})
	for i := 0; i < 3; i++ {
		sp.Append(context.Background(), decisionEvent(i), audit.Sync)
	}
	sp.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	good, _ := os.ReadFile(segs[0])
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		n, valid, err := audit.ReadFrames(bytes.NewReader(data), func(p []byte) error {
			if len(p) == 0 || len(p) > audit.MaxEventSize {
				return fmt.Errorf("payload of %d bytes", len(p))
			}
			return nil
		})
		if valid > int64(len(data)) || n < 0 || (n == 0) != (valid == 0) {
			t.Fatalf("frames %d valid %d of %d bytes", n, valid, len(data))
		}
		if err != nil && !errors.Is(err, audit.ErrSpoolCorrupt) {
			t.Fatalf("unexpected error %v", err)
		}
		if err == nil && valid != int64(len(data)) {
			t.Fatalf("clean end but %d of %d bytes consumed", valid, len(data))
		}
	})
}
