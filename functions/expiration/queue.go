// queue.go: the Redis side, nothing else. Three kinds of keys:
//
//	expirations             sorted set: order id scored by its expiry (unix ms)
//	expirations:claimed     sorted set: orders a tick took and is publishing, scored by the
//	                        end of its lease (unix ms); a crashed tick's claims become due again
//	expirations:ended:<id>  string with a TTL: the order was cancelled, completed or expired,
//	                        so a late or redelivered order.created must not schedule it again
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/tickit/tickit/functions/internal/tracing"
)

const (
	dueKey     = "expirations"
	claimedKey = "expirations:claimed"
	endedKey   = "expirations:ended:"
)

// Claim is a due order taken by one tick, with the score it goes back with if it is not published.
type Claim struct {
	OrderID string
	Score   string
}

// Queue is the expiry schedule in Redis.
type Queue struct {
	rdb *redis.Client
	// Lease is how long a claim stays with the tick that took it before another tick may take
	// it again: longer than a batch's publishing can take (3 tries of 5 s at most).
	Lease time.Duration
	// Remember is how long an ended order is remembered, to ignore its late order.created.
	Remember time.Duration
}

// Connect returns the queue at a redis:// URL. Nothing is dialled until the first command.
func Connect(url string) (*Queue, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	// Fail fast when Redis is down (unless the URL says otherwise): the answer is a 503 and
	// the Broker retries with its own backoff.
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 1
	}
	if opts.DialerRetries == 0 {
		opts.DialerRetries = 2
	}
	// No CLIENT SETINFO on connect: Redis before 7.2 (Debian's 7.0, which make run uses)
	// refuses it, and each new connection showed as a failed span in the trace.
	opts.DisableIdentity = true
	rdb := redis.NewClient(opts)
	if tracing.Enabled() { // a span per command, in the trace of the event being handled
		if err := redisotel.InstrumentTracing(rdb); err != nil {
			return nil, err
		}
	}
	return &Queue{rdb: rdb, Lease: 2 * time.Minute, Remember: 24 * time.Hour}, nil
}

// Close releases the connections.
func (q *Queue) Close() error { return q.rdb.Close() }

// schedule adds the order unless it has ended or a tick is publishing it; NX keeps the first
// expiry when order.created arrives twice.
var schedule = redis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('ZSCORE', KEYS[2], ARGV[2]) then
  return 0
end
return redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2])
`)

// Schedule makes the order due at expiresAt. It reports whether the order was added.
func (q *Queue) Schedule(ctx context.Context, orderID string, expiresAt time.Time) (bool, error) {
	n, err := schedule.Run(ctx, q.rdb, []string{dueKey, claimedKey, endedKey + orderID}, expiresAt.UnixMilli(), orderID).Int()
	return n == 1, err
}

// End forgets the order (cancelled or completed) and remembers that it ended.
func (q *Queue) End(ctx context.Context, orderID string) error {
	_, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, dueKey, orderID)
		p.ZRem(ctx, claimedKey, orderID)
		p.Set(ctx, endedKey+orderID, 1, q.Remember)
		return nil
	})
	return err
}

// claim moves up to ARGV[3] orders due at ARGV[1] into the claimed set with a lease ending at
// ARGV[2]: first claims whose lease ran out (their tick died), then due orders in expiry
// order. One script, so each order is claimed by exactly one caller.
var claim = redis.NewScript(`
local out = {}
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, m in ipairs(stale) do
  redis.call('ZADD', KEYS[2], ARGV[2], m)
  table.insert(out, m)
  table.insert(out, ARGV[1])
end
local room = tonumber(ARGV[3]) - #stale
if room > 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, room)
  for i = 1, #due, 2 do
    redis.call('ZREM', KEYS[1], due[i])
    redis.call('ZADD', KEYS[2], ARGV[2], due[i])
    table.insert(out, due[i])
    table.insert(out, due[i + 1])
  end
end
return out
`)

// Claim takes up to n orders due at now for the caller alone.
func (q *Queue) Claim(ctx context.Context, now time.Time, n int) ([]Claim, error) {
	res, err := claim.Run(ctx, q.rdb, []string{dueKey, claimedKey}, now.UnixMilli(), now.Add(q.Lease).UnixMilli(), n).StringSlice()
	if err != nil {
		return nil, err
	}
	claims := make([]Claim, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		claims = append(claims, Claim{OrderID: res[i], Score: res[i+1]})
	}
	return claims, nil
}

// finish drops published claims (ARGV[2...]) and remembers their orders as ended (KEYS[2...])
// for ARGV[1] ms.
var finish = redis.NewScript(`
for i = 2, #KEYS do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('SET', KEYS[i], 1, 'PX', ARGV[1])
end
return #KEYS - 1
`)

// Finish records that the claims were published.
func (q *Queue) Finish(ctx context.Context, claims []Claim) error {
	if len(claims) == 0 {
		return nil
	}
	keys := []string{claimedKey}
	args := []any{q.Remember.Milliseconds()}
	for _, c := range claims {
		keys = append(keys, endedKey+c.OrderID)
		args = append(args, c.OrderID)
	}
	return finish.Run(ctx, q.rdb, keys, args...).Err()
}

// release puts claims back with their original scores, except those whose order ended
// meanwhile (End removed them from the claimed set).
var release = redis.NewScript(`
for i = 1, #ARGV, 2 do
  if redis.call('ZREM', KEYS[2], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
  end
end
return 0
`)

// Release returns claims that were not published so that the next tick tries them again.
func (q *Queue) Release(ctx context.Context, claims []Claim) error {
	if len(claims) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(claims))
	for _, c := range claims {
		args = append(args, c.OrderID, c.Score)
	}
	return release.Run(ctx, q.rdb, []string{dueKey, claimedKey}, args...).Err()
}
