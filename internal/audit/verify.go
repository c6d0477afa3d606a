package audit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Fault codes name what kind of fault Verify found (FaultError.Code).
const (
	FaultRecordChanged     = "record_changed"     // event bytes or stored hashes differ from the tree
	FaultRecordMissing     = "record_missing"     // a record deleted from the middle, or renumbered
	FaultNotEvent          = "not_an_event"       // stored bytes are not a canonical event
	FaultColumnMismatch    = "column_mismatch"    // a filter column differs from the event's bytes
	FaultCheckpointInvalid = "checkpoint_invalid" // a signature or a stored checkpoint row is wrong
	FaultInconsistent      = "inconsistent"       // a checkpoint's root differs from the records
	FaultTruncated         = "truncated"          // the log is shorter than a witnessed or signed checkpoint
	FaultRolledBack        = "rolled_back"        // the log differs from a witnessed checkpoint at its size
	FaultCheckpointDeleted = "checkpoint_deleted" // a witnessed checkpoint is missing from the database
	FaultUnwitnessed       = "unwitnessed"        // records no witness has seen, past the allowed delay
	FaultNoCheckpoint      = "no_checkpoint"      // events old enough to be covered, and no checkpoint
	FaultQuorum            = "quorum"             // fewer witnesses vouch for the log than required
)

// FaultError is what Verify returns when the log is not intact. Index is the first record
// index at which the log is wrong, or -1 when the fault is not in one record. Code is one
// of the Fault* constants.
type FaultError struct {
	Index  int64
	Code   string
	Reason string
}

func (e *FaultError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("audit: log fault (%s): %s", e.Code, e.Reason)
	}
	return fmt.Sprintf("audit: log fault (%s) at index %d: %s", e.Code, e.Index, e.Reason)
}

func fault(idx int64, code, format string, a ...any) *FaultError {
	return &FaultError{Index: idx, Code: code, Reason: fmt.Sprintf(format, a...)}
}

// VerifyReport summarizes a successful Verify.
type VerifyReport struct {
	Size        int64     // records checked
	Root        tlog.Hash // root of the whole log
	Checkpoints int       // signed checkpoints checked
	// Witnessed is the largest checkpoint size a witness vouched for (Anchors), and
	// Witnesses the names of the witnesses whose newest checkpoint was checked.
	Witnessed   int64
	WitnessTime time.Time // newest cosignature time among the anchors
	Witnesses   []string
	// Uncovered is how many records at the end no signed (or, with anchors, witnessed)
	// checkpoint covers yet.
	Uncovered int64
}

// DefaultMaxUnwitnessed is VerifyOptions.MaxUnwitnessed's default: twice the server's
// default checkpoint interval (10 s) plus 30 s for a witness round trip.
const DefaultMaxUnwitnessed = 50 * time.Second

