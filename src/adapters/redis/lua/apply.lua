-- Applies a batch of events, in order. Each event touches its own entity's three keys, which share one hash
-- slot, so a batch is cluster-safe when all its entities share a slot (the store groups by slot on a cluster;
-- a single node takes any mix). One script call per batch: the per-call cost is most of the cost per event.
-- KEYS: per event 3 keys: tx zset (id -> t), detail hash (id -> "seq|amount"; ~seq, ~newest, ~oldest),
--       label hash (id -> "t|fraud").
-- ARGV: 1 horizon ms, 2 ttl ms, then per event 4 values: kind ("tx" | "label"), tx id, t (ms),
--       amount as exact decimal text (tx) or "0" | "1" (label).
-- Returns one code per event: 0 applied, 1 duplicate (already applied), 2 late (older than the horizon).
local horizon = tonumber(ARGV[1])
local ttl = ARGV[2]
-- Expiry is a safety net for idle entities; refreshing it once per hour of event time keeps it cheap.
local REFRESH_MS = 3600000

local function apply_tx(z, d, l, id, t, amount)
  local meta = redis.call('HMGET', d, '~newest', '~seq', '~oldest', '~ttl')
  local newest, seq, oldest = tonumber(meta[1]), tonumber(meta[2]) or 0, tonumber(meta[3])
  local refreshed = tonumber(meta[4])
  if newest and t <= newest - horizon then return 2 end
  if redis.call('ZADD', z, 'NX', t, id) == 0 then return 1 end
  seq = seq + 1
  if not oldest or t < oldest then oldest = t end
  if not newest or t > newest then newest = t end
  local cutoff = newest - horizon
  if oldest <= cutoff then
    local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)
    redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff)
    -- unpack() is bounded by Lua's stack, so delete in slices.
    for i = 1, #old, 1000 do
      local slice = { unpack(old, i, math.min(i + 999, #old)) }
      redis.call('HDEL', d, unpack(slice))
      redis.call('HDEL', l, unpack(slice))
    end
    local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
    oldest = tonumber(first[2]) or t
  end
  redis.call('HSET', d, id, seq .. '|' .. amount, '~seq', seq, '~newest', string.format('%d', newest),
    '~oldest', string.format('%d', oldest))
  if not refreshed or newest >= refreshed + REFRESH_MS then
    redis.call('PEXPIRE', z, ttl)
    redis.call('PEXPIRE', d, ttl)
    redis.call('HSET', d, '~ttl', string.format('%d', newest))
  end
  return 0
end

-- A label may arrive before its transaction; it waits in the label hash and is joined on read.
local function apply_label(d, l, id, t, fraud)
  local newest = tonumber(redis.call('HGET', d, '~newest'))
  if newest and t <= newest - horizon then return 2 end
  local prev = redis.call('HGET', l, id)
  if prev and string.sub(prev, -1) == fraud then return 1 end
  redis.call('HSET', l, id, string.format('%d', t) .. '|' .. fraud)
  redis.call('PEXPIRE', l, ttl)
  return 0
end

local out = {}
for e = 0, #KEYS / 3 - 1 do
  local k, a = 3 * e, 2 + 4 * e
  local kind, id, t, value = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]), ARGV[a + 4]
  if kind == 'tx' then
    out[e + 1] = apply_tx(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], id, t, value)
  else
    out[e + 1] = apply_label(KEYS[k + 2], KEYS[k + 3], id, t, value)
  end
end
return out
