-- Applies a batch of events, in order. Each entity is one hash, so a batch is cluster-safe when all its
-- entities share a slot (the store groups by slot on a cluster; a single node takes any mix). One script call
-- per batch: the per-call cost is most of the cost per event.
--
-- The hash of an entity (ids never hold spaces, so no field below can be taken for another):
--   <tx id>     "<t> <seq> <amount> <tx id>"  a transaction: event time (ms), arrival number (breaks ties
--                                     between equal times), amount as exact decimal text
--   " <tx id>"  "!<t> <0|1> <tx id>"  its fraud label, which may arrive before the transaction
--   ""          "#<seq> <newest> <maintained>"  last arrival number, newest event time held, and the newest
--                                     event time when expiry was last pushed back and old state last trimmed
-- Each value names its kind by its first character and carries its id, so a read is one HVALS: half the
-- strings of an HGETALL. A write is two commands: an HMGET of the metadata and the id (idempotency), one HSET.
-- Labels move the newest time as transactions do (as in the in-memory store). Readers sort by (t, seq) and
-- drop what lies past the horizon themselves, and writers treat it as gone, so upkeep can wait: expiry and
-- trimming run once per `refresh` of event time, not per event.
--
-- KEYS: one hash per event. ARGV: 1 horizon ms, 2 ttl ms, 3 refresh ms, then per event 4 values: kind
-- ("tx" | "label"), tx id, t (ms, integer text), amount as exact decimal text (tx) or "0" | "1" (label).
-- Returns one code per event: 0 applied, 1 duplicate (already applied), 2 late (older than the horizon).
local horizon = tonumber(ARGV[1])
local ttl = ARGV[2]
-- ttl ≥ horizon + refresh, so state never expires while it counts.
local refresh = tonumber(ARGV[3])

-- Event time of a stored transaction or label value.
local function time_of(v)
  return tonumber(string.match(v, '^!?(%S+)'))
end

-- Drops transactions at or before `cutoff`, and labels at or before it unless their transaction stays (the
-- label is its fraud flag); HGETALL is fine once per `refresh` of event time.
local function trim(d, cutoff)
  local all = redis.call('HGETALL', d)
  local kept, old = {}, {}
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    if f ~= '' and string.sub(v, 1, 1) ~= '!' then
      if time_of(v) <= cutoff then old[#old + 1] = f else kept[f] = true end
    end
  end
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    if string.sub(v, 1, 1) == '!' and time_of(v) <= cutoff and not kept[string.sub(f, 2)] then old[#old + 1] = f end
  end
  -- unpack() is bounded by Lua's stack, so delete in slices.
  for i = 1, #old, 1000 do redis.call('HDEL', d, unpack(old, i, math.min(i + 999, #old))) end
end

-- The metadata field: last arrival number, newest event time and last upkeep (as text); 0, nil, nil if none.
local function parse_meta(m)
  if not m then return 0, nil, nil end
  local s, n, u = string.match(m, '^#(%S+) (%S+) (%S+)$')
  return tonumber(s), n, u
end

-- Whether a stored value (transaction or label) lies past the horizon: gone for readers, and so for
-- idempotency too, whether or not upkeep has trimmed it yet.
local function expired(v, newest)
  return newest and time_of(v) <= tonumber(newest) - horizon
end

-- After an event at ts is applied: the metadata to write, and whether upkeep (trim, expiry) ran.
local function settle(d, seq, newest, maintained, ts)
  if not newest or tonumber(ts) > tonumber(newest) then newest = ts end
  local upkeep = not maintained or tonumber(newest) >= tonumber(maintained) + refresh
  if upkeep then
    if maintained then trim(d, tonumber(newest) - horizon) end
    maintained = newest
  end
  return '#' .. seq .. ' ' .. newest .. ' ' .. maintained, upkeep
end

local function apply_tx(d, id, ts, amount)
  local meta = redis.call('HMGET', d, '', id)
  local seq, newest, maintained = parse_meta(meta[1])
  if newest and tonumber(ts) <= tonumber(newest) - horizon then return 2 end
  if meta[2] and not expired(meta[2], newest) then return 1 end
  seq = seq + 1
  local m, upkeep = settle(d, seq, newest, maintained, ts)
  redis.call('HSET', d, id, ts .. ' ' .. seq .. ' ' .. amount .. ' ' .. id, '', m)
  if upkeep then redis.call('PEXPIRE', d, ttl) end
  return 0
end

local function apply_label(d, id, ts, fraud)
  local meta = redis.call('HMGET', d, '', ' ' .. id)
  local seq, newest, maintained = parse_meta(meta[1])
  if newest and tonumber(ts) <= tonumber(newest) - horizon then return 2 end
  if meta[2] and not expired(meta[2], newest) and string.match(meta[2], '^!%S+ (%S)') == fraud then return 1 end
  local m, upkeep = settle(d, seq, newest, maintained, ts)
  redis.call('HSET', d, ' ' .. id, '!' .. ts .. ' ' .. fraud .. ' ' .. id, '', m)
  if upkeep then redis.call('PEXPIRE', d, ttl) end
  return 0
end

local out = {}
for e = 1, #KEYS do
  local a = 3 + 4 * (e - 1)
  local kind, id, ts, value = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  if kind == 'tx' then
    out[e] = apply_tx(KEYS[e], id, ts, value)
  else
    out[e] = apply_label(KEYS[e], id, ts, value)
  end
end
return out