// VerifyOptions configures VerifyWith.
type VerifyOptions struct {
	// Verifiers are the log's checkpoint keys (DATA_DIR/audit/verifier.key); at least one.
	// Every stored checkpoint must be signed by one of them.
	Verifiers []note.Verifier
	// Witnesses are the witness keys trusted to cosign (NewCosignatureVerifier).
	Witnesses []note.Verifier
	// Quorum is how many distinct witnesses must vouch, through Anchors, for a checkpoint
	// of this log; 0 means all of Witnesses.
	Quorum int
	// Anchors are cosigned checkpoints taken from outside the log's database: each
	// witness's newest one for this log (tlog-witness GET, or a file). They decide what the
	// log must at least contain, so deleting records and checkpoints from the database
	// cannot hide a truncation.
	Anchors []Anchor
	// MaxUnwitnessed: with Anchors, records beyond the largest witnessed checkpoint fail
	// when the newest cosignature is older than this (the server stopped checkpointing,
	// or cannot reach its witnesses, or the checkpoints that covered them were cut off).
	// Without Witnesses: a log with events older than this and no checkpoint at all
	// fails. Default DefaultMaxUnwitnessed.
	MaxUnwitnessed time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Anchor is a cosigned checkpoint and where it came from (for messages).
type Anchor struct {
	Source string
	Note   []byte
}

// verifyChunk is how many records Verify reads per query.
const verifyChunk = 8192

// Verify is VerifyWith with one log key and no witnesses.
func Verify(ctx context.Context, st Storage, v note.Verifier) (VerifyReport, error) {
	return VerifyWith(ctx, st, VerifyOptions{Verifiers: []note.Verifier{v}})
}

// witnessed is one witness's newest checkpoint of the log.
type witnessed struct {
	witness, source string
	size            int64
	root            tlog.Hash
	time            time.Time
}

// VerifyWith checks the whole log in st without trusting any stored hash or column: it
// recomputes the RFC 6962 tree from the canonical bytes of every record in index order,
// compares each stored tlog hash with the recomputed one and each filter column with the
// event's bytes, checks every checkpoint's signature, that each checkpoint's root equals
// the recomputed root at its size, and the consistency proof between consecutive
// checkpoints. With witnesses it also checks the anchors: the log must reach every
// witnessed size with the witnessed root, and the database must still hold each witnessed
// checkpoint. The first fault found comes back as a *FaultError naming the first bad
// record index where there is one. Other errors are storage errors.
func VerifyWith(ctx context.Context, st Storage, o VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	if len(o.Verifiers) == 0 {
		return rep, errors.New("audit: verify needs the log's verifier key")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxUnwitnessed <= 0 {
		o.MaxUnwitnessed = DefaultMaxUnwitnessed
	}
	if o.Quorum <= 0 || o.Quorum > len(o.Witnesses) {
		o.Quorum = len(o.Witnesses)
	}
	// Anchors first: the log only grows, so what is read after them covers them.
	anchors, err := openAnchors(o)
	if err != nil {
		return rep, err
	}
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return rep, err
	}
	for _, c := range cps {
		if err := checkStoredCheckpoint(c, o.Verifiers); err != nil {
			return rep, fault(-1, FaultCheckpointInvalid, "checkpoint at size %d: %v", c.Size, err)
		}
	}
	if err := checkStoredCosignatures(ctx, st, cps, o); err != nil {
		return rep, err
	}
	size, err := st.Size(ctx)
	if err != nil {
		return rep, err
	}
	for _, a := range anchors {
		if a.size > size {
			return rep, fault(size, FaultTruncated, "log truncated: witness %s cosigned a checkpoint of size %d at %s (from %s) but the log has %d records: records %d..%d were deleted, or the database was rolled back to an older state",
				a.witness, a.size, a.time.Format(time.RFC3339), a.source, size, size, a.size-1)
		}
	}
	// Roots the walk must meet: every stored checkpoint (size 0 is the empty tree's root,
	// checked here, not in the walk) and every anchor.
	type expect struct {
		root   tlog.Hash
		anchor *witnessed
	}
	want := map[int64][]expect{}
	zero := emptyRoot()
	for _, c := range cps {
		if c.Size == 0 {
			if c.Root != zero {
				return rep, fault(-1, FaultInconsistent, "checkpoint at size 0 signs a root other than the empty tree's")
			}
			continue
		}
		want[c.Size] = append(want[c.Size], expect{root: c.Root})
	}
	for i := range anchors {
		a := &anchors[i]
		if a.size == 0 {
			if a.root != zero {
				return rep, fault(-1, FaultRolledBack, "witness %s cosigned a checkpoint at size 0 with a root other than the empty tree's", a.witness)
			}
			continue
		}
		want[a.size] = append(want[a.size], expect{root: a.root, anchor: a})
	}

	var stack []tlog.Hash          // roots of the complete subtrees on the right edge, left to right
	oldest := int64(math.MaxInt64) // the oldest event time, from the bytes (columns checked)
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
				return rep, fault(n, FaultRecordMissing, "record missing (deleted, or indexes renumbered)")
			}
			leaf := tlog.RecordHash(recs.data(int(i)))
			stack = append(stack, leaf)
			hs := []tlog.Hash{leaf}
			// SHA256(0x01 || left || right) for each subtree that record n completes.
			for l := 0; (n>>l)&1 == 1; l++ {
				k := len(stack)
				h := tlog.NodeHash(stack[k-2], stack[k-1])
				stack = append(stack[:k-2], h)
				hs = append(hs, h)
			}
			got := recs.hashes(int(i))
			if len(got) != len(hs)*tlog.HashSize {
				return rep, fault(n, FaultRecordChanged, "record has %d bytes of stored hashes, want %d", len(got), len(hs)*tlog.HashSize)
			}
			for l, h := range hs {
				if tlog.Hash(got[l*tlog.HashSize:(l+1)*tlog.HashSize]) != h {
					if l == 0 {
						return rep, fault(n, FaultRecordChanged, "event bytes do not match the stored record hash (changed or reordered)")
					}
					return rep, fault(n, FaultRecordChanged, "stored hash at level %d differs from the recomputed tree", l)
				}
			}
			sc := recs.columns(int(i))
			switch col, err := sc.check(recs.data(int(i))); {
			case err != nil:
				return rep, fault(n, FaultNotEvent, "record is not a canonical event: %v", err)
			case col != "":
				return rep, fault(n, FaultColumnMismatch, "the %s column differs from the event's bytes (edited behind the log: queries on it would be wrong)", col)
			}
			oldest = min(oldest, sc.timeNS)
			for _, e := range want[n+1] {
				if root := rootOf(stack); root != e.root {
					if e.anchor != nil {
						return rep, fault(n, FaultRolledBack, "the log's root at size %d differs from the one witness %s cosigned at %s: the log was rolled back to an older state and rewritten, or forked",
							n+1, e.anchor.witness, e.anchor.time.Format(time.RFC3339))
					}
					return rep, fault(n, FaultInconsistent, "recomputed root at size %d differs from the signed checkpoint", n+1)
				}
			}
		}
	}
	if len(cps) > 0 && cps[len(cps)-1].Size > size {
		last := cps[len(cps)-1]
		return rep, fault(size, FaultTruncated, "log truncated: it has %d records but a signed checkpoint covers %d (records deleted)", size, last.Size)
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
			return rep, fault(-1, FaultInconsistent, "checkpoints at sizes %d and %d are not consistent: %v", old.Size, cur.Size, err)
		}
	}
	// Every witnessed checkpoint must still be in the database: the server stores a
	// checkpoint before it asks a witness to cosign it.
	stored := map[int64]bool{}
	for _, c := range cps {
		stored[c.Size] = true
	}
	for _, a := range anchors {
		if !stored[a.size] {
			return rep, fault(-1, FaultCheckpointDeleted, "checkpoint deleted: witness %s cosigned the checkpoint of size %d at %s but the database has no checkpoint of that size (%d checkpoints left)",
				a.witness, a.size, a.time.Format(time.RFC3339), len(cps))
		}
	}
	rep.Size = size
	rep.Root = rootOf(stack)
	rep.Checkpoints = len(cps)
	covered := int64(0)
	if len(cps) > 0 {
		covered = cps[len(cps)-1].Size
	}
	now := o.Now()
	if len(o.Witnesses) > 0 {
		var newest witnessed
		for _, a := range anchors {
			rep.Witnesses = append(rep.Witnesses, a.witness)
			rep.Witnessed = max(rep.Witnessed, a.size)
			if a.time.After(newest.time) {
				newest = a
			}
		}
		rep.WitnessTime = newest.time
		covered = rep.Witnessed
		if size > covered && now.Sub(newest.time) > o.MaxUnwitnessed {
			return rep, fault(covered, FaultUnwitnessed, "records %d..%d are not covered by any witnessed checkpoint and the newest cosignature is from %s (%s ago, more than %s): the server stopped checkpointing or cannot reach its witnesses",
				covered, size-1, newest.time.Format(time.RFC3339), now.Sub(newest.time).Round(time.Second), o.MaxUnwitnessed)
		}
	} else if len(cps) == 0 && size > 0 && now.Sub(time.Unix(0, oldest)) > o.MaxUnwitnessed {
		return rep, fault(0, FaultNoCheckpoint, "%d events, the oldest from %s, and no signed checkpoint in the database: checkpoints deleted, or the server never ran its checkpointer",
			size, time.Unix(0, oldest).UTC().Format(time.RFC3339))
	}
	rep.Uncovered = size - covered
	return rep, nil
}

