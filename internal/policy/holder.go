package policy

import (
	"sync/atomic"
	"time"
)

// Holder publishes the current Engine for hot reload. Swap replaces it atomically:
// a Decide that already loaded the old engine finishes on it and reports the old
// revision; every later Decide uses the new one. The zero Holder denies every
// request with CodeNoPolicy until the first Swap.
type Holder struct {
	cur atomic.Pointer[Engine]
}

// NewHolder returns a Holder serving e.
func NewHolder(e *Engine) *Holder {
	h := &Holder{}
	h.Swap(e)
	return h
}

// Engine returns the engine currently served (nil before the first Swap).
func (h *Holder) Engine() *Engine { return h.cur.Load() }

// Swap installs next and returns the previous engine. When both have the same
// rate-limit rules the buckets carry over, so a reload never refills them.
func (h *Holder) Swap(next *Engine) (prev *Engine) {
	if next != nil {
		if old := h.cur.Load(); old != nil && old.limits.sameRules(next.limits) {
			next.limits = old.limits
		}
	}
	return h.cur.Swap(next)
}

// Decide decides req on the current engine.
func (h *Holder) Decide(req Request, now time.Time) Decision {
	return h.cur.Load().Decide(req, now)
}

// LoadAndSwap loads the bundle in dir and swaps it in only if it is valid. On any
// error the current engine keeps serving and the error is returned.
func (h *Holder) LoadAndSwap(dir string, opts Options) (*Engine, error) {
	e, err := Load(dir, opts)
	if err != nil {
		return nil, err
	}
	h.Swap(e)
	return e, nil
}
