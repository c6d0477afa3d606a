package audit

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sink receives batches of canonical events shipped from a gate's spool. It returns nil
// only when every event of the batch is durable on the other side; the spool then
// forgets them. A Sink may see a batch twice (after a lost acknowledgement), which the
// control plane's log absorbs: Append is idempotent per event id.
type Sink interface {
	Ship(ctx context.Context, batch [][]byte) error
}

// Durability says when a spooled Append returns.
type Durability int

const (
	// Sync: the event is fsynced before Append returns. For transactional and regulated
	// actions, whose event must be durable before the request is forwarded.
	Sync Durability = iota
	// Batched: Append returns once the event is written to the file; it is fsynced with a
	// group commit within SpoolConfig.FlushInterval (10 ms by default). For read-only actions.
	Batched
)

// SpoolConfig configures OpenSpool.
type SpoolConfig struct {
	Dir           string        // directory of segment files and the cursor; created 0700
	FlushInterval time.Duration // upper bound on the fsync delay of Batched appends; default 10ms
	SegmentSize   int64         // roll to a new segment file past this size; default 16 MiB
	MaxBatch      int           // events per Ship call; default 500
}

// Spool is a gate's local, append-only, durable queue of audit events. Frames are written
// to segment files "<first sequence number>.seg" as
//
//	uint32 big-endian length || uint32 big-endian CRC-32C(payload) || payload
//
// and a cursor file holds the sequence number of the first event not yet acknowledged by
// the Sink. On open, a torn frame at the end of the last segment (a crash mid-write) is cut
// off; fully shipped segments are deleted.
type Spool struct {
	cfg SpoolConfig

	mu      sync.Mutex
	f       *os.File // active (last) segment
	segs    []int64  // first sequence number of each segment, ascending
	segSize int64    // bytes in the active segment
	next    int64    // sequence number of the next append
	cursor  int64    // first sequence number not yet shipped
	synced  int64    // every frame before this sequence number is fsynced
	syncMu  sync.Mutex
	timer   *time.Timer
	err     error // sticky write error: the spool fails closed
	closed  bool
	wake    chan struct{} // signals the shipper that new events exist
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

const frameHeader = 8

// ErrSpoolCorrupt is returned by OpenSpool for a bad frame that is not a torn tail, and
// by ReadFrames for any malformed frame.
var ErrSpoolCorrupt = errors.New("audit: spool corrupt")

// OpenSpool opens or creates the spool in cfg.Dir and recovers it after a crash.
func OpenSpool(cfg SpoolConfig) (*Spool, error) {
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 10 * time.Millisecond
	}
	if cfg.SegmentSize <= 0 {
		cfg.SegmentSize = 16 << 20
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: spool dir: %w", err)
	}
	s := &Spool{cfg: cfg, wake: make(chan struct{}, 1)}
	ents, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("audit: spool dir: %w", err)
	}
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".seg"); ok {
			if seq, err := strconv.ParseInt(n, 10, 64); err == nil && seq >= 0 {
				s.segs = append(s.segs, seq)
			}
		}
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i] < s.segs[j] })
	if b, err := os.ReadFile(filepath.Join(cfg.Dir, "cursor")); err == nil {
		s.cursor, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || s.cursor < 0 {
			return nil, fmt.Errorf("%w: cursor file", ErrSpoolCorrupt)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("audit: spool cursor: %w", err)
	}
	if len(s.segs) == 0 {
		s.segs = []int64{s.cursor}
	}
	// Count frames; cut a torn tail off the last segment.
	s.next = s.segs[0]
	for i, first := range s.segs {
		if first != s.next {
			return nil, fmt.Errorf("%w: segment %d.seg starts at %d, want %d", ErrSpoolCorrupt, first, first, s.next)
		}
		path := s.segPath(first)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit: spool segment: %w", err)
		}
		n, valid, rerr := ReadFrames(bufio.NewReader(f), nil)
		last := i == len(s.segs)-1
		if rerr != nil && !last {
			f.Close()
			return nil, fmt.Errorf("%w: segment %s: %v", ErrSpoolCorrupt, path, rerr)
		}
		s.next += n
		if !last {
			f.Close()
			continue
		}
		if err := f.Truncate(valid); err != nil {
			f.Close()
			return nil, fmt.Errorf("audit: spool truncate torn tail: %w", err)
		}
		if _, err := f.Seek(valid, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		s.f, s.segSize = f, valid
	}
	s.synced = s.next
	if s.cursor > s.next {
		s.cursor = s.next // the tail lost in a crash had been shipped already
	}
	if s.cursor < s.segs[0] {
		return nil, fmt.Errorf("%w: cursor %d before the first segment %d", ErrSpoolCorrupt, s.cursor, s.segs[0])
	}
	if err := syncDir(cfg.Dir); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Spool) segPath(first int64) string {
	return filepath.Join(s.cfg.Dir, fmt.Sprintf("%020d.seg", first))
}

