package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Config configures Open.
type Config struct {
	// Storage keeps the log: NewSQLite or NewPostgres. Required.
	Storage Storage
	// Signer signs checkpoints (LoadOrCreateKeys). Without one, Checkpoint fails and no
	// periodic checkpoints are made (a gate's or a read-only tool's log).
	Signer note.Signer
	// CheckpointInterval: sign a checkpoint this often when the log grew; 0 = only on
	// demand (Checkpoint, and Proof of a record no checkpoint covers yet).
	CheckpointInterval time.Duration
	// MaxBatch bounds how many appends share one transaction; default 512.
	MaxBatch int
	// Linger is how long the committer waits for more appends before committing a batch
	// that is not full; default 0 (commit at once; batches still form while a commit is
	// in flight).
	Linger time.Duration
	// Logger receives errors of the periodic checkpointer; nil discards them (the
	// global default logger is never used).
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Witnesses cosign every checkpoint Checkpoint signs or returns (internal/witness
	// clients, C2SP tlog-witness); their cosignatures are stored beside the checkpoint.
	// A witness that fails is logged and asked again at the next checkpoint.
	Witnesses []Cosigner
}

// Cosigner asks one witness to cosign a checkpoint, proving consistency with prove(old)
// from the size the witness holds (internal/witness.Client).
type Cosigner interface {
	Name() string
	Cosign(ctx context.Context, cp Checkpoint, prove func(old int64) (tlog.TreeProof, error)) ([]Cosignature, error)
}

// Receipt acknowledges a durable append.
type Receipt struct {
	Index int64
	ID    string
}

// Log is the append-only audit log: a tlog Merkle tree over canonical events, with group
// commit and signed checkpoints. Its methods are safe for concurrent use.
type Log struct {
	cfg  Config
	reqs chan *appendReq
	done chan struct{}
	// exited is closed when the committer has returned: no reply comes after it.
	exited chan struct{}
	stop   sync.Once
	wg     sync.WaitGroup
	cpMu   sync.Mutex
}

type appendReq struct {
	entry Entry
	reply chan appendResult
}

type appendResult struct {
	idx int64
	err error
}

// Open starts a log on cfg.Storage. Close stops it.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if cfg.Storage == nil {
		return nil, errors.New("audit: Config.Storage is required")
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := cfg.Storage.Size(ctx); err != nil {
		return nil, err
	}
	l := &Log{cfg: cfg, reqs: make(chan *appendReq, cfg.MaxBatch), done: make(chan struct{}), exited: make(chan struct{})}
	if cfg.Signer != nil && cfg.CheckpointInterval > 0 {
		// A checkpoint before the first append: whatever a previous run left uncovered is
		// covered now, and a log with records but no checkpoint at all can only be one
		// whose checkpoints were deleted. The witnesses see it in the loop's first tick.
		if _, err := l.sign(ctx); err != nil {
			return nil, err
		}
	}
	l.wg.Add(1)
	go l.commitLoop()
	if cfg.Signer != nil && cfg.CheckpointInterval > 0 {
		l.wg.Add(1)
		go l.checkpointLoop()
	}
	return l, nil
}

// Close stops the log. Appends waiting for a commit that has not started fail with
// ErrClosed; a batch being committed finishes first.
func (l *Log) Close() error {
	l.stop.Do(func() { close(l.done) })
	l.wg.Wait()
	return nil
}

// Append validates ev, stores its canonical bytes and returns once the transaction
// holding it is durable. Concurrent Appends share transactions (group commit). Appending
// an event whose id is logged already returns the existing receipt when the canonical
// bytes are equal and ErrConflict otherwise. Errors: ErrInvalidEvent, ErrConflict,
// ErrClosed, the context's error (the event may then still be committed), storage errors.
func (l *Log) Append(ctx context.Context, ev Event) (Receipt, error) {
	rs, err := l.AppendAll(ctx, []Event{ev})
	if err != nil {
		return Receipt{}, err
	}
	return rs[0], nil
}

