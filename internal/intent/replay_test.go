package intent_test

import (
	"context"
	"crypto/elliptic"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/warden-a2a/warden/internal/intent"
)

// replayContract is the behaviour every ReplayCache must have.
func replayContract(t *testing.T, c intent.ReplayCache) {
	ctx := context.Background()
	iss := "spiffe://example.org/agent/a"
	jti := fmt.Sprintf("jti-%d", rand.Uint64())
	if err := c.CheckAndInsert(ctx, iss, jti, t0, t0.Add(2*time.Second)); err != nil {
		t.Fatalf("first insert: %v", err)
	}
	if got := intent.ReasonOf(c.CheckAndInsert(ctx, iss, jti, t0, t0.Add(2*time.Second))); got != intent.ReasonReplay {
		t.Fatalf("second insert: %q, want replay", got)
	}
	// Same jti from another issuer is a different intent.
	if err := c.CheckAndInsert(ctx, "spiffe://example.org/agent/b", jti, t0, t0.Add(2*time.Second)); err != nil {
		t.Fatalf("other issuer: %v", err)
	}
	// (iss, jti) must not collide with (iss+x, jti') by concatenation.
	if err := c.CheckAndInsert(ctx, iss+"j", jti[1:], t0, t0.Add(2*time.Second)); err != nil {
		t.Fatalf("concatenation collision: %v", err)
	}
}

func TestMemoryCacheContract(t *testing.T) { replayContract(t, intent.NewMemoryCache(100)) }

func TestRedisCacheContract(t *testing.T) {
	c, prefix := redisCache(t)
	replayContract(t, c)
	// The key carries a TTL (PX until-now) so Redis drops it; it is not forgotten early.
	rc := redisClient(t)
	ctx := context.Background()
	now := time.Now()
	if err := c.CheckAndInsert(ctx, "spiffe://example.org/agent/a", "short", now, now.Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	pttl := rc.PTTL(ctx, prefix+"spiffe://example.org/agent/a short").Val()
	if pttl <= 0 || pttl > 300*time.Millisecond {
		t.Fatalf("PTTL %v, want (0, 300ms]", pttl)
	}
	time.Sleep(400 * time.Millisecond)
	if err := c.CheckAndInsert(ctx, "spiffe://example.org/agent/a", "short", time.Now(), time.Now().Add(time.Second)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

// TestRedisCacheSharedByReplicas: two gateway replicas (two clients, one Redis) accept a
// given intent exactly once between them, even when they race.
func TestRedisCacheSharedByReplicas(t *testing.T) {
	a, prefix := redisCache(t)
	b := intent.NewRedisCache(redisClient(t), prefix)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := a
			if i%2 == 1 {
				c = b
			}
			if c.CheckAndInsert(context.Background(), "spiffe://example.org/agent/a", "race", time.Now(), time.Now().Add(10*time.Second)) == nil {
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if accepted != 1 {
		t.Fatalf("accepted %d times, want 1", accepted)
	}
}

func TestRedisCacheDownFailsClosed(t *testing.T) {
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rc.Close()
	f := newFixture(t)
	v := newVerifier(t, intent.Config{Replay: intent.NewRedisCache(rc, "x:")})
	_, err := v.Verify(context.Background(), sign(t, claimsFor(t, f.cert, f.body), f.key), f.cert, f.body, t0)
	if got := intent.ReasonOf(err); got != intent.ReasonReplayCacheFull {
		t.Fatalf("reason %q, want replay_cache_full (err %v)", got, err)
	}
}

func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	u := os.Getenv("WARDEN_TEST_REDIS")
	if u == "" {
		t.Skip("WARDEN_TEST_REDIS not set (e.g. redis://127.0.0.1:6379/0); skipping the Redis replay cache test")
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	t.Cleanup(func() { rc.Close() })
	return rc
}

func redisCache(t *testing.T) (*intent.RedisCache, string) {
	rc := redisClient(t)
	prefix := fmt.Sprintf("warden-test:%x:", rand.Uint64())
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rc.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rc.Del(ctx, keys...)
		}
	})
	return intent.NewRedisCache(rc, prefix), prefix
}

func TestMemoryCacheNeverForgetsUnexpired(t *testing.T) {
	const n = 5000
	c := intent.NewMemoryCache(n)
	ctx := context.Background()
	iss := "spiffe://example.org/agent/a"
	// Offer many more entries than fit, living until t0+100s: every shard fills; at
	// least n and at most Capacity() are stored.
	var stored []string
	for i := range 4 * c.Capacity() {
		err := c.CheckAndInsert(ctx, iss, fmt.Sprint(i), t0, t0.Add(100*time.Second))
		switch intent.ReasonOf(err) {
		case "":
			stored = append(stored, fmt.Sprint(i))
		case intent.ReasonReplayCacheFull:
		default:
			t.Fatal(err)
		}
	}
	if len(stored) < n || len(stored) > c.Capacity() {
		t.Fatalf("stored %d entries, want between %d and Capacity() %d", len(stored), n, c.Capacity())
	}
	// Full: new intents are refused, old ones are still replays, at any time before expiry.
	for _, now := range []time.Time{t0, t0.Add(99 * time.Second)} {
		if got := intent.ReasonOf(c.CheckAndInsert(ctx, iss, "new", now, now.Add(time.Second))); got != intent.ReasonReplayCacheFull {
			t.Fatalf("at %v: %q, want replay_cache_full", now, got)
		}
		for _, jti := range stored {
			if got := intent.ReasonOf(c.CheckAndInsert(ctx, iss, jti, now, now.Add(time.Second))); got != intent.ReasonReplay {
				t.Fatalf("entry %s forgotten at %v: %q", jti, now, got)
			}
		}
	}
	// After expiry, space is reclaimed.
	later := t0.Add(100 * time.Second)
	for i := range n {
		if err := c.CheckAndInsert(ctx, iss, fmt.Sprint("b", i), later, later.Add(time.Second)); err != nil {
			t.Fatalf("after expiry, insert %d: %v", i, err)
		}
	}
}

// TestMemoryCacheChurn mixes lifetimes so that sweeps delete from the middle of
// probe clusters; a model map checks that no live entry is ever lost.
func TestMemoryCacheChurn(t *testing.T) {
	c := intent.NewMemoryCache(2000)
	ctx := context.Background()
	model := map[string]int64{} // jti -> until (s)
	r := rand.New(rand.NewPCG(1, 2))
	now := t0.Unix()
	for step := range 200000 {
		if step%500 == 0 {
			now++
		}
		jti := fmt.Sprint(r.IntN(20000))
		until := now + 1 + int64(r.IntN(8))
		err := c.CheckAndInsert(ctx, "i", jti, time.Unix(now, 0), time.Unix(until, 0))
		live := model[jti] > now
		switch reason := intent.ReasonOf(err); {
		case live && reason != intent.ReasonReplay:
			t.Fatalf("step %d: live entry %s not reported as replay (%q)", step, jti, reason)
		case !live && reason == intent.ReasonReplay:
			t.Fatalf("step %d: expired/unknown entry %s reported as replay", step, jti)
		case err == nil:
			model[jti] = until
		}
		if step%20000 == 0 {
			for k, u := range model {
				if u <= now {
					delete(model, k)
				}
			}
		}
	}
}

// TestMemoryCacheBytesPerEntry measures the heap of a cache holding 1,000,000 live
// entries: target <= 64 bytes per entry.
func TestMemoryCacheBytesPerEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~20 MB")
	}
	const n = 1_000_000
	perEntry := measureBytesPerEntry(t, n)
	t.Logf("%.1f bytes per entry at %d live entries", perEntry, n)
	if perEntry > 64 {
		t.Fatalf("%.1f bytes per entry, want <= 64", perEntry)
	}
}

