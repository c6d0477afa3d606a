package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/warden-a2a/warden/internal/audit"
)

// Config configures a Witness.
type Config struct {
	// Signer cosigns (audit.NewCosignatureSigner on the witness's key). Required.
	Signer *audit.CosignatureSigner
	// Logs are the checkpoint keys of the logs this witness follows, by origin: a
	// checkpoint is accepted only when signed by one of its origin's keys. Warden's origin
	// is the log key's name (audit.NoteName), so LogsOf builds this from key files.
	Logs map[string][]note.Verifier
	// Store keeps the newest cosigned checkpoint per log. Required.
	Store *Store
	// Logger receives every refusal of a validly signed checkpoint; nil discards.
	Logger *slog.Logger
	// Now is the clock of cosignature timestamps; default time.Now.
	Now func() time.Time
}

// LogsOf maps each log verifier key to its origin (the key's name).
func LogsOf(keys ...note.Verifier) map[string][]note.Verifier {
	m := map[string][]note.Verifier{}
	for _, k := range keys {
		m[k.Name()] = append(m[k.Name()], k)
	}
	return m
}

// Witness checks and cosigns checkpoints (C2SP tlog-witness). Safe for concurrent use.
type Witness struct {
	cfg Config
}

// New returns a witness.
func New(cfg Config) (*Witness, error) {
	if cfg.Signer == nil || cfg.Store == nil || len(cfg.Logs) == 0 {
		return nil, errors.New("witness: Signer, Store and at least one log key are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := *cfg.Signer
	s.Now = cfg.Now
	cfg.Signer = &s
	return &Witness{cfg: cfg}, nil
}

// Error is a refused add-checkpoint: Status is the HTTP status the spec prescribes, Size
// the witness's current size for a 409 on a mismatched old size (-1 otherwise).
type Error struct {
	Status int
	Size   int64
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("witness: %d %s: %s", e.Status, http.StatusText(e.Status), e.Reason)
}

func refuse(status int, format string, a ...any) *Error {
	return &Error{Status: status, Size: -1, Reason: fmt.Sprintf(format, a...)}
}

// AddCheckpoint handles one add-checkpoint body and returns the cosignature lines, or an
// *Error: 400 malformed body or old size above the checkpoint's, 403 no trusted log
// signature, 404 unknown origin, 409 old size not the one cosigned last (Size says which)
// or same size with another root, 422 consistency proof does not verify.
func (w *Witness) AddCheckpoint(ctx context.Context, body []byte) ([]byte, error) {
	req, err := parseRequest(body)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "%v", err)
	}
	origin, _, _ := strings.Cut(string(req.checkpoint), "\n")
	keys, ok := w.cfg.Logs[origin]
	if !ok {
		return nil, refuse(http.StatusNotFound, "unknown log origin %q", origin)
	}
	n, err := note.Open(req.checkpoint, note.VerifierList(keys...))
	if err != nil {
		return nil, refuse(http.StatusForbidden, "checkpoint of %s is not signed by a key this witness trusts for it: %v", origin, err)
	}
	_, size, root, err := audit.ParseCheckpointText(n.Text)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "%v", err)
	}
	if req.old > size {
		return nil, refuse(http.StatusBadRequest, "old size %d above the checkpoint's size %d", req.old, size)
	}
	if req.old == 0 && len(req.proof) > 0 {
		return nil, refuse(http.StatusBadRequest, "a consistency proof from size 0 must be empty")
	}
	var lines []byte
	_, err = w.cfg.Store.update(ctx, origin, func(cur Latest, known bool) (Latest, error) {
		if !known {
			cur.Root = emptyRoot
		}
		if req.old != cur.Size {
			e := refuse(http.StatusConflict, "old size %d is not the size %d this witness cosigned last", req.old, cur.Size)
			e.Size = cur.Size
			return Latest{}, e
		}
		switch {
		case req.old == size:
			if root != cur.Root {
				return Latest{}, refuse(http.StatusConflict, "checkpoint of size %d has another root than the one cosigned at that size: the log forked", size)
			}
		case req.old > 0:
			if err := tlog.CheckTree(req.proof, size, root, req.old, cur.Root); err != nil {
				return Latest{}, refuse(http.StatusUnprocessableEntity, "consistency proof from size %d to %d does not verify: %v", req.old, size, err)
			}
		}
		signed, err := note.Sign(&note.Note{Text: n.Text}, w.cfg.Signer)
		if err != nil {
			return Latest{}, fmt.Errorf("witness: cosign: %w", err)
		}
		// note.Sign wrote text, a blank line and our one signature line.
		lines = signed[len(n.Text)+1:]
		return Latest{Size: size, Root: root, Note: append(bytes.Clone(req.checkpoint), lines...), Time: w.cfg.Now().UTC()}, nil
	})
	var werr *Error
	if errors.As(err, &werr) && werr.Size < 0 {
		// A validly signed checkpoint that forks or does not extend the cosigned one:
		// evidence against the log. (A 409 naming the witness's size is the protocol's way
		// to tell a log which old size to prove from, not evidence.)
		w.cfg.Logger.Warn("witness refused a signed checkpoint", "origin", origin, "size", size, "old", req.old, "status", werr.Status, "reason", werr.Reason)
		if rerr := w.cfg.Store.refused(context.WithoutCancel(ctx), w.cfg.Now(), origin, werr.Status, werr.Reason, req.old, body); rerr != nil {
			w.cfg.Logger.Error("witness: keep refusal", "err", rerr)
		}
	}
	if err != nil {
		return nil, err
	}
	return lines, nil
}