// openAnchors checks each anchor's signatures: the log's key (origin line = key name)
// and at least one trusted witness. It returns each witness's newest checkpoint and
// fails when fewer than o.Quorum witnesses vouch.
func openAnchors(o VerifyOptions) ([]witnessed, error) {
	if len(o.Witnesses) == 0 {
		return nil, nil
	}
	known := note.VerifierList(append(append([]note.Verifier{}, o.Verifiers...), o.Witnesses...)...)
	newest := map[string]witnessed{} // by witness name + key hash
	for _, a := range o.Anchors {
		n, err := note.Open(a.Note, known)
		if err != nil {
			return nil, fault(-1, FaultCheckpointInvalid, "witnessed checkpoint from %s does not verify: %v", a.Source, err)
		}
		origin, size, root, err := parseCheckpointText(n.Text)
		if err != nil {
			return nil, fault(-1, FaultCheckpointInvalid, "witnessed checkpoint from %s: %v", a.Source, err)
		}
		byLog := false
		for _, s := range n.Sigs {
			for _, v := range o.Verifiers {
				if s.Name == v.Name() && s.Hash == v.KeyHash() && origin == v.Name() {
					byLog = true
				}
			}
		}
		if !byLog {
			return nil, fault(-1, FaultCheckpointInvalid, "witnessed checkpoint from %s is not signed by this log's key (origin %q)", a.Source, origin)
		}
		for _, s := range n.Sigs {
			if !isWitnessSig(s, o.Witnesses) {
				continue
			}
			t, err := CosignatureTime(s)
			if err != nil {
				return nil, fault(-1, FaultCheckpointInvalid, "witnessed checkpoint from %s: %v", a.Source, err)
			}
			k := fmt.Sprintf("%s+%08x", s.Name, s.Hash)
			w := witnessed{witness: s.Name, source: a.Source, size: size, root: root, time: t}
			if old, ok := newest[k]; !ok || size > old.size || size == old.size && t.After(old.time) {
				newest[k] = w
			}
		}
	}
	if len(newest) < o.Quorum {
		names := make([]string, 0, len(newest))
		for _, w := range newest {
			names = append(names, w.witness)
		}
		sort.Strings(names)
		return nil, fault(-1, FaultQuorum, "only %d of the %d trusted witnesses vouch for a checkpoint of this log (%s), %d required",
			len(newest), len(o.Witnesses), strings.Join(names, ", "), o.Quorum)
	}
	out := make([]witnessed, 0, len(newest))
	for _, w := range newest {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].size > out[j].size })
	return out, nil
}

