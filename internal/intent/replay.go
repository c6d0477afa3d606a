package intent

import (
	"context"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"time"
)

// ReplayCache records which (iss, jti) pairs were seen. CheckAndInsert returns nil and
// remembers the pair until until if it was not seen (or its entry has expired at now);
// an *Error with ReasonReplay if it was; an *Error with ReasonReplayCacheFull (or any
// other error, which Verify maps to replay_cache_full) if it cannot record it. An
// implementation must never forget an entry before until.
type ReplayCache interface {
	CheckAndInsert(ctx context.Context, iss, jti string, now, until time.Time) error
}

var (
	_ ReplayCache = (*MemoryCache)(nil)
	_ ReplayCache = (*RedisCache)(nil)
)

// MemoryCache is an in-process ReplayCache bounded to a fixed number of entries. It
// stores, per entry, a 64-bit keyed hash of (iss, jti) (hash/maphash, random seed per
// cache, so a peer cannot aim collisions) and the expiry in whole seconds: 12 bytes per
// slot, two slots per entry (about 26 bytes per entry with the shard headroom), in
// open-addressing tables (linear probing, load <= 1/2) spread over shards, each with
// its own lock. Expired entries are reclaimed by a sweep of a shard, run when the shard
// is full and its earliest expiry has passed — so at most once per second per shard.
// A false "replay" needs a 64-bit hash collision among live entries (about n/2^64 per
// insert, 5e-14 at a million entries).
type MemoryCache struct {
	seed   maphash.Seed
	shards []shard
	mask   uint64
}

type shard struct {
	mu     sync.Mutex
	keys   []uint64 // 0 = empty slot
	exps   []uint32 // expiry, Unix seconds (rounded up), valid where keys != 0
	used   int      // non-empty slots (live or expired, not yet swept)
	limit  int      // capacity of this shard
	minExp uint32   // lower bound on the expiry of every stored entry
	_      [40]byte // keep shards on separate cache lines
}

// NewMemoryCache returns a cache for capacity live entries. The capacity is split over
// up to 64 shards, each with headroom for the uneven spread of hashes, so the cache
// accepts at least capacity entries (with overwhelming probability) and at most
// Capacity(), about capacity * (1 + 6/sqrt(capacity/64)); then it refuses new entries
// with replay_cache_full until some expire.
func NewMemoryCache(capacity int) *MemoryCache {
	if capacity < 1 {
		capacity = 1
	}
	n := 1
	for n < 64 && n*1024 < capacity {
		n <<= 1
	}
	per := (capacity + n - 1) / n
	if n > 1 {
		// Hashes spread entries binomially over the shards: give each shard six
		// standard deviations of headroom so that the cache takes capacity entries
		// before any one shard is full (fails with probability < 64 * 1e-9).
		per += int(math.Ceil(6*math.Sqrt(float64(per)))) + 8
	}
	slots := 2*per + 1 // load <= 1/2: short linear-probing clusters
	c := &MemoryCache{seed: maphash.MakeSeed(), shards: make([]shard, n), mask: uint64(n - 1)}
	for i := range c.shards {
		s := &c.shards[i]
		s.keys = make([]uint64, slots)
		s.exps = make([]uint32, slots)
		s.limit = per
		s.minExp = ^uint32(0)
	}
	return c
}

// Capacity returns the hard upper bound on stored entries.
func (c *MemoryCache) Capacity() int { return len(c.shards) * c.shards[0].limit }

// Len returns the number of stored entries, counting expired ones not yet swept.
func (c *MemoryCache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.used
		s.mu.Unlock()
	}
	return n
}

func (c *MemoryCache) hash(iss, jti string) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(iss)
	h.WriteByte(0) // iss never contains NUL (SPIFFE ID), so (iss, jti) is unambiguous
	h.WriteString(jti)
	k := h.Sum64()
	if k == 0 {
		k = 1
	}
	return k
}

var errCacheFull = &Error{Reason: ReasonReplayCacheFull, Detail: "in-memory replay cache full"}
var errReplay = &Error{Reason: ReasonReplay}

// CheckAndInsert implements ReplayCache. It never blocks on I/O; ctx is unused.
func (c *MemoryCache) CheckAndInsert(_ context.Context, iss, jti string, now, until time.Time) error {
	k := c.hash(iss, jti)
	nowS := clampSec(now.Unix())
	untilS := clampSec(until.Unix())
	if until.Nanosecond() != 0 && untilS != ^uint32(0) {
		untilS++ // round up: never forget early
	}
	s := &c.shards[k&c.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkAndInsert(k, nowS, untilS)
}

func clampSec(u int64) uint32 {
	switch {
	case u < 0:
		return 0
	case u > int64(^uint32(0)):
		return ^uint32(0)
	}
	return uint32(u)
}

func (s *shard) home(k uint64) int {
	hi, _ := bits.Mul64(k, uint64(len(s.keys))) // fastrange over the high bits; the low bits chose the shard
	return int(hi)
}

func (s *shard) checkAndInsert(k uint64, now, until uint32) error {
	n := len(s.keys)
	for i := s.home(k); ; {
		switch s.keys[i] {
		case 0:
			if s.used >= s.limit {
				if now < s.minExp || !s.sweep(now) {
					return errCacheFull
				}
				return s.checkAndInsert(k, now, until) // slots moved; probe again
			}
			s.keys[i], s.exps[i] = k, until
			s.used++
			s.minExp = min(s.minExp, until)
			return nil
		case k:
			if s.exps[i] > now {
				return errReplay
			}
			s.exps[i] = until // the old entry expired: reuse it
			s.minExp = min(s.minExp, until)
			return nil
		}
		if i++; i == n {
			i = 0
		}
	}
}

// sweep deletes every entry expired at now, keeping linear-probing chains intact by
// backward-shift deletion (Knuth, TAOCP vol. 3, 6.4 Algorithm R), and recomputes
// minExp. It reports whether anything was freed.
func (s *shard) sweep(now uint32) bool {
	n := len(s.keys)
	freed := 0
	for i := 0; i < n; i++ {
		for s.keys[i] != 0 && s.exps[i] <= now {
			s.remove(i)
			freed++
		}
	}
	s.minExp = ^uint32(0)
	for i, k := range s.keys {
		if k != 0 {
			s.minExp = min(s.minExp, s.exps[i])
		}
	}
	s.used -= freed
	return freed > 0
}

// remove empties slot i and shifts later members of its cluster back so that every
// key stays reachable from its home slot.
func (s *shard) remove(i int) {
	n := len(s.keys)
	j := i
	for {
		s.keys[i] = 0
		for {
			if j++; j == n {
				j = 0
			}
			if s.keys[j] == 0 {
				return
			}
			h := s.home(s.keys[j])
			// Move j to i unless its home lies cyclically in (i, j].
			if (i <= j && (i < h && h <= j)) || (i > j && (i < h || h <= j)) {
				continue
			}
			break
		}
		s.keys[i], s.exps[i] = s.keys[j], s.exps[j]
		i = j
	}
}
