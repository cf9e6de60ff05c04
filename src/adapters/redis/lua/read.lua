-- A bounded read of one entity kept as tiles (layout in apply.lua), in one call, so it is a snapshot: what the
-- windows with bounds b1 < … < bn need (see domain/features/tiles.ts, whose planTiles this walks the same way).
-- An entity still kept as a log is read whole instead (it is small: that is why it is a log).
--
-- The tiles covering (b1, bn] are taken level by level from the top (days): a tile that holds no bound (a bound
-- b is held by (lo, hi] when lo < b ≤ hi) is read whole; a tile that holds one is read, and if it holds more
-- than one record (an aggregate: a tile of one record is that record), the tiles inside it are taken the same
-- way; at the finest level, its records. Only what counts comes back: the records of the tiles read and the
-- aggregates of whole tiles, so the reply of a card is a handful of values and that of a terminal with 50,000
-- transactions ~70 aggregates and the records of the ten-minute tiles that hold a bound.
--
-- Distinct ids (DistinctCounts in records.ts): when asked for and no linked id of the entity has a record at or
-- after the last bound t (the transaction), each id's newest time (the :newest:<name> sets, apply.lua) says
-- whether it lies in a window (b, t]: one ZCOUNT per bound replaces the tiles' link sets, which then send only
-- the transaction's own ids where novelty features need them, and are not even read where none do. Else the
-- sets come whole, and the engine counts them.
--
-- KEYS: the entity's log, then its tiles. ARGV[1]: tile levels "<x> <ms> …" finest first (as for apply.lua);
-- ARGV[2]: the distinct counts wanted, "<name>=<own id>[@]…" (own id encoded as in links, empty if none; "@"
-- when novelty features read its first time, which the tiles' sets then keep; "" for none); then the bounds,
-- ascending.
-- Returns one string of lines (one bulk reply is far cheaper for a client to take than hundreds): the metadata
-- field (empty if none); the number n of aggregates; n lines "<field> <aggregate>", each followed by " |<link set>"
-- when the tile has one (see apply.lua); per other entity counted, "~<name> <own id's newest time or -> <count
-- after each bound>…"; then the records. For a log: the metadata, "-1", and every value of the log.
local log, key = KEYS[1], KEYS[2]
local levels = {}
for name, ms in string.gmatch(ARGV[1], '(%S+) (%S+)') do levels[#levels + 1] = { name = name, ms = tonumber(ms) } end
local bounds = {}
for i = 3, #ARGV do bounds[i - 2] = tonumber(ARGV[i]) end
local from, to = bounds[1], bounds[#bounds]

local meta = redis.call('HGET', log, '')
if meta and string.byte(meta, 1) ~= 64 then -- not '@': a log
  local all = redis.call('HVALS', log)
  return meta .. '\n-1\n' .. table.concat(all, '\n')
end
if not from or not (to > from) or not meta then return (meta or '') .. '\n0' end

local function holds(lo, hi)
  for i = 1, #bounds do
    local b = bounds[i]
    if b > lo and b <= hi then return true end
  end
  return false
end

local aggregates, sets, records, raw = {}, {}, {}, {}
-- The tiles of one level to read: level index, tile index, and whether a bound splits it.
local level, todo = #levels, {}
do
  local ms = levels[level].ms
  for k = math.ceil(from / ms) - 1, math.ceil(to / ms) - 1 do todo[#todo + 1] = k end
end
while #todo > 0 do
  local ms, name = levels[level].ms, levels[level].name
  local fields, tiles, split = {}, {}, {}
  for _, k in ipairs(todo) do
    local lo = k * ms
    local hi = lo + ms
    if hi > from and lo < to then
      fields[#fields + 1] = name .. ' ' .. k
      tiles[#fields] = k
      split[#fields] = holds(lo, hi)
    end
  end
  local below = {}
  if #fields > 0 then
    local got = redis.call('HMGET', key, unpack(fields))
    for j = 1, #fields do
      local v = got[j]
      if v then
        if string.byte(v, 1) == 61 then
          records[#records + 1] = v
        elseif not split[j] then
          aggregates[#aggregates + 1] = fields[j] .. ' ' .. v
          sets[#aggregates] = 's ' .. fields[j]
        elseif level == 1 then
          for r = 1, tonumber(string.match(v, '^(%d+)')) do raw[#raw + 1] = 'r ' .. tiles[j] .. ' ' .. r end
        else
          local ratio = ms / levels[level - 1].ms
          for c = tiles[j] * ratio, (tiles[j] + 1) * ratio - 1 do below[#below + 1] = c end
        end
      end
    end
  end
  todo, level = below, level - 1
end
-- unpack() is bounded by Lua's stack, so read records in slices.
for i = 1, #raw, 1000 do
  local got = redis.call('HMGET', key, unpack(raw, i, math.min(i + 999, #raw)))
  for j = 1, #got do
    if got[j] then records[#records + 1] = got[j] end
  end
end
local counted, own = nil, {}
if ARGV[2] ~= '' then
  local t = ARGV[#ARGV]
  counted = {}
  for name, id, novelty in string.gmatch(ARGV[2], '([^%s=]+)=([^%s@]*)(@?)') do
    local z = log .. ':newest:' .. name
    if redis.call('ZCOUNT', z, t, '+inf') > 0 then
      counted = nil
      break
    end
    local line = { '~' .. name, (id ~= '' and redis.call('ZSCORE', z, id)) or '-' }
    for i = 3, #ARGV - 1 do line[#line + 1] = redis.call('ZCOUNT', z, '(' .. ARGV[i], '+inf') end
    line[#line + 1] = 0
    counted[#counted + 1] = table.concat(line, ' ')
    if id ~= '' and novelty ~= '' then own[#own + 1] = ' ' .. name .. '=' .. id .. '@' end
  end
end
-- The link sets of the aggregates read, in slices: with counts, only the transaction's own ids in them.
if not counted or #own > 0 then
  for i = 1, #sets, 1000 do
    local got = redis.call('HMGET', key, unpack(sets, i, math.min(i + 999, #sets)))
    for j = 1, #got do
      local set = got[j]
      if set and counted then
        local mine = ''
        for _, entry in ipairs(own) do
          local s, e = string.find(set, entry, 1, true)
          if s then mine = mine .. entry .. string.match(set, '^%d+', e + 1) end
        end
        set = mine ~= '' and mine
      end
      if set then aggregates[i + j - 1] = aggregates[i + j - 1] .. ' |' .. set end
    end
  end
end
local head = meta .. '\n' .. #aggregates
if #aggregates > 0 then head = head .. '\n' .. table.concat(aggregates, '\n') end
if counted and #counted > 0 then head = head .. '\n' .. table.concat(counted, '\n') end
if #records > 0 then head = head .. '\n' .. table.concat(records, '\n') end
return head
