-- Applies a batch of events, in order. Each event touches its own entity's three keys, which share one hash
-- slot, so a batch is cluster-safe when all its entities share a slot (the store groups by slot on a cluster;
-- a single node takes any mix). One script call per batch: the per-call cost is most of the cost per event.
--
-- Per entity:
--   z  zset   score = event time (ms), member = "<seq, 12 digits> <amount> <tx id>": everything a read needs,
--             so reads are plain ZRANGEBYSCORE; equal times sort by seq, i.e. arrival order.
--   d  hash   tx id -> member (idempotency, and the member to remove on trim); ~seq ~newest ~oldest ~ttl
--   l  hash   tx id -> "t|fraud" labels, which may arrive before their transaction
--
-- KEYS: per event z, d, l. ARGV: 1 horizon ms, 2 ttl ms, then per event 4 values: kind ("tx" | "label"),
-- tx id, t (ms), amount as exact decimal text (tx) or "0" | "1" (label).
-- Returns one code per event: 0 applied, 1 duplicate (already applied), 2 late (older than the horizon).
local horizon = tonumber(ARGV[1])
local ttl = ARGV[2]
-- Expiry is a safety net for idle entities; refreshing it once per hour of event time keeps it cheap.
local REFRESH_MS = 3600000

local function trim(z, d, l, cutoff)
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)
  redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff)
  local ids = {}
  for i = 1, #old do ids[i] = string.match(old[i], '^%S+ %S+ (.*)$') end
  -- unpack() is bounded by Lua's stack, so delete in slices.
  for i = 1, #ids, 1000 do
    local slice = { unpack(ids, i, math.min(i + 999, #ids)) }
    redis.call('HDEL', d, unpack(slice))
    redis.call('HDEL', l, unpack(slice))
  end
  local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
  return tonumber(first[2])
end

local function apply_tx(z, d, l, id, t, amount)
  local meta = redis.call('HMGET', d, '~newest', '~seq', '~oldest', '~ttl', id)
  local newest, seq, oldest, refreshed = tonumber(meta[1]), tonumber(meta[2]) or 0, tonumber(meta[3]), tonumber(meta[4])
  if meta[5] then return 1 end
  if newest and t <= newest - horizon then return 2 end
  seq = seq + 1
  local member = string.format('%012d', seq) .. ' ' .. amount .. ' ' .. id
  redis.call('ZADD', z, t, member)
  if not oldest or t < oldest then oldest = t end
  if not newest or t > newest then newest = t end
  if oldest <= newest - horizon then oldest = trim(z, d, l, newest - horizon) or t end
  redis.call('HSET', d, id, member, '~seq', seq, '~newest', string.format('%d', newest), '~oldest', string.format('%d', oldest))
  if not refreshed or newest >= refreshed + REFRESH_MS then
    redis.call('PEXPIRE', z, ttl)
    redis.call('PEXPIRE', d, ttl)
    redis.call('HSET', d, '~ttl', string.format('%d', newest))
  end
  return 0
end

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