// AppendAll appends evs in their order (they take consecutive or at least increasing
// indexes relative to each other) and returns once all are durable, with the first
// error. It is Append for a batch, such as one shipped from a gate's spool.
func (l *Log) AppendAll(ctx context.Context, evs []Event) ([]Receipt, error) {
	reqs := make([]*appendReq, len(evs))
	for i := range evs {
		data, err := evs[i].Canonical()
		if err != nil {
			return nil, err
		}
		evs[i].Time = evs[i].Time.UTC()
		reqs[i] = &appendReq{entry: entryOf(&evs[i], data), reply: make(chan appendResult, 1)}
	}
	select {
	case <-l.done:
		return nil, ErrClosed
	default:
	}
	for _, r := range reqs { // one sender, in order: the committer takes them in this order
		select {
		case l.reqs <- r:
		case <-l.done:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	out := make([]Receipt, len(reqs))
	var first error
	for i, r := range reqs {
		res, err := l.wait(ctx, r)
		if err != nil && first == nil {
			first = err
		}
		out[i] = Receipt{Index: res.idx, ID: evs[i].ID}
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

func (l *Log) wait(ctx context.Context, r *appendReq) (appendResult, error) {
	select {
	case res := <-r.reply:
		return res, res.err
	case <-l.exited:
		select {
		case res := <-r.reply:
			return res, res.err
		default:
			return appendResult{}, ErrClosed
		}
	case <-ctx.Done():
		return appendResult{}, ctx.Err()
	}
}

func (l *Log) commitLoop() {
	defer l.wg.Done()
	defer close(l.exited)
	batch := make([]*appendReq, 0, l.cfg.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		case <-l.done:
			l.failPending()
			return
		}
		var linger <-chan time.Time
		var timer *time.Timer
		if l.cfg.Linger > 0 {
			timer = time.NewTimer(l.cfg.Linger)
			linger = timer.C
		}
	fill:
		for len(batch) < l.cfg.MaxBatch {
			if linger == nil {
				select {
				case r := <-l.reqs:
					batch = append(batch, r)
				default:
					break fill
				}
				continue
			}
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
			case <-linger:
				break fill
			}
		}
		if timer != nil {
			timer.Stop()
		}
		l.commit(batch)
	}
}

func (l *Log) commit(batch []*appendReq) {
	entries := make([]Entry, len(batch))
	for i, r := range batch {
		entries[i] = r.entry
	}
	// A batch in flight is finished even when Close is called meanwhile.
	res, err := l.cfg.Storage.AppendBatch(context.Background(), entries)
	for i, r := range batch {
		if err != nil {
			r.reply <- appendResult{err: err}
		} else {
			r.reply <- appendResult{idx: res[i].Index, err: res[i].Err}
		}
	}
}

func (l *Log) failPending() {
	for {
		select {
		case r := <-l.reqs:
			r.reply <- appendResult{err: ErrClosed}
		default:
			return
		}
	}
}

// checkpointLoop has the witnesses cosign the checkpoint Open signed, then signs one every
// CheckpointInterval, and a last one when the log closes.
// Each goes to the witnesses, also when the log did not grow: the witness's newer
// timestamp tells an auditor that nothing was appended and left unwitnessed meanwhile.
func (l *Log) checkpointLoop() {
	defer l.wg.Done()
	timeout := max(l.cfg.CheckpointInterval, 10*time.Second)
	tick := func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if _, err := l.Checkpoint(ctx); err != nil {
			l.cfg.Logger.Error("audit: periodic checkpoint", "err", err)
		}
	}
	tick()
	t := time.NewTicker(l.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			tick()
			return
		case <-t.C:
			tick()
		}
	}
}

// Checkpoint signs and stores a checkpoint of the log as it is now and returns it. When
// the latest stored checkpoint already covers the current size it is returned instead.
// With Witnesses, the checkpoint is then submitted to each (concurrently) and their
// cosignatures stored; a witness failure is logged, not returned: the checkpoint stands.
func (l *Log) Checkpoint(ctx context.Context) (Checkpoint, error) {
	cp, err := l.sign(ctx)
	if err != nil || len(l.cfg.Witnesses) == 0 {
		return cp, err
	}
	l.cosign(ctx, cp)
	return cp, nil
}