// emptyRoot is the root of the empty tree (the state of a log never cosigned).
var emptyRoot, _ = tlog.TreeHash(0, nil)

// Latest returns the newest cosigned checkpoint of origin (note with the log's and this
// witness's signatures), or ok false.
func (w *Witness) Latest(ctx context.Context, origin string) (Latest, bool, error) {
	return w.cfg.Store.Get(ctx, origin)
}

// Paths of the witness's HTTP API, under its URL prefix.
const (
	PathAddCheckpoint = "/add-checkpoint" // C2SP tlog-witness
	PathCheckpoint    = "/checkpoint"     // GET ?origin=ORIGIN: newest cosigned checkpoint (Warden extension)
)

// Handler serves the witness's HTTP API.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathAddCheckpoint, func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxRequestBytes))
		if err != nil {
			http.Error(rw, "body too large or unreadable", http.StatusRequestEntityTooLarge)
			return
		}
		lines, err := w.AddCheckpoint(r.Context(), body)
		var werr *Error
		switch {
		case errors.As(err, &werr) && werr.Size >= 0:
			rw.Header().Set("Content-Type", "text/x.tlog.size")
			rw.WriteHeader(werr.Status)
			_, _ = io.WriteString(rw, strconv.FormatInt(werr.Size, 10)+"\n")
		case errors.As(err, &werr):
			http.Error(rw, werr.Reason, werr.Status)
		case err != nil:
			w.cfg.Logger.Error("witness: add-checkpoint", "err", err)
			http.Error(rw, "internal error", http.StatusInternalServerError)
		default:
			rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = rw.Write(lines)
		}
	})
	mux.HandleFunc("GET "+PathCheckpoint, func(rw http.ResponseWriter, r *http.Request) {
		origin := r.URL.Query().Get("origin")
		l, ok, err := w.Latest(r.Context(), origin)
		switch {
		case err != nil:
			w.cfg.Logger.Error("witness: read checkpoint", "err", err)
			http.Error(rw, "internal error", http.StatusInternalServerError)
		case !ok:
			http.Error(rw, "no checkpoint of "+strconv.Quote(origin)+" cosigned", http.StatusNotFound)
		default:
			rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = rw.Write(l.Note)
		}
	})
	return mux
}
