package audit

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// FaultError is what Verify returns when the log is not intact. Index is the first record
// index at which the log is wrong, or -1 when the fault is in a checkpoint alone.
type FaultError struct {
	Index  int64
	Reason string
}

func (e *FaultError) Error() string {
	if e.Index < 0 {
		return "audit: log fault: " + e.Reason
	}
	return fmt.Sprintf("audit: log fault at index %d: %s", e.Index, e.Reason)
}

// VerifyReport summarizes a successful Verify.
type VerifyReport struct {
	Size        int64     // records checked
	Root        tlog.Hash // root of the whole log
	Checkpoints int       // signed checkpoints checked
}

// verifyChunk is how many records Verify reads per query.
const verifyChunk = 8192

// Verify checks the whole log in st without trusting any stored hash: it recomputes the
// RFC 6962 tree from the canonical bytes of every record in index order, compares each
// stored tlog hash with the recomputed one, checks every checkpoint's signature with v, that
// each checkpoint's root equals the recomputed root at its size, and the consistency proof
// between consecutive checkpoints. The first fault found comes back as a *FaultError naming
// the first bad record index: a changed byte, a deleted or a reordered record fails at the
// first index where it shows. Other errors are storage errors.
func Verify(ctx context.Context, st Storage, v note.Verifier) (VerifyReport, error) {
	var rep VerifyReport
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return rep, err
	}
	for _, c := range cps {
		if err := checkStoredCheckpoint(c, v); err != nil {
			return rep, &FaultError{Index: -1, Reason: fmt.Sprintf("checkpoint at size %d: %v", c.Size, err)}
		}
	}
	size, err := st.Size(ctx)
	if err != nil {
		return rep, err
	}

	var stack []tlog.Hash // roots of the complete subtrees on the right edge, left to right
	next := 0             // next checkpoint to compare
	// Read the next chunk while this one is hashed: both cores work.
	type chunk struct {
		c   leafChunk
		err error
	}
	chunks := make(chan chunk, 2)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(chunks)
		for start := int64(0); start < size; start += verifyChunk {
			var c leafChunk
			err := readLeaves(rctx, st, start, min(start+verifyChunk, size), &c)
			select {
			case chunks <- chunk{c, err}:
			case <-rctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for start := int64(0); start < size; start += verifyChunk {
		end := min(start+verifyChunk, size)
		c, ok := <-chunks
		if !ok {
			return rep, ctx.Err()
		}
		if c.err != nil {
			return rep, c.err
		}
		recs := &c.c
		for i := range end - start {
			n := start + i
			if int(i) >= len(recs.idx) || recs.idx[i] != n {
				return rep, &FaultError{Index: n, Reason: "record missing (deleted, or indexes renumbered)"}
			}
			leaf := tlog.RecordHash(recs.data[i])
			stack = append(stack, leaf)
			want := []tlog.Hash{leaf}
			// SHA256(0x01 || left || right) for each subtree that record n completes.
			for l := 0; (n>>l)&1 == 1; l++ {
				k := len(stack)
				h := tlog.NodeHash(stack[k-2], stack[k-1])
				stack = append(stack[:k-2], h)
				want = append(want, h)
			}
			got := recs.hashes[i]
			if len(got) != len(want)*tlog.HashSize {
				return rep, &FaultError{Index: n, Reason: fmt.Sprintf("record has %d bytes of stored hashes, want %d", len(got), len(want)*tlog.HashSize)}
			}
			for l, h := range want {
				if tlog.Hash(got[l*tlog.HashSize:(l+1)*tlog.HashSize]) != h {
					if l == 0 {
						return rep, &FaultError{Index: n, Reason: "event bytes do not match the stored record hash (changed or reordered)"}
					}
					return rep, &FaultError{Index: n, Reason: fmt.Sprintf("stored hash at level %d differs from the recomputed tree", l)}
				}
			}
			for next < len(cps) && cps[next].Size == n+1 {
				if root := rootOf(stack); root != cps[next].Root {
					return rep, &FaultError{Index: n, Reason: fmt.Sprintf("recomputed root at size %d differs from the signed checkpoint", n+1)}
				}
				next++
			}
		}
	}
	for next < len(cps) && cps[next].Size == 0 {
		next++
	}
	if len(cps) > 0 && cps[len(cps)-1].Size > size {
		return rep, &FaultError{Index: size, Reason: fmt.Sprintf("log has %d records but a checkpoint covers %d (records deleted)", size, cps[len(cps)-1].Size)}
	}
	if next != len(cps) {
		return rep, &FaultError{Index: -1, Reason: fmt.Sprintf("checkpoint at size %d not reached", cps[next].Size)}
	}
	// Consistency between consecutive checkpoints (RFC 6962 section 2.1.2), proven from
	// the stored hashes that the loop above has just checked.
	r := hashReader(ctx, st)
	for i := 1; i < len(cps); i++ {
		old, cur := cps[i-1], cps[i]
		if old.Size == 0 {
			continue
		}
		p, err := tlog.ProveTree(cur.Size, old.Size, r)
		if err != nil {
			return rep, fmt.Errorf("audit: consistency proof %d→%d: %w", old.Size, cur.Size, err)
		}
		if err := tlog.CheckTree(p, cur.Size, cur.Root, old.Size, old.Root); err != nil {
			return rep, &FaultError{Index: -1, Reason: fmt.Sprintf("checkpoints at sizes %d and %d are not consistent: %v", old.Size, cur.Size, err)}
		}
	}
	rep.Size = size
	rep.Root = rootOf(stack)
	rep.Checkpoints = len(cps)
	return rep, nil
}

// rootOf folds the right-edge subtree roots into the tree hash (RFC 6962 MTH): from the
// right, h = SHA256(0x01 || left || h).
func rootOf(stack []tlog.Hash) tlog.Hash {
	if len(stack) == 0 {
		return tlog.Hash{} // as tlog.TreeHash(0)
	}
	h := stack[len(stack)-1]
	for i := len(stack) - 2; i >= 0; i-- {
		h = tlog.NodeHash(stack[i], h)
	}
	return h
}

// IsFault reports whether err is a *FaultError, and returns it.
func IsFault(err error) (*FaultError, bool) {
	var fe *FaultError
	ok := errors.As(err, &fe)
	return fe, ok
}

// leafChunk is what Verify reads of records [start, end): index, canonical bytes and the
// stored hashes as one byte string, all slices into one arena.
type leafChunk struct {
	idx    []int64
	data   [][]byte
	hashes [][]byte
	arena  []byte
}

func (c *leafChunk) add(idx int64, data, hashes []byte) {
	a := len(c.arena)
	c.arena = append(c.arena, data...)
	c.arena = append(c.arena, hashes...)
	c.idx = append(c.idx, idx)
	// Re-slice after the loop: the arena may move while it grows.
	c.data = append(c.data, c.arena[a:a+len(data):a+len(data)])
	c.hashes = append(c.hashes, c.arena[a+len(data):a+len(data)+len(hashes)])
}

// fix re-points every slice into the final arena.
func (c *leafChunk) fix(lens [][2]int) {
	off := 0
	for i, l := range lens {
		c.data[i] = c.arena[off : off+l[0] : off+l[0]]
		c.hashes[i] = c.arena[off+l[0] : off+l[0]+l[1] : off+l[0]+l[1]]
		off += l[0] + l[1]
	}
}

// leafScanner is an optional Storage capability: stream the canonical bytes and stored
// hashes of records [start, end) in index order without a copy per row.
type leafScanner interface {
	scanLeaves(ctx context.Context, start, end int64, fn func(idx int64, data, hashes []byte)) error
}

func readLeaves(ctx context.Context, st Storage, start, end int64, c *leafChunk) error {
	var lens [][2]int
	add := func(idx int64, data, hashes []byte) {
		c.add(idx, data, hashes)
		lens = append(lens, [2]int{len(data), len(hashes)})
	}
	if ls, ok := st.(leafScanner); ok {
		c.arena = make([]byte, 0, int(end-start)*1024)
		if err := ls.scanLeaves(ctx, start, end, add); err != nil {
			return err
		}
	} else {
		recs, err := st.Records(ctx, start, end)
		if err != nil {
			return err
		}
		for _, r := range recs {
			var hs []byte
			for _, h := range r.Hashes {
				hs = append(hs, h[:]...)
			}
			add(r.Index, r.Data, hs)
		}
	}
	c.fix(lens)
	return nil
}
