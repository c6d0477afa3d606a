package policy

import (
	"sync"

	"github.com/cedar-policy/cedar-go/types"
)

// boundedCache memoizes immutable Cedar values built from comparable inputs
// (an Agent's principal entity, an attestation record). Building a cedar-go
// Record hashes and copies it, which is most of a decision's cost; the same
// callers call again and again, so a hit saves it. When the cache reaches max
// entries it is emptied: memory stays bounded and correctness never depends on
// a hit.
type boundedCache[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]V
	max int
}

func newBoundedCache[K comparable, V any](max int) *boundedCache[K, V] {
	return &boundedCache[K, V]{m: make(map[K]V), max: max}
}

func (c *boundedCache[K, V]) get(k K, build func(K) V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = build(k)
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = v
	c.mu.Unlock()
	return v
}

// keyedEntityCache memoizes an entity under a short string key and keeps the full
// input beside it: a hit only counts when the stored input equals the new one, so
// hashing stays cheap (one string) and a changed attribute is never served stale.
type keyedEntityCache[In comparable] struct {
	mu  sync.RWMutex
	m   map[string]keyedEntry[In]
	max int
}

type keyedEntry[In comparable] struct {
	in  In
	out types.Entity
}

func newKeyedEntityCache[In comparable](max int) *keyedEntityCache[In] {
	return &keyedEntityCache[In]{m: make(map[string]keyedEntry[In]), max: max}
}

func (c *keyedEntityCache[In]) get(key string, in In, build func(In) types.Entity) types.Entity {
	c.mu.RLock()
	en, ok := c.m[key]
	c.mu.RUnlock()
	if ok && en.in == in {
		return en.out
	}
	out := build(in)
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[key] = keyedEntry[In]{in, out}
	c.mu.Unlock()
	return out
}
