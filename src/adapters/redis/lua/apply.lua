-- Applies a batch of events, in order. Each event touches its own entity's three keys, which share one hash
-- slot, so a batch is cluster-safe when all its entities share a slot (the store groups by slot on a cluster;
-- a single node takes any mix). One script call per batch: the per-call cost is most of the cost per event.
--
-- Per entity:
--   z  zset   score = event time (ms), member = "<seq, 12 digits> <amount> <tx id>": everything a read needs,
--             so reads are plain ZRANGEBYSCORE; equal times sort by seq, i.e. arrival order.
--   d  hash   tx id -> member (idempotency, and the member to remove on trim); ~m -> "<seq> <newest> <oldest>
--             <refreshed>" (last arrival number; newest and oldest event time held; event time of the last
--             expiry refresh), one field so that a write reads and writes two fields, not five
--   l  hash   tx id -> "t|fraud" labels, which may arrive before their transaction
--
-- KEYS: per event z, d, l. ARGV: 1 horizon ms, 2 ttl ms, 3 refresh ms, then per event 4 values: kind
-- ("tx" | "label"), tx id, t (ms), amount as exact decimal text (tx) or "0" | "1" (label).
-- Returns one code per event: 0 applied, 1 duplicate (already applied), 2 late (older than the horizon).
local horizon = tonumber(ARGV[1])
local ttl = ARGV[2]
-- Expiry is a safety net for idle entities. It is refreshed once per `refresh` of event time, not per event:
-- three commands per write instead of five. ttl ≥ horizon + refresh, so state never expires while it counts.
local refresh = tonumber(ARGV[3])

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
  local meta = redis.call('HMGET', d, '~m', id)
  if meta[2] then return 1 end
  local seq, newest, oldest, refreshed = 0, nil, nil, nil
  if meta[1] then
    local a, b, c, r = string.match(meta[1], '^(%S+) (%S+) (%S+) (%S+)$')
    seq, newest, oldest, refreshed = tonumber(a), tonumber(b), tonumber(c), tonumber(r)
    if t <= newest - horizon then return 2 end
  end
  seq = seq + 1
  local member = string.format('%012d %s %s', seq, amount, id)
  redis.call('ZADD', z, t, member)
  if not oldest or t < oldest then oldest = t end
  if not newest or t > newest then newest = t end
  if oldest <= newest - horizon then oldest = trim(z, d, l, newest - horizon) or t end
  local expire = not refreshed or newest >= refreshed + refresh
  if expire then refreshed = newest end
  redis.call('HSET', d, id, member, '~m', string.format('%d %d %d %d', seq, newest, oldest, refreshed))
  if expire then
    redis.call('PEXPIRE', z, ttl)
    redis.call('PEXPIRE', d, ttl)
  end
  return 0
end

local function apply_label(d, l, id, t, fraud)
  local meta = redis.call('HGET', d, '~m')
  local newest = meta and tonumber(string.match(meta, '^%S+ (%S+) '))
  if newest and t <= newest - horizon then return 2 end
  local prev = redis.call('HGET', l, id)
  if prev and string.sub(prev, -1) == fraud then return 1 end
  redis.call('HSET', l, id, string.format('%d', t) .. '|' .. fraud)
  redis.call('PEXPIRE', l, ttl)
  return 0
end

local out = {}
for e = 0, #KEYS / 3 - 1 do
  local k, a = 3 * e, 3 + 4 * e
  local kind, id, t, value = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]), ARGV[a + 4]
  if kind == 'tx' then
    out[e + 1] = apply_tx(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], id, t, value)
  else
    out[e + 1] = apply_label(KEYS[k + 2], KEYS[k + 3], id, t, value)
  end
end
return out