func (l *Log) sign(ctx context.Context) (Checkpoint, error) {
	if l.cfg.Signer == nil {
		return Checkpoint{}, errors.New("audit: no checkpoint signer configured")
	}
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	st := l.cfg.Storage
	size, err := st.Size(ctx)
	if err != nil {
		return Checkpoint{}, err
	}
	latest, err := st.LatestCheckpoint(ctx)
	if err == nil && latest.Size >= size {
		return latest, nil
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return Checkpoint{}, err
	}
	root, err := tlog.TreeHash(size, hashReader(ctx, st))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: tree hash at %d: %w", size, err)
	}
	c, err := signCheckpoint(l.cfg.Signer, size, root, l.cfg.Now())
	if err != nil {
		return Checkpoint{}, err
	}
	if err := st.PutCheckpoint(ctx, c); err != nil {
		return Checkpoint{}, err
	}
	return c, nil
}

// Lookup returns the record of the event with this id, or ErrNotFound.
func (l *Log) Lookup(ctx context.Context, id string) (Record, error) {
	return l.cfg.Storage.Lookup(ctx, id)
}

// cosign asks every witness to cosign cp and stores what they return.
func (l *Log) cosign(ctx context.Context, cp Checkpoint) {
	st := l.cfg.Storage
	prove := func(old int64) (tlog.TreeProof, error) {
		return tlog.ProveTree(cp.Size, old, hashReader(ctx, st))
	}
	var wg sync.WaitGroup
	for _, w := range l.cfg.Witnesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, err := w.Cosign(ctx, cp, prove)
			if err == nil {
				err = st.PutCosignatures(ctx, cp.Size, cs)
			}
			var ahead interface{ WitnessSize() int64 }
			if errors.As(err, &ahead) {
				if size, serr := st.Size(ctx); serr == nil && size >= ahead.WitnessSize() {
					// Another replica had a larger checkpoint cosigned: the next one covers it.
					l.cfg.Logger.Debug("audit: witness is ahead of this checkpoint", "witness", w.Name(), "size", cp.Size, "witness_size", ahead.WitnessSize())
					return
				}
				l.cfg.Logger.Error("audit: a witness holds a larger checkpoint than the log: the log was truncated or rolled back", "witness", w.Name(), "witness_size", ahead.WitnessSize(), "err", err)
				return
			}
			if err != nil {
				l.cfg.Logger.Error("audit: witness did not cosign", "witness", w.Name(), "size", cp.Size, "err", err)
			}
		}()
	}
	wg.Wait()
}

// InclusionProof shows that the event with ID is record Index of the tree signed in
// Checkpoint (RFC 6962 audit path, tlog.RecordProof).
type InclusionProof struct {
	Index      int64            `json:"index"`
	ID         string           `json:"id"`
	Event      []byte           `json:"-"` // canonical bytes
	RecordHash tlog.Hash        `json:"record_hash"`
	TreeSize   int64            `json:"tree_size"`
	Root       tlog.Hash        `json:"root"`
	Proof      tlog.RecordProof `json:"proof"`
	Checkpoint string           `json:"checkpoint"` // the signed note
}

// Proof returns an inclusion proof of the event with this id against the latest
// checkpoint, signing a new checkpoint first when none covers the event yet (and a signer
// is configured). ErrNotFound when no event has the id or no checkpoint covers it.
func (l *Log) Proof(ctx context.Context, id string) (InclusionProof, error) {
	st := l.cfg.Storage
	rec, err := st.Lookup(ctx, id)
	if err != nil {
		return InclusionProof{}, err
	}
	cp, err := st.LatestCheckpoint(ctx)
	if (err != nil && errors.Is(err, ErrNotFound) || err == nil && cp.Size <= rec.Index) && l.cfg.Signer != nil {
		cp, err = l.Checkpoint(ctx)
	}
	if err != nil {
		return InclusionProof{}, err
	}
	if cp.Size <= rec.Index {
		return InclusionProof{}, fmt.Errorf("%w: no checkpoint covers record %d yet", ErrNotFound, rec.Index)
	}
	return proveIn(ctx, st, rec, cp)
}