// ReadFrames reads spool frames from r, calling fn (when not nil) with each payload, and
// returns how many complete, intact frames it read and the byte length they span. It stops
// at the first short or malformed frame and returns ErrSpoolCorrupt for a bad one (a clean
// end of input returns nil). The payload passed to fn is only valid during the call.
func ReadFrames(r io.Reader, fn func(payload []byte) error) (frames, valid int64, err error) {
	buf := make([]byte, 0, 1024)
	for {
		p, err := readFrame(r, buf)
		if err == io.EOF {
			return frames, valid, nil
		}
		if err != nil {
			return frames, valid, fmt.Errorf("%w at byte %d", err, valid)
		}
		if fn != nil {
			if err := fn(p); err != nil {
				return frames, valid, err
			}
		}
		buf = p[:0]
		frames++
		valid += frameHeader + int64(len(p))
	}
}

// readFrame reads one frame into buf (grown as needed). It returns io.EOF at a clean end
// of input and an error wrapping ErrSpoolCorrupt for a short or malformed frame.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: torn frame header", ErrSpoolCorrupt)
	}
	n := binary.BigEndian.Uint32(hdr[0:4])
	if n == 0 || n > MaxEventSize {
		return nil, fmt.Errorf("%w: frame length %d", ErrSpoolCorrupt, n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("%w: torn frame", ErrSpoolCorrupt)
	}
	if crc32.Checksum(buf, crcTable) != binary.BigEndian.Uint32(hdr[4:8]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrSpoolCorrupt)
	}
	return buf, nil
}

func appendFrame(dst, payload []byte) []byte {
	var hdr [frameHeader]byte
	binary.BigEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(hdr[4:8], crc32.Checksum(payload, crcTable))
	return append(append(dst, hdr[:]...), payload...)
}

// Append spools ev. With Sync it returns after the event is fsynced; with Batched after it
// is written, and a group commit fsyncs it within FlushInterval. After a write or fsync
// error every later Append fails (fail closed: the gate must refuse requests it cannot
// audit).
func (s *Spool) Append(ctx context.Context, ev Event, d Durability) error {
	data, err := ev.Canonical()
	if err != nil {
		return err
	}
	frame := appendFrame(make([]byte, 0, frameHeader+len(data)), data)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	if s.segSize >= s.cfg.SegmentSize {
		if err := s.roll(); err != nil {
			err = s.fail(err)
			s.mu.Unlock()
			return err
		}
	}
	if _, err := s.f.Write(frame); err != nil {
		err = s.fail(err)
		s.mu.Unlock()
		return err
	}
	s.segSize += int64(len(frame))
	s.next++
	mine := s.next // durable once synced >= mine
	select {
	case s.wake <- struct{}{}:
	default:
	}
	if d != Sync && s.timer == nil {
		s.timer = time.AfterFunc(s.cfg.FlushInterval, func() {
			s.mu.Lock()
			s.timer = nil
			upTo := s.next
			s.mu.Unlock()
			_ = s.syncUpTo(upTo)
		})
	}
	s.mu.Unlock()
	if d == Sync {
		return s.syncUpTo(mine)
	}
	return nil
}

// syncUpTo returns once every frame before sequence number seq is fsynced. One caller
// at a time fsyncs, covering every frame written so far; callers queued behind it usually
// find their frame covered already (group commit).
func (s *Spool) syncUpTo(seq int64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	for {
		s.mu.Lock()
		if s.synced >= seq {
			s.mu.Unlock()
			return nil
		}
		if s.err != nil || s.closed {
			err := s.err
			s.mu.Unlock()
			if err == nil {
				err = ErrClosed
			}
			return err
		}
		target, f := s.next, s.f
		s.mu.Unlock()
		err := f.Sync()
		s.mu.Lock()
		switch {
		case err == nil:
			s.synced = max(s.synced, target)
		case errors.Is(err, os.ErrClosed):
			// roll or Close synced and closed f meanwhile; loop to re-check.
		default:
			err = s.fail(err)
			s.mu.Unlock()
			return err
		}
		s.mu.Unlock()
	}
}

func (s *Spool) fail(err error) error {
	s.err = fmt.Errorf("audit: spool write failed, refusing further events: %w", err)
	return s.err
}

// roll fsyncs and closes the active segment and starts a new one at s.next.
func (s *Spool) roll() error {
	if err := s.f.Sync(); err != nil {
		return err
	}
	s.synced = s.next
	if err := s.f.Close(); err != nil {
		return err
	}
	f, err := os.OpenFile(s.segPath(s.next), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	s.f, s.segSize = f, 0
	s.segs = append(s.segs, s.next)
	return syncDir(s.cfg.Dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: spool dir sync: %w", err)
	}
	return nil
}

// Depth returns how many spooled events the Sink has not acknowledged yet.
func (s *Spool) Depth() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next - s.cursor
}

// Close fsyncs and closes the spool. Run returns when its context ends.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	err := s.f.Sync()
	if err == nil {
		s.synced = s.next
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}
