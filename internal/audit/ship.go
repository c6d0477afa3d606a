package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Run ships spooled events to sink in batches, in spool order, until ctx ends. A batch
// the sink refuses stays in the spool and is retried with backoff (100 ms doubling to
// 5 s), so an outage of the control plane loses nothing. Run returns ctx's error, or an
// error when the spool itself cannot be read or its cursor cannot be saved.
func (s *Spool) Run(ctx context.Context, sink Sink) error {
	backoff := 100 * time.Millisecond
	var rd spoolReader
	defer rd.close()
	for {
		s.mu.Lock()
		cursor, next := s.cursor, s.next
		segs := append([]int64(nil), s.segs...)
		s.mu.Unlock()
		if cursor == next {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.wake:
			case <-time.After(time.Second):
			}
			continue
		}
		batch, err := rd.read(s, segs, cursor, min(next, cursor+int64(s.cfg.MaxBatch)))
		if err != nil {
			return err
		}
		if err := sink.Ship(ctx, batch); err != nil {
			rd.close() // reread from the cursor next time
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if err := s.advance(cursor + int64(len(batch))); err != nil {
			return err
		}
	}
}

// spoolReader keeps the shipper's read position between batches.
type spoolReader struct {
	f   *os.File
	r   *bufio.Reader
	seg int64 // first sequence number of the open segment
	seq int64 // sequence number of the next frame r yields
}

func (rd *spoolReader) close() {
	if rd.f != nil {
		rd.f.Close()
		rd.f, rd.r = nil, nil
	}
}

// read returns the payloads of frames [from, to).
func (rd *spoolReader) read(s *Spool, segs []int64, from, to int64) ([][]byte, error) {
	var out [][]byte
	for seq := from; seq < to; {
		// The segment holding seq: the last one starting at or before it.
		seg := segs[0]
		for _, first := range segs {
			if first <= seq {
				seg = first
			}
		}
		opened := false
		if rd.f == nil || rd.seg != seg || rd.seq != seq {
			opened = true
			rd.close()
			f, err := os.Open(s.segPath(seg))
			if err != nil {
				return nil, fmt.Errorf("audit: spool read: %w", err)
			}
			rd.f, rd.r, rd.seg, rd.seq = f, bufio.NewReaderSize(f, 64<<10), seg, seg
			for rd.seq < seq { // skip already shipped frames
				if _, err := rd.frame(); err != nil {
					return nil, err
				}
			}
		}
		p, err := rd.frame()
		if errors.Is(err, io.EOF) {
			rd.close() // segment ended; seq is in the next one
			if opened {
				return nil, fmt.Errorf("%w: event %d missing from segment %d", ErrSpoolCorrupt, seq, seg)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
		seq++
	}
	return out, nil
}

func (rd *spoolReader) frame() ([]byte, error) {
	p, err := readFrame(rd.r, nil)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("audit: spool read segment %d: %w", rd.seg, err)
	}
	rd.seq++
	return p, nil
}

// advance records that every event before cursor is acknowledged: it saves the cursor
// durably and deletes fully shipped segments.
func (s *Spool) advance(cursor int64) error {
	tmp := filepath.Join(s.cfg.Dir, "cursor.tmp")
	if err := writeFileSync(tmp, []byte(strconv.FormatInt(cursor, 10)+"\n")); err != nil {
		return fmt.Errorf("audit: spool cursor: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.cfg.Dir, "cursor")); err != nil {
		return fmt.Errorf("audit: spool cursor: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursor = cursor
	for len(s.segs) > 1 && s.segs[1] <= cursor {
		if err := os.Remove(s.segPath(s.segs[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("audit: spool delete segment: %w", err)
		}
		s.segs = s.segs[1:]
	}
	return nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// LogSink is the control plane's Sink: it parses every shipped event as untrusted input
// (ParseEvent) and appends the batch to Log, returning once all of it is durable. Events
// already logged are acknowledged again (Append is idempotent per id).
type LogSink struct{ Log *Log }

// Ship implements Sink. A malformed event fails the whole batch with ErrInvalidEvent.
func (k LogSink) Ship(ctx context.Context, batch [][]byte) error {
	evs := make([]Event, len(batch))
	for i, b := range batch {
		ev, err := ParseEvent(b)
		if err != nil {
			return fmt.Errorf("audit: shipped event %d: %w", i, err)
		}
		evs[i] = ev
	}
	_, err := k.Log.AppendAll(ctx, evs)
	return err
}