// proveIn proves rec against cp; the checkpoint carries the witness cosignatures stored
// beside it, so the proof stands offline against the witnesses' keys too.
func proveIn(ctx context.Context, st Storage, rec Record, cp Checkpoint) (InclusionProof, error) {
	p, err := tlog.ProveRecord(cp.Size, rec.Index, hashReader(ctx, st))
	if err != nil {
		return InclusionProof{}, fmt.Errorf("audit: prove record %d: %w", rec.Index, err)
	}
	cs, err := st.Cosignatures(ctx, cp.Size)
	if err != nil {
		return InclusionProof{}, err
	}
	return InclusionProof{Index: rec.Index, ID: rec.ID, Event: rec.Data, RecordHash: tlog.RecordHash(rec.Data),
		TreeSize: cp.Size, Root: cp.Root, Proof: p, Checkpoint: string(WithCosignatures(cp.Note, cs[cp.Size]))}, nil
}

// VerifyInclusion checks p offline: the checkpoint is signed by v, and the record hash
// (of p.Event when present) is at p.Index of that tree.
func VerifyInclusion(p InclusionProof, v note.Verifier) error {
	size, root, err := OpenCheckpoint([]byte(p.Checkpoint), v)
	if err != nil {
		return err
	}
	if size != p.TreeSize || root != p.Root {
		return errors.New("audit: proof's tree does not match its checkpoint")
	}
	h := p.RecordHash
	if p.Event != nil {
		h = tlog.RecordHash(p.Event)
	}
	if err := tlog.CheckRecord(p.Proof, size, root, p.Index, h); err != nil {
		return fmt.Errorf("audit: inclusion proof: %w", err)
	}
	return nil
}

// Query returns the newest records matching f, oldest first (Storage.Query). The filter
// columns it selects on are verified by Verify; callers that must answer from verified
// bytes alone check each record's canonical bytes with f.Match.
func (l *Log) Query(ctx context.Context, f Filter) ([]Record, error) {
	return l.cfg.Storage.Query(ctx, f)
}

// ProveIndexes returns inclusion proofs of the records at indexes against one
// checkpoint that covers them all (signing one when none does yet and a signer is
// configured), and that checkpoint's note with the witness cosignatures stored beside
// it. ErrNotFound when no checkpoint covers them.
func (l *Log) ProveIndexes(ctx context.Context, indexes []int64) (Checkpoint, string, []tlog.RecordProof, error) {
	st := l.cfg.Storage
	var top int64 = -1
	for _, x := range indexes {
		top = max(top, x)
	}
	cp, err := st.LatestCheckpoint(ctx)
	if (err != nil && errors.Is(err, ErrNotFound) || err == nil && cp.Size <= top) && l.cfg.Signer != nil {
		cp, err = l.Checkpoint(ctx)
	}
	if err != nil {
		return Checkpoint{}, "", nil, err
	}
	if cp.Size <= top {
		return Checkpoint{}, "", nil, fmt.Errorf("%w: no checkpoint covers record %d yet", ErrNotFound, top)
	}
	proofs := make([]tlog.RecordProof, len(indexes))
	for i, x := range indexes {
		if proofs[i], err = tlog.ProveRecord(cp.Size, x, hashReader(ctx, st)); err != nil {
			return Checkpoint{}, "", nil, fmt.Errorf("audit: prove record %d: %w", x, err)
		}
	}
	cs, err := st.Cosignatures(ctx, cp.Size)
	if err != nil {
		return Checkpoint{}, "", nil, err
	}
	return cp, string(WithCosignatures(cp.Note, cs[cp.Size])), proofs, nil
}
