package audit

import (
	"context"
	"errors"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors callers tell apart with errors.Is.
var (
	// ErrNotFound: no event with that id, or no checkpoint yet.
	ErrNotFound = errors.New("audit: not found")
	// ErrConflict: an event with the same id but different bytes is already in the log.
	// (The same id with the same bytes is not an error: Append is idempotent, so a gate
	// may re-ship a batch whose acknowledgement it lost.)
	ErrConflict = errors.New("audit: id already logged with different content")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("audit: log closed")
)

// Entry is one event ready to be stored: its canonical bytes plus the columns that tail
// and search filter on (copies of fields inside Data; Verify re-derives each from Data and
// fails on any difference, see columns.go). EntryOf fills them.
type Entry struct {
	ID       string
	Data     []byte // canonical bytes (Event.Canonical)
	Kind     Kind
	Time     time.Time
	Workflow string
	Caller   string // caller SPIFFE ID, or Subject for lifecycle events
	Callee   string
	Decision string
	Action   string
	Reason   string

	leaf   tlog.Hash // tlog.RecordHash(Data), computed by Log.Append in the caller's goroutine
	hashed bool
}

// EntryOf returns the Entry of a valid event: its canonical bytes and filter columns.
func EntryOf(e Event) (Entry, error) {
	data, err := e.Canonical()
	if err != nil {
		return Entry{}, err
	}
	e.Time = e.Time.UTC()
	return entryOf(&e, data), nil
}

func entryOf(e *Event, data []byte) Entry {
	caller := e.Caller
	if caller == "" {
		caller = e.Subject
	}
	return Entry{ID: e.ID, Data: data, Kind: e.Kind, Time: e.Time, Workflow: e.WorkflowID,
		Caller: caller, Callee: e.Callee, Decision: e.Decision, Action: e.Action, Reason: e.Reason,
		leaf: tlog.RecordHash(data), hashed: true}
}

// Record is a stored Entry with its position in the log and its tlog stored hashes
// (tlog.StoredHashes of this record: the leaf hash, then one hash per subtree it
// completes, lowest level first).
type Record struct {
	Index  int64
	Hashes []tlog.Hash
	Entry
}

// Result is the outcome of one Entry of an AppendBatch: its index, or ErrConflict.
type Result struct {
	Index int64
	Err   error
}

// Checkpoint is a signed tree head: the log had Size records and root hash Root.
type Checkpoint struct {
	Size int64
	Root tlog.Hash
	Note []byte // the signed note (see checkpoint.go for its text)
	Time time.Time
}

// Cosignature is a witness's C2SP tlog-cosignature/v1 on the checkpoint of one size: the
// note signature (witness name, key hash, base64 of key hash || timestamp || Ed25519
// signature) and the time inside it. Verify checks it with the witness's key; the store
// keeps the newest one per witness key and checkpoint.
type Cosignature struct {
	Sig  note.Signature
	Time time.Time
}

// Filter selects records for Query. Empty fields match everything.
type Filter struct {
	Workflow string
	Agent    string // matches the caller, the callee or a lifecycle event's subject
	Decision string
	Kind     Kind
	Action   string
	Reason   string
	From     time.Time // only events with time >= From (zero: no bound)
	To       time.Time // only events with time < To (zero: no bound)
	Since    int64     // only records with Index >= Since
	Before   int64     // only records with Index < Before; 0 means no bound
	Limit    int       // newest Limit records; 0 means 100
}

// Match reports whether the event ev (decoded from a record's canonical bytes) passes the
// field filters of f; the index bounds and Limit are not checked. Search uses it to
// answer only from verified bytes, whatever the filter columns say.
func (f Filter) Match(ev *Event) bool {
	subject := ev.Caller
	if subject == "" {
		subject = ev.Subject
	}
	t := ev.Time.UTC()
	return (f.Workflow == "" || ev.WorkflowID == f.Workflow) &&
		(f.Agent == "" || subject == f.Agent || ev.Callee == f.Agent) &&
		(f.Decision == "" || ev.Decision == f.Decision) &&
		(f.Kind == "" || ev.Kind == f.Kind) &&
		(f.Action == "" || ev.Action == f.Action) &&
		(f.Reason == "" || ev.Reason == f.Reason) &&
		(f.From.IsZero() || !t.Before(f.From)) &&
		(f.To.IsZero() || t.Before(f.To))
}

// Storage is where a log keeps its records, tlog stored hashes and checkpoints. Each
// record's stored hashes live in its own row, so an append writes one row per event. NewSQLite
// and NewPostgres return the two implementations; both take an already-open *sql.DB that
// other tables may share, and create and migrate only tables named audit_*.
//
// Every method is safe for concurrent use, also by several processes on one database:
// AppendBatch serializes writers (SQLite BEGIN IMMEDIATE, PostgreSQL advisory lock) and
// reads the current size inside its transaction.
type Storage interface {
	// AppendBatch appends the entries at consecutive indexes in one transaction that is
	// durable when it returns nil, storing for each the tlog stored hashes
	// (tlog.StoredHashes). An entry whose ID is already stored yields that record's index
	// when the bytes are equal and ErrConflict in its Result otherwise; such an entry is
	// not appended again. On a non-nil error nothing of the batch was stored.
	AppendBatch(ctx context.Context, entries []Entry) ([]Result, error)
	// Size returns the number of records.
	Size(ctx context.Context) (int64, error)
	// ReadHashes returns the stored hashes at the given stored-hash indexes
	// (tlog.HashReader semantics).
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// Records returns the records with index in [start, end), in index order.
	Records(ctx context.Context, start, end int64) ([]Record, error)
	// Lookup returns the record with this id, or ErrNotFound.
	Lookup(ctx context.Context, id string) (Record, error)
	// Query returns the newest records matching f, oldest first.
	Query(ctx context.Context, f Filter) ([]Record, error)
	// PutCheckpoint stores c; a second checkpoint of the same size is ignored.
	PutCheckpoint(ctx context.Context, c Checkpoint) error
	// Checkpoints returns all checkpoints by increasing size.
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
	// LatestCheckpoint returns the largest checkpoint, or ErrNotFound.
	LatestCheckpoint(ctx context.Context) (Checkpoint, error)
	// PutCosignatures stores witness cosignatures of the checkpoint of this size, each
	// replacing an older one of the same witness key.
	PutCosignatures(ctx context.Context, size int64, cs []Cosignature) error
	// Cosignatures returns the stored cosignatures by checkpoint size: of the checkpoint
	// of this size, or of every checkpoint when size is negative.
	Cosignatures(ctx context.Context, size int64) (map[int64][]Cosignature, error)
}

// hashReader adapts a Storage to tlog.HashReader.
func hashReader(ctx context.Context, s Storage) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return s.ReadHashes(ctx, idx) })
}