func isWitnessSig(s note.Signature, ws []note.Verifier) bool {
	for _, w := range ws {
		if s.Name == w.Name() && s.Hash == w.KeyHash() {
			return true
		}
	}
	return false
}

// checkStoredCosignatures checks the cosignatures kept beside each checkpoint that come
// from a trusted witness: a stored cosignature that does not verify was edited.
func checkStoredCosignatures(ctx context.Context, st Storage, cps []Checkpoint, o VerifyOptions) error {
	if len(o.Witnesses) == 0 {
		return nil
	}
	all, err := st.Cosignatures(ctx, -1)
	if err != nil {
		return err
	}
	known := note.VerifierList(append(append([]note.Verifier{}, o.Verifiers...), o.Witnesses...)...)
	for _, c := range cps {
		var mine []Cosignature
		for _, cs := range all[c.Size] {
			if isWitnessSig(cs.Sig, o.Witnesses) {
				mine = append(mine, cs)
			}
		}
		if len(mine) == 0 {
			continue
		}
		if _, err := note.Open(WithCosignatures(c.Note, mine), known); err != nil {
			return fault(-1, FaultCheckpointInvalid, "stored cosignatures of the checkpoint at size %d do not verify: %v", c.Size, err)
		}
	}
	return nil
}

// rootOf folds the right-edge subtree roots into the tree hash (RFC 6962 MTH): from the
// right, h = SHA256(0x01 || left || h).
func rootOf(stack []tlog.Hash) tlog.Hash {
	if len(stack) == 0 {
		return emptyRoot()
	}
	h := stack[len(stack)-1]
	for i := len(stack) - 2; i >= 0; i-- {
		h = tlog.NodeHash(stack[i], h)
	}
	return h
}

