package workflow

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps workflow state in Redis, shared by every gate that uses the same
// Redis and prefix: a hash per workflow id counting recorded steps by action and by
// (action, callee), and one key per executed non-repeatable (workflow, action, callee,
// resource) holding the token that reserved it. Begin and Finish are Lua scripts, so each
// is atomic in Redis. Keys expire after Retention (default 30 days) without activity.
type RedisStore struct {
	rdb       redis.UniversalClient
	prefix    string
	Retention time.Duration
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns a store on rdb under prefix (e.g. "warden:wf:").
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{rdb: rdb, prefix: prefix, Retention: 30 * 24 * time.Hour}
}

// Field names inside a run hash are "a\n<action>" and "c\n<action>\n<callee>"; Validate
// keeps newlines out of actions and callees.
var beginScript = redis.NewScript(`
local verdict = ''
local n = tonumber(ARGV[7])
if n > 0 then
  local ok = false
  local i = 8
  for p = 1, n do
    local pa = ARGV[i]
    local nc = tonumber(ARGV[i+1])
    i = i + 2
    if nc == 0 then
      if redis.call('HEXISTS', KEYS[1], 'a\n' .. pa) == 1 then ok = true end
    else
      for c = 1, nc do
        if redis.call('HEXISTS', KEYS[1], 'c\n' .. pa .. '\n' .. ARGV[i]) == 1 then ok = true end
        i = i + 1
      end
    end
  end
  if not ok then verdict = 'workflow_out_of_order' end
end
local dup = redis.call('EXISTS', KEYS[2]) == 1
if verdict == '' and ARGV[4] == '0' and dup then verdict = 'duplicate_step' end
if verdict ~= '' and ARGV[5] == '1' then return verdict end
redis.call('HINCRBY', KEYS[1], 'a\n' .. ARGV[1], 1)
redis.call('HINCRBY', KEYS[1], 'c\n' .. ARGV[1] .. '\n' .. ARGV[2], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if ARGV[4] == '0' and not dup then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[6]) end
return verdict
`)

var releaseScript = redis.NewScript(`
if redis.call('HINCRBY', KEYS[1], 'a\n' .. ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], 'a\n' .. ARGV[1]) end
if redis.call('HINCRBY', KEYS[1], 'c\n' .. ARGV[1] .. '\n' .. ARGV[2], -1) <= 0 then redis.call('HDEL', KEYS[1], 'c\n' .. ARGV[1] .. '\n' .. ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 0
`)

func (r *RedisStore) keys(s *Step) []string {
	return []string{
		r.prefix + "run:" + strconv.Quote(s.Workflow) + ":" + strconv.Quote(s.ID),
		r.prefix + "once:" + strconv.Quote(s.Workflow) + ":" + strconv.Quote(s.Action) + ":" + strconv.Quote(s.Callee) + ":" + strconv.Quote(s.Resource),
	}
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Begin implements Store.
func (r *RedisStore) Begin(ctx context.Context, s Step) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	args := []any{s.Action, s.Callee, s.Token, flag(s.Repeatable), flag(s.Enforce), r.Retention.Milliseconds(), len(s.After)}
	for _, p := range s.After {
		args = append(args, p.Action, len(p.Callees))
		for _, c := range p.Callees {
			args = append(args, c)
		}
	}
	v, err := beginScript.Run(ctx, r.rdb, r.keys(&s), args...).Text()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return v, nil
}

// Finish implements Store.
func (r *RedisStore) Finish(ctx context.Context, s Step, done bool) error {
	if done {
		return nil
	}
	if err := releaseScript.Run(ctx, r.rdb, r.keys(&s), s.Action, s.Callee, s.Token).Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}
