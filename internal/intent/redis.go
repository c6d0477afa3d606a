package intent

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCache is a ReplayCache shared by several gateway replicas of one agent: each
// (iss, jti) is a key written with SET key 1 NX PX ttl (ttl = until - now), so exactly
// one replica accepts an intent and Redis drops the key once it can no longer verify.
// Errors from Redis are returned as they are; Verify turns them into
// replay_cache_full (fail closed).
type RedisCache struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisCache returns a cache storing keys "<prefix><iss> <jti>" in client. prefix
// separates deployments sharing one Redis (e.g. "warden:replay:<agent>:").
func NewRedisCache(client redis.UniversalClient, prefix string) *RedisCache {
	return &RedisCache{client: client, prefix: prefix}
}

// CheckAndInsert implements ReplayCache.
func (r *RedisCache) CheckAndInsert(ctx context.Context, iss, jti string, now, until time.Time) error {
	ttl := until.Sub(now)
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	// Round up to whole milliseconds (PX) so the key never expires before until.
	ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
	// iss is a SPIFFE ID and jti base64url: neither contains a space.
	ok, err := r.client.SetNX(ctx, r.prefix+iss+" "+jti, 1, ttl).Result()
	switch {
	case err != nil:
		return &Error{Reason: ReasonReplayCacheFull, Detail: "redis", Err: err}
	case !ok:
		return errReplay
	}
	return nil
}