func measureBytesPerEntry(t testing.TB, n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := intent.NewMemoryCache(n)
	ctx := context.Background()
	var buf [24]byte
	for i := range n {
		jti := string(fmt.Appendf(buf[:0], "%022d", i))
		if err := c.CheckAndInsert(ctx, "spiffe://example.org/agent/a", jti, t0, t0.Add(time.Minute)); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(c)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// TestMemoryCacheConcurrent: goroutines racing on the same keys accept each exactly once.
func TestMemoryCacheConcurrent(t *testing.T) {
	c := intent.NewMemoryCache(100_000)
	const keys, workers = 5000, 8
	var accepted [keys]int32
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys {
				k := (i + w*617) % keys
				err := c.CheckAndInsert(context.Background(), "spiffe://example.org/agent/a", fmt.Sprint(k), t0, t0.Add(time.Minute))
				switch intent.ReasonOf(err) {
				case "":
					mu.Lock()
					accepted[k]++
					mu.Unlock()
				case intent.ReasonReplay:
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for k, n := range accepted {
		if n != 1 {
			t.Fatalf("key %d accepted %d times", k, n)
		}
	}
}

// TestReplayMalleatedES256Signature: (r, n-s) is a second valid ECDSA signature of the
// same intent; the replay key is (iss, jti), not the token bytes, so it is still a replay.
func TestReplayMalleatedES256Signature(t *testing.T) {
	f := newFixture(t)
	v := newVerifier(t, intent.Config{})
	tok := sign(t, claimsFor(t, f.ecCert, f.body), f.ecKey)
	i := strings.LastIndexByte(tok, '.')
	sig, _ := b64.DecodeString(tok[i+1:])
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	s.FillBytes(sig[32:])
	twin := tok[:i+1] + b64.EncodeToString(sig)
	if twin == tok {
		t.Fatal("no twin")
	}
	if _, err := v.Verify(context.Background(), tok, f.ecCert, f.body, t0); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(context.Background(), twin, f.ecCert, f.body, t0)
	if got := intent.ReasonOf(err); got != intent.ReasonReplay {
		t.Fatalf("malleated twin: %q (%v), want replay", got, err)
	}
	// The twin alone is a valid token: the check above is the replay cache's doing.
	if _, err := newVerifier(t, intent.Config{}).Verify(context.Background(), twin, f.ecCert, f.body, t0); err != nil {
		t.Fatalf("twin on a fresh verifier: %v", err)
	}
}

// TestRedisReplicasRefuseReplay: two gateway replicas of one agent, each with its own
// Verifier and Redis client, share the replay state: accepted by one, refused by the other.
func TestRedisReplicasRefuseReplay(t *testing.T) {
	a, prefix := redisCache(t)
	b := intent.NewRedisCache(redisClient(t), prefix)
	f := newFixture(t)
	va := newVerifier(t, intent.Config{Replay: a})
	vb := newVerifier(t, intent.Config{Replay: b})
	now := time.Now()
	c := claimsFor(t, f.cert, f.body)
	c.IssuedAt, c.Expiry = now.Unix(), now.Unix()+30
	tok := sign(t, c, f.key)
	if _, err := va.Verify(context.Background(), tok, f.cert, f.body, now); err != nil {
		t.Fatal(err)
	}
	_, err := vb.Verify(context.Background(), tok, f.cert, f.body, now)
	if got := intent.ReasonOf(err); got != intent.ReasonReplay {
		t.Fatalf("second replica: %q, want replay", got)
	}
}