// emptyRoot is the root of the empty tree, SHA-256("") (RFC 6962 section 2.1).
func emptyRoot() tlog.Hash {
	h, _ := tlog.TreeHash(0, nil)
	return h
}

// IsFault reports whether err is a *FaultError, and returns it.
func IsFault(err error) (*FaultError, bool) {
	var fe *FaultError
	ok := errors.As(err, &fe)
	return fe, ok
}

// leafChunk is what Verify reads of records [start, end): per record its index, event
// time column, and ten byte strings — canonical bytes, stored hashes, and the eight text
// filter columns (storedColumns order) — all slices into one arena.
type leafChunk struct {
	idx    []int64
	timeNS []int64
	lens   [][leafPieces]int
	piece  [][leafPieces][]byte // set by fix
	arena  []byte
}

const leafPieces = 10

func (c *leafChunk) add(idx int64, data, hashes []byte, sc *storedColumns) {
	var l [leafPieces]int
	for i, p := range [leafPieces][]byte{data, hashes, sc.id, sc.kind, sc.workflow, sc.caller, sc.callee, sc.decision, sc.action, sc.reason} {
		c.arena = append(c.arena, p...)
		l[i] = len(p)
	}
	c.idx = append(c.idx, idx)
	c.timeNS = append(c.timeNS, sc.timeNS)
	c.lens = append(c.lens, l)
}

// fix points every piece into the final arena (it may have moved while it grew).
func (c *leafChunk) fix() {
	c.piece = make([][leafPieces][]byte, len(c.lens))
	off := 0
	for i, l := range c.lens {
		for j, n := range l {
			c.piece[i][j] = c.arena[off : off+n : off+n]
			off += n
		}
	}
}

func (c *leafChunk) data(i int) []byte   { return c.piece[i][0] }
func (c *leafChunk) hashes(i int) []byte { return c.piece[i][1] }

func (c *leafChunk) columns(i int) storedColumns {
	p := &c.piece[i]
	return storedColumns{id: p[2], kind: p[3], workflow: p[4], caller: p[5], callee: p[6], decision: p[7],
		action: p[8], reason: p[9], timeNS: c.timeNS[i]}
}

// leafScanner is an optional Storage capability: stream the canonical bytes and stored
// hashes of records [start, end) in index order without a copy per row.
type leafScanner interface {
	scanLeaves(ctx context.Context, start, end int64, fn func(idx int64, data, hashes []byte, c *storedColumns)) error
}

func readLeaves(ctx context.Context, st Storage, start, end int64, c *leafChunk) error {
	if ls, ok := st.(leafScanner); ok {
		c.arena = make([]byte, 0, int(end-start)*1024)
		if err := ls.scanLeaves(ctx, start, end, c.add); err != nil {
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
			e := &r.Entry
			c.add(r.Index, r.Data, hs, &storedColumns{id: []byte(e.ID), kind: []byte(e.Kind), workflow: []byte(e.Workflow),
				caller: []byte(e.Caller), callee: []byte(e.Callee), decision: []byte(e.Decision), action: []byte(e.Action),
				reason: []byte(e.Reason), timeNS: e.Time.UnixNano()})
		}
	}
	c.fix()
	return nil
}
