-- KEYS: 1 tx zset (id -> t), 2 detail hash (id -> "seq|amount", ~seq, ~newest), 3 label hash (id -> "t|fraud")
-- ARGV: 1 tx id, 2 t (ms), 3 amount (exact decimal text), 4 horizon ms, 5 ttl ms
-- Returns 0 applied, 1 duplicate, 2 late. One entity, one hash slot: atomic and idempotent by tx id.
local t = tonumber(ARGV[2])
local horizon = tonumber(ARGV[4])
local newest = tonumber(redis.call('HGET', KEYS[2], '~newest'))
if newest and t <= newest - horizon then return 2 end
if redis.call('ZADD', KEYS[1], 'NX', t, ARGV[1]) == 0 then return 1 end
local seq = redis.call('HINCRBY', KEYS[2], '~seq', 1)
redis.call('HSET', KEYS[2], ARGV[1], seq .. '|' .. ARGV[3])
if not newest or t > newest then
  redis.call('HSET', KEYS[2], '~newest', ARGV[2])
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', t - horizon)
  if #old > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - horizon)
    -- unpack() is bounded by Lua's stack, so delete in slices.
    for i = 1, #old, 1000 do
      local slice = { unpack(old, i, math.min(i + 999, #old)) }
      redis.call('HDEL', KEYS[2], unpack(slice))
      redis.call('HDEL', KEYS[3], unpack(slice))
    end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 0
