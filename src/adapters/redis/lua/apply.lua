-- Applies a batch of events, in order. Each entity is two hashes in one slot (their keys share the entity's
-- hash tag), so a batch is cluster-safe when all its entities share a slot (the store groups by slot on a
-- cluster; a single node takes any mix). One script call per batch: the per-call cost is most of the cost per
-- event.
--
-- An entity starts as a log, and becomes tiles once its log holds more than ARGV[5] fields: a card never
-- needs more than its log, and reading a small log whole is cheaper than any lookup; a busy terminal's reads
-- must not grow with its history (see domain/features/tiles.ts).
--
-- The log <prefix>:{<entity>:<id>} (ids never hold whitespace, so no field below can be taken for another):
--   <tx id>     "<t> <seq> <amount> <tx id>"  a transaction: event time (ms), arrival number (breaks ties
--               between equal times), amount as exact decimal text
--   " <tx id>"  "!<t> <0|1> <tx id>"  its fraud label, which may arrive before the transaction
--   ""          "#<seq> <newest> <maintained>"  last arrival number, newest event time held, and the newest
--               event time when expiry was last pushed back and old state last trimmed
-- Each value names its kind by its first character and carries its id, so a read is one HVALS (log.lua).
--
-- Once tiles, the log holds only
--   ""          "@<version> <newest> <maintained> <oldest>"  a counter bumped by every event that changes the
--               entity (also the arrival number of transactions), newest time, last upkeep as above, and the
--               oldest time of a transaction or label held (no trim while it is inside the horizon)
-- and the tiles <prefix>:{<entity>:<id>}:tiles hold
--   <tx id>     "<t> <seq>"            a transaction is held: where its record is; or "!<t> <0|1>" while only its
--                                      label is (so a transaction learns its flag from the field it reads anyway)
--   " <tx id>"  "!<t> <0|1> <tx id>"   its fraud label
--   "<x> <k>"   tile k of the level named x (d: day, q: six hours, h: hour, m: ten minutes; finest first in
--               ARGV[4]), in one of two forms:
--                 "=<t> <seq> <amount> <0|1> <tx id>"  the tile holds this one record, and nothing is kept
--                      below it;
--                 "<count> <frauds> <dt> <sum part>…"  the tile holds `count` records, the newest at tile start
--                      + dt, their amount sum exact as the parts whose exact total it is (an error-free cascade,
--                      as the engine's ExactSum), each of its tiles one level down in one of these forms.
--   "r <k> <i>" "=<t> <seq> <amount> <0|1> <tx id>"  the i-th record to arrive in finest tile k, when that
--               tile holds two or more
--   "s <x> <k>" " <name>=<id>@<t>…"  the distinct links of aggregate tile k of level x (one entry per other
--               entity and id, with the time of the tile's first record with it), for entities whose records
--               carry links (device and network features, issue 20; see TileColumns in records.ts): kept next
--               to the aggregate, read with it; a one-record tile's links are in its record.
-- Records (in the log and in tiles) end with their links, " <name>=<id>…", when their transaction had any.
-- Next to tiles, per other entity named in links, <prefix>:{<entity>:<id>}:newest:<name> is a sorted set: each
-- linked id (as encoded in links) scored by the time of its newest record, trimmed with the tiles. It counts the
-- distinct ids of windows that end at a transaction in one ZCOUNT each, however many ids there are (read.lua;
-- DistinctCounts in records.ts): a device shared by 5,000 cards no longer sends its tiles' 5,000-id sets.
-- And <prefix>:{<entity>:<id>}:labels, a sorted set of the tx ids whose label is held without its transaction,
-- by the label's time, so that a trim finds them (trim_tiles).
-- A read (read.lua) descends only into the tiles a window bound splits. A write is one HMGET of the log (its
-- metadata and the event's field), then for tiles one HMGET (id, day tile), an HGET per level it descends into,
-- and one HSET each. A label after its transaction flips the flag in the record and moves the fraud counts of
-- the tiles above it. Labels move the newest time as transactions do (as in the in-memory store). Readers drop
-- what lies past the horizon themselves, and writers treat it as gone, so upkeep can wait: expiry and trimming
-- run once per `refresh` of event time (tiles: at least once per day of it), not per event. A log's trim reads
-- the whole log (it is small); a trim of tiles reads only the day tiles that fell out.
--
-- KEYS: per event, the entity's log then its tiles. ARGV: 1 horizon ms, 2 ttl ms, 3 refresh ms, 4 tile levels
-- "<x> <ms> …" finest first, 5 the most fields a log holds before it becomes tiles, then per event 5 values:
-- kind ("tx" | "label"), tx id, t (ms, integer text), amount as exact decimal text (tx) or "0" | "1" (label),
-- and the transaction's links " <name>=<id>…" (empty for none and for labels).
-- Returns one code per event: 0 applied, 1 duplicate (already applied), 2 late (older than the horizon).
local horizon = tonumber(ARGV[1])
local ttl = ARGV[2]
-- ttl ≥ horizon + refresh, so state never expires while it counts.
local refresh = tonumber(ARGV[3])
local levels, size_of = {}, {}
for name, ms in string.gmatch(ARGV[4], '(%S+) (%S+)') do
  levels[#levels + 1] = { name = name, ms = tonumber(ms) }
  size_of[name] = tonumber(ms)
end
size_of['r'] = levels[1].ms
local top = #levels
local log_fields = tonumber(ARGV[5])

-- Event time of a stored value: a log transaction ("t …"), a label ("!t …"), a tiles id field ("t seq" or
-- "!t flag") or a record ("=t …").
local function time_of(v)
  return tonumber(string.match(v, '^[!=]?(%S+)'))
end

-- Whether a stored value lies past the horizon: gone for readers, and so for idempotency too, whether or not
-- upkeep has trimmed it yet.
local function expired(v, newest)
  return newest and time_of(v) <= tonumber(newest) - horizon
end

-- ---------------------------------------------------------------------------------------------------- the log

-- Drops transactions at or before `cutoff`, and labels at or before it unless their transaction stays (the
-- label is its fraud flag); HGETALL is fine once per `refresh` of event time.
local function trim_log(d, cutoff)
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

-- The log's metadata field: last arrival number, newest event time and last upkeep (as text); 0, nil, nil if none.
local function parse_log_meta(m)
  if not m then return 0, nil, nil end
  local s, n, u = string.match(m, '^#(%S+) (%S+) (%S+)$')
  return tonumber(s), n, u
end

-- After an event at ts is applied to a log: the metadata to write, and whether upkeep (trim, expiry) ran.
local function settle_log(d, seq, newest, maintained, ts)
  if not newest or tonumber(ts) > tonumber(newest) then newest = ts end
  local upkeep = not maintained or tonumber(newest) >= tonumber(maintained) + refresh
  if upkeep then
    if maintained then trim_log(d, tonumber(newest) - horizon) end
    maintained = newest
  end
  return '#' .. seq .. ' ' .. newest .. ' ' .. maintained, upkeep
end

local function log_tx(d, meta, held, id, ts, amount, links)
  local seq, newest, maintained = parse_log_meta(meta)
  if newest and tonumber(ts) <= tonumber(newest) - horizon then return 2 end
  if held and not expired(held, newest) then return 1 end
  seq = seq + 1
  local m, upkeep = settle_log(d, seq, newest, maintained, ts)
  redis.call('HSET', d, id, ts .. ' ' .. seq .. ' ' .. amount .. ' ' .. id .. links, '', m)
  if upkeep then redis.call('PEXPIRE', d, ttl) end
  return 0
end

local function log_label(d, meta, label, id, ts, fraud)
  local seq, newest, maintained = parse_log_meta(meta)
  if newest and tonumber(ts) <= tonumber(newest) - horizon then return 2 end
  if label and not expired(label, newest) and string.match(label, '^!%S+ (%S)') == fraud then return 1 end
  local m, upkeep = settle_log(d, seq, newest, maintained, ts)
  redis.call('HSET', d, ' ' .. id, '!' .. ts .. ' ' .. fraud .. ' ' .. id, '', m)
  if upkeep then redis.call('PEXPIRE', d, ttl) end
  return 0
end

-- -------------------------------------------------------------------------------------------------- the tiles

-- Tile k of a level covers (k·ms, (k+1)·ms], as tileOf in tiles.ts.
local function tile(t, ms)
  return math.ceil(t / ms) - 1
end

-- Shortest of %.15g and %.17g that reads back as the same double.
local function num(x)
  local s = string.format('%.15g', x)
  if tonumber(s) ~= x then s = string.format('%.17g', x) end
  return s
end

-- parts + x, exactly: Knuth's two-sum into each part in turn, its rounding error carried to the next.
local function add_exact(parts, x)
  local i = 1
  while x ~= 0 do
    local a = parts[i]
    if not a then
      parts[i] = x
      return
    end
    local s = a + x
    local bp = s - a
    x = (a - (s - bp)) + (x - bp)
    parts[i] = s
    i = i + 1
  end
end

local function is_record(v)
  return string.byte(v, 1) == 61 -- '='
end

-- A value of a tiles id field that says a label came first: "!<t> <0|1>".
local function is_pending(v)
  return string.byte(v, 1) == 33 -- '!'
end

local function parse_agg(v)
  local count, frauds, dt, rest = string.match(v, '^(%d+) (%d+) (%d+)(.*)$')
  local parts, at = {}, 1
  while true do
    local s, e = string.find(rest, '%S+', at)
    if not s then break end
    parts[#parts + 1] = tonumber(string.sub(rest, s, e))
    at = e + 1
  end
  return tonumber(count), tonumber(frauds), tonumber(dt), parts
end

-- Counts and dt are whole numbers far below 1e14, which Lua writes exactly.
local function format_agg(count, frauds, dt, parts)
  local out = { count, frauds, dt }
  for i = 1, #parts do out[#out + 1] = num(parts[i]) end
  return table.concat(out, ' ')
end

-- The aggregate of tile k (level l) once the record (t, amount, fraud) joins `v`, an aggregate or a record.
local function add_to(v, l, k, t, amount, fraud)
  local start = k * levels[l].ms
  local count, frauds, dt, parts
  if is_record(v) then
    local rt, ra, rf = string.match(v, '^=(%S+) %S+ (%S+) (%S)')
    count, frauds, dt, parts = 1, tonumber(rf), tonumber(rt) - start, {}
    add_exact(parts, tonumber(ra))
  else
    count, frauds, dt, parts = parse_agg(v)
  end
  add_exact(parts, tonumber(amount))
  if t - start > dt then dt = t - start end
  return format_agg(count + 1, frauds + fraud, dt, parts)
end

-- The links a record ends with: " <name>=<id>…" after its tx id (the fifth field of a tiles record "=t seq
-- amount flag id", the fourth of a log transaction "t seq amount id"); '' when none.
local function record_links(v, fields)
  local pattern = fields == 5 and '^%S+ %S+ %S+ %S+ %S+(.*)$' or '^%S+ %S+ %S+ %S+(.*)$'
  return string.match(v, pattern) or ''
end

-- The link set of an aggregate tile once `links` (at time t) join it: a new name=id is appended with t, an
-- earlier first time replaces the one held.
local function add_links(set, links, t)
  set = set or ''
  for link in string.gmatch(links, '%S+') do
    local entry = ' ' .. link .. '@'
    local s, e = string.find(set, entry, 1, true)
    if not s then
      set = set .. entry .. string.format('%d', t)
    else
      local first = string.match(set, '^(%d+)', e + 1)
      if t < tonumber(first) then
        set = string.sub(set, 1, e) .. string.format('%d', t) .. string.sub(set, e + 1 + #first)
      end
    end
  end
  return set
end

-- Puts `record` (at time t) in its tiles, down from the top level: an empty tile takes the record; a one-record
-- tile becomes an aggregate and both records go one level down; an aggregate takes the record, and so does its
-- tile one level down. `get(field)` reads the tiles hash (nil or false: none), `put(field, value)` writes it.
-- A record with links (' <name>=<id>…' after its id) adds them to the link set ("s <x> <k>") of every aggregate
-- it joins.
local function insert(get, put, t, amount, fraud, record)
  local links = record_links(record, 5)
  local l = top
  local k = tile(t, levels[l].ms)
  local field = levels[l].name .. ' ' .. k
  local v = get(field)
  while true do
    if not v then
      put(field, record)
      return
    end
    put(field, add_to(v, l, k, t, amount, fraud))
    local theirs_links = is_record(v) and record_links(v, 5) or ''
    if links ~= '' or theirs_links ~= '' then
      local sf = 's ' .. field
      local set = get(sf)
      if theirs_links ~= '' then set = add_links(set, theirs_links, time_of(v)) end
      put(sf, add_links(set, links, t))
    end
    if is_record(v) then
      if l == 1 then
        put('r ' .. k .. ' 1', v)
        put('r ' .. k .. ' 2', record)
        return
      end
      local below = levels[l - 1]
      local mine = tile(t, below.ms)
      local theirs = tile(tonumber(string.match(v, '^=(%d+)')), below.ms)
      field = below.name .. ' ' .. mine
      if theirs ~= mine then
        put(below.name .. ' ' .. theirs, v)
        put(field, record)
        return
      end
      -- Both in the same tile one level down, which holds nothing yet: it holds `v` now.
      l, k = l - 1, mine
    else
      if l == 1 then
        put('r ' .. k .. ' ' .. (parse_agg(v) + 1), record)
        return
      end
      l = l - 1
      k = tile(t, levels[l].ms)
      field = levels[l].name .. ' ' .. k
      v = get(field)
    end
  end
end

-- Labels whose transaction is not held (it has not arrived, or it was trimmed before its label's time came):
-- <log>:labels, a sorted set of their tx ids by the label's time, in the entity's hash slot, so that a trim finds
-- them without reading every field; its member "" at +inf marks tiles kept this way since promotion (trim_whole).
local function labels_key(log)
  return log .. ':labels'
end

-- The tx id of a tiles record "=<t> <seq> <amount> <0|1> <tx id>[ <links>]".
local function record_id(v)
  return string.match(v, '^=%S+ %S+ %S+ %S (%S+)')
end

-- HMGET of any number of fields, a slice at a time (unpack() is bounded by Lua's stack): the values in order.
local function hmget_all(d, fields)
  local out = {}
  for i = 1, #fields, 1000 do
    local got = redis.call('HMGET', d, unpack(fields, i, math.min(i + 999, #fields)))
    for j = 1, #got do out[i + j - 1] = got[j] end
  end
  return out
end

-- The id fields and labels of `ids`: HMGET of "<id>", " <id>" for each, the values in that order.
local function ids_and_labels(d, ids)
  local asked = {}
  for i = 1, #ids do
    asked[2 * i - 1] = ids[i]
    asked[2 * i] = ' ' .. ids[i]
  end
  return hmget_all(d, asked)
end

-- Drops the tiles that lie wholly at or before `cutoff`, found from the top level down as a read finds them
-- (tiles, link sets, records), the id fields and labels of their records unless a newer transaction holds the
-- id, and the labels past the horizon whose transaction is not held (<log>:labels). The work is the state that
-- falls out, not the state held: each record is trimmed once, so the cost per event stays constant however busy
-- the entity (the whole-hash scan it replaces blocked Redis ~300 ms per upkeep of a 50,000-transaction terminal,
-- bench/trim.ts; 9–15 ms a day now). `from` is the oldest time held: no tile before it exists. A tile that holds
-- the cutoff stays whole: readers split it and skip its old records. Returns a lower bound of the oldest time left
-- (start of the top tile holding the cutoff).
local function trim_tiles(log, d, from, cutoff)
  local dead, ids = {}, {}
  local l = top
  local ks = {}
  for k = tile(from, levels[top].ms), tile(cutoff, levels[top].ms) - 1 do ks[#ks + 1] = k end
  if cutoff % levels[top].ms == 0 then ks[#ks + 1] = tile(cutoff, levels[top].ms) end
  while #ks > 0 do
    local name, ms = levels[l].name, levels[l].ms
    local fields = {}
    for i = 1, #ks do fields[i] = name .. ' ' .. ks[i] end
    local got = hmget_all(d, fields)
    local below, raw = {}, {}
    for i = 1, #ks do
      local v = got[i]
      if v then
        dead[#dead + 1] = fields[i]
        dead[#dead + 1] = 's ' .. fields[i]
        if is_record(v) then
          ids[#ids + 1] = record_id(v)
        elseif l == 1 then
          for r = 1, parse_agg(v) do raw[#raw + 1] = 'r ' .. ks[i] .. ' ' .. r end
        else
          local cms = levels[l - 1].ms
          for c = tile(ks[i] * ms + 1, cms), tile((ks[i] + 1) * ms, cms) do below[#below + 1] = c end
        end
      end
    end
    if #raw > 0 then
      local records = hmget_all(d, raw)
      for i = 1, #raw do
        dead[#dead + 1] = raw[i]
        if records[i] then ids[#ids + 1] = record_id(records[i]) end
      end
    end
    ks, l = below, l - 1
  end
  -- The records' ids and labels: an id field goes unless a newer transaction holds the id; a label goes once its
  -- own time is past the horizon too, else it waits in <log>:labels.
  local lz = labels_key(log)
  local held = ids_and_labels(d, ids)
  local waiting = {}
  for i = 1, #ids do
    local v, label = held[2 * i - 1], held[2 * i]
    local kept = v and time_of(v) > cutoff
    if v and not kept then dead[#dead + 1] = ids[i] end
    if label and not kept then
      if time_of(label) <= cutoff then
        dead[#dead + 1] = ' ' .. ids[i]
      else
        waiting[#waiting + 1] = string.format('%d', time_of(label))
        waiting[#waiting + 1] = ids[i]
      end
    end
  end
  -- Labels without their transaction whose time has come; one corrected since it was listed is listed again.
  local due = redis.call('ZRANGEBYSCORE', lz, '-inf', string.format('%d', cutoff))
  if #due > 0 then
    redis.call('ZREMRANGEBYSCORE', lz, '-inf', string.format('%d', cutoff))
    held = ids_and_labels(d, due)
    for i = 1, #due do
      local v, label = held[2 * i - 1], held[2 * i]
      local tx_kept = v and not is_pending(v) and time_of(v) > cutoff
      if label and not tx_kept then
        if time_of(label) <= cutoff then
          dead[#dead + 1] = ' ' .. due[i]
          if v and (is_pending(v) or time_of(v) <= cutoff) then dead[#dead + 1] = due[i] end
        else
          waiting[#waiting + 1] = string.format('%d', time_of(label))
          waiting[#waiting + 1] = due[i]
        end
      end
    end
  end
  for i = 1, #waiting, 1000 do redis.call('ZADD', lz, unpack(waiting, i, math.min(i + 999, #waiting))) end
  for i = 1, #dead, 1000 do redis.call('HDEL', d, unpack(dead, i, math.min(i + 999, #dead))) end
  return tile(cutoff, levels[top].ms) * levels[top].ms + 1
end

-- The time of a stored id field ("t seq" | "!t flag") or label ("!t flag id"), with plain finds.
local function stored_time(v)
  local from = string.byte(v, 1) == 33 and 2 or 1
  return tonumber(string.sub(v, from, string.find(v, ' ', from, true) - 1))
end

-- Once per entity whose tiles were written before <log>:labels existed: the whole-hash trim of those days
-- (every field read; tiles of levels no longer configured go too), listing the labels held without their
-- transaction in <log>:labels, then the member "" at +inf there, which says it was done (no tx id is empty).
-- Returns the oldest time of a transaction or label left.
local function trim_whole(log, d, cutoff)
  local all = redis.call('HGETALL', d)
  local kept, old, oldest = {}, {}, math.huge
  for i = 1, #all, 2 do
    local f = all[i]
    if string.byte(f, 1) ~= 32 then
      local space = string.find(f, ' ', 1, true)
      if space then
        if string.sub(f, 1, space - 1) == 's' then
          f = string.sub(f, space + 1)
          space = string.find(f, ' ', 1, true)
        end
        local ms = size_of[string.sub(f, 1, space - 1)]
        local after = string.find(f, ' ', space + 1, true)
        local k = tonumber(string.sub(f, space + 1, after and after - 1))
        f = all[i]
        if not ms or (k + 1) * ms <= cutoff then old[#old + 1] = f end
      else
        local t = stored_time(all[i + 1])
        if t <= cutoff then
          old[#old + 1] = f
        else
          kept[f] = all[i + 1]
          if t < oldest then oldest = t end
        end
      end
    end
  end
  local waiting = { '+inf', '' }
  for i = 1, #all, 2 do
    local f = all[i]
    if string.byte(f, 1) == 32 then
      local t = stored_time(all[i + 1])
      local tx = kept[string.sub(f, 2)]
      if t <= cutoff and not tx then
        old[#old + 1] = f
      else
        if t < oldest then oldest = t end
        if not tx or is_pending(tx) then
          waiting[#waiting + 1] = string.format('%d', t)
          waiting[#waiting + 1] = string.sub(f, 2)
        end
      end
    end
  end
  for i = 1, #old, 1000 do redis.call('HDEL', d, unpack(old, i, math.min(i + 999, #old))) end
  for i = 1, #waiting, 1000 do redis.call('ZADD', labels_key(log), unpack(waiting, i, math.min(i + 999, #waiting))) end
  return oldest
end

-- The metadata of tiles: version, newest event time, last upkeep and oldest time held.
local function parse_tiles_meta(m)
  local s, n, u, o = string.match(m, '^@(%S+) (%S+) (%S+) (%S+)$')
  return tonumber(s), n, u, tonumber(o)
end

-- After an event at ts is applied to tiles: the metadata to write, whether upkeep (trim, expiry) ran, and the
-- newest time from now on. The trim's scan of every field is skipped while nothing held is past the horizon.
local function settle_tiles(log, tiles, version, newest, maintained, oldest, ts)
  local t = tonumber(ts)
  if t > tonumber(newest) then newest = ts end
  if t < oldest then oldest = t end
  -- Upkeep at least once per top tile of event time (a day), so that a trim drops at most about a day of the
  -- entity's records.
  local upkeep = tonumber(newest) >= tonumber(maintained) + math.min(refresh, levels[top].ms)
  if upkeep then
    local cutoff = tonumber(newest) - horizon
    if not redis.call('ZSCORE', labels_key(log), '') then
      oldest = math.min(trim_whole(log, tiles, cutoff), t)
    elseif oldest <= cutoff then
      oldest = math.min(trim_tiles(log, tiles, oldest, cutoff), t)
    end
    maintained = newest
  end
  return '@' .. version .. ' ' .. newest .. ' ' .. maintained .. ' ' .. string.format('%d', oldest), upkeep,
    tonumber(newest)
end

local function newest_key(log, name)
  return log .. ':newest:' .. name
end

-- A record with `links` at ts: each linked id's newest time moves up to ts (ZADD GT leaves a later one).
local function add_newest(log, links, ts, upkeep, cutoff)
  for name, linked in string.gmatch(links, '([^%s=]+)=(%S+)') do
    local z = newest_key(log, name)
    redis.call('ZADD', z, 'GT', ts, linked)
    if upkeep then redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff) end
    -- Pushed back at every linked record, not only at upkeep as the tiles are: labels keep a customer's tiles
    -- alive, and the set must live as long as any record it counts (an older set left behind counts nothing:
    -- its ids lie past the horizon, before every bound).
    redis.call('PEXPIRE', z, ttl)
  end
end

local function tiles_tx(log, tiles, meta, id, ts, amount, links)
  local t = tonumber(ts)
  local version, newest, maintained, oldest = parse_tiles_meta(meta)
  if t <= tonumber(newest) - horizon then return 2 end
  local day = levels[top].name .. ' ' .. tile(t, levels[top].ms)
  local got = redis.call('HMGET', tiles, id, day)
  local held = got[1]
  if held and not is_pending(held) and not expired(held, newest) then return 1 end
  version = version + 1
  local fraud = 0
  if held and is_pending(held) and not expired(held, newest) and string.match(held, '^!%S+ (%S)') == '1' then
    fraud = 1
  end
  local m, upkeep, now = settle_tiles(log, tiles, version, newest, maintained, oldest, ts)
  local record = '=' .. ts .. ' ' .. version .. ' ' .. amount .. ' ' .. fraud .. ' ' .. id .. links
  local args = { id, ts .. ' ' .. version }
  local written = {}
  insert(function(f)
    if written[f] then return written[f] end
    if f == day then return got[2] end
    return redis.call('HGET', tiles, f)
  end, function(f, v)
    written[f] = v
    args[#args + 1] = f
    args[#args + 1] = v
  end, t, amount, fraud, record)
  redis.call('HSET', tiles, unpack(args))
  redis.call('HSET', log, '', m)
  if upkeep then
    redis.call('PEXPIRE', log, ttl)
    redis.call('PEXPIRE', tiles, ttl)
    redis.call('PEXPIRE', labels_key(log), ttl)
  end
  if links ~= '' then add_newest(log, links, ts, upkeep, string.format('%d', now - horizon)) end
  return 0
end

-- Where the record of (t, seq) is in tiles, from the top level down: its field and value, and the fields and
-- values of the aggregates above it; nil if it is not there.
local function find_record(tiles, t, seq)
  local fields, index = {}, {}
  for l = top, 1, -1 do
    index[l] = tile(t, levels[l].ms)
    fields[#fields + 1] = levels[l].name .. ' ' .. index[l]
  end
  local got = redis.call('HMGET', tiles, unpack(fields))
  local above = {}
  for l = top, 1, -1 do
    local field, v = fields[top - l + 1], got[top - l + 1]
    if not v then return nil end
    if is_record(v) then
      if string.match(v, '^=%S+ (%S+)') ~= seq then return nil end
      return field, v, above
    end
    above[#above + 1] = { field, v }
    if l == 1 then
      -- The tile's records, a slice at a time (unpack() is bounded by Lua's stack).
      local count = parse_agg(v)
      for from = 1, count, 1000 do
        local raw = {}
        for i = from, math.min(from + 999, count) do raw[#raw + 1] = 'r ' .. index[1] .. ' ' .. i end
        local records = redis.call('HMGET', tiles, unpack(raw))
        for i = 1, #raw do
          if records[i] and string.match(records[i], '^=%S+ (%S+)') == seq then return raw[i], records[i], above end
        end
      end
      return nil
    end
  end
end

local function tiles_label(log, tiles, meta, id, ts, fraud)
  local version, newest, maintained, oldest = parse_tiles_meta(meta)
  if tonumber(ts) <= tonumber(newest) - horizon then return 2 end
  local got = redis.call('HMGET', tiles, ' ' .. id, id)
  if got[1] and not expired(got[1], newest) and string.match(got[1], '^!%S+ (%S)') == fraud then return 1 end
  local m, upkeep, now = settle_tiles(log, tiles, version + 1, newest, maintained, oldest, ts)
  local args = { ' ' .. id, '!' .. ts .. ' ' .. fraud .. ' ' .. id }
  -- The transaction, if held (and not trimmed just now): its record and the tiles above it take the new flag.
  -- If not, its id field says what the transaction will find when it arrives.
  local held = got[2]
  -- Against the newest time after this label: its own upkeep may just have trimmed the transaction.
  if not held or is_pending(held) or expired(held, now) then
    args[#args + 1] = id
    args[#args + 1] = '!' .. ts .. ' ' .. fraud
    held = nil
    redis.call('ZADD', labels_key(log), ts, id)
  end
  local t = held and time_of(held)
  if held and t > now - horizon then
    local field, record, above = find_record(tiles, t, string.match(held, '^%S+ (%S+)$'))
    if field then
      -- The record is "=<t> <seq> <amount> <flag> <id>".
      local _, b = string.find(record, '^=%S+ %S+ %S+ ')
      if string.sub(record, b + 1, b + 1) ~= fraud then
        local delta = fraud == '1' and 1 or -1
        args[#args + 1] = field
        args[#args + 1] = string.sub(record, 1, b) .. fraud .. string.sub(record, b + 2)
        for _, fv in ipairs(above) do
          local count, frauds, dt, parts = parse_agg(fv[2])
          args[#args + 1] = fv[1]
          args[#args + 1] = format_agg(count, frauds + delta, dt, parts)
        end
      end
    end
  end
  redis.call('HSET', tiles, unpack(args))
  redis.call('HSET', log, '', m)
  if upkeep then
    redis.call('PEXPIRE', log, ttl)
    redis.call('PEXPIRE', tiles, ttl)
  end
  if upkeep or not held then redis.call('PEXPIRE', labels_key(log), ttl) end
  return 0
end

-- A log that outgrew ARGV[5] fields becomes tiles: what lies inside the horizon is carried over (transactions
-- with the flags their labels give, labels, labels still waiting for their transaction), built in a Lua table
-- and written at once, and the log keeps only the metadata.
local function promote(log, tiles)
  local all = redis.call('HGETALL', log)
  local meta, labels, txs = nil, {}, {}
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    if f == '' then
      meta = v
    elseif string.byte(f, 1) == 32 then
      labels[string.sub(f, 2)] = v
    else
      txs[#txs + 1] = v
    end
  end
  local seq, newest, maintained = parse_log_meta(meta)
  local cutoff = tonumber(newest) - horizon
  local h, oldest, newest_of = {}, math.huge, {}
  local get = function(f) return h[f] end
  local put = function(f, v) h[f] = v end
  for _, v in ipairs(txs) do
    local ts, s, amount, id, links = string.match(v, '^(%S+) (%S+) (%S+) (%S+)(.*)$')
    local t = tonumber(ts)
    if t > cutoff then
      local label = labels[id]
      local fraud = (label and not expired(label, newest) and string.match(label, '^!%S+ (%S)') == '1') and 1 or 0
      insert(get, put, t, amount, fraud, '=' .. ts .. ' ' .. s .. ' ' .. amount .. ' ' .. fraud .. ' ' .. id .. links)
      h[id] = ts .. ' ' .. s
      if t < oldest then oldest = t end
      for name, linked in string.gmatch(links, '([^%s=]+)=(%S+)') do
        newest_of[name] = newest_of[name] or {}
        local had = newest_of[name][linked]
        if not had or t > had then newest_of[name][linked] = t end
      end
    end
  end
  local waiting = { '+inf', '' }
  for id, v in pairs(labels) do
    local t = time_of(v)
    if t > cutoff then
      h[' ' .. id] = v
      if not h[id] then
        h[id] = string.match(v, '^(!%S+ %S)')
        waiting[#waiting + 1] = string.format('%d', t)
        waiting[#waiting + 1] = id
      end
      if t < oldest then oldest = t end
    end
  end
  if oldest == math.huge then oldest = tonumber(newest) end
  local args = {}
  for f, v in pairs(h) do
    args[#args + 1] = f
    args[#args + 1] = v
  end
  -- Tiles left over from an earlier life of the entity (its log key lost alone) must not be merged in.
  redis.call('DEL', tiles, labels_key(log))
  for i = 1, #args, 1000 do redis.call('HSET', tiles, unpack(args, i, math.min(i + 999, #args))) end
  for i = 1, #waiting, 1000 do redis.call('ZADD', labels_key(log), unpack(waiting, i, math.min(i + 999, #waiting))) end
  redis.call('PEXPIRE', labels_key(log), ttl)
  for name, ids in pairs(newest_of) do
    local z = newest_key(log, name)
    redis.call('DEL', z)
    local zargs = {}
    for linked, t in pairs(ids) do
      zargs[#zargs + 1] = string.format('%d', t)
      zargs[#zargs + 1] = linked
    end
    for i = 1, #zargs, 1000 do redis.call('ZADD', z, unpack(zargs, i, math.min(i + 999, #zargs))) end
    redis.call('PEXPIRE', z, ttl)
  end
  redis.call('DEL', log)
  redis.call('HSET', log, '', '@' .. seq .. ' ' .. newest .. ' ' .. maintained .. ' ' .. string.format('%d', oldest))
  redis.call('PEXPIRE', log, ttl)
  redis.call('PEXPIRE', tiles, ttl)
end

local out = {}
for e = 1, #KEYS / 2 do
  local log, tiles = KEYS[2 * e - 1], KEYS[2 * e]
  local a = 5 + 5 * (e - 1)
  local kind, id, ts, value, links = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local got = redis.call('HMGET', log, '', kind == 'tx' and id or ' ' .. id)
  local meta = got[1]
  if meta and string.byte(meta, 1) == 64 then -- '@': tiles
    if kind == 'tx' then
      out[e] = tiles_tx(log, tiles, meta, id, ts, value, links)
    else
      out[e] = tiles_label(log, tiles, meta, id, ts, value)
    end
  else
    if kind == 'tx' then
      out[e] = log_tx(log, meta, got[2], id, ts, value, links)
    else
      out[e] = log_label(log, meta, got[2], id, ts, value)
    end
    if out[e] == 0 and redis.call('HLEN', log) > log_fields then promote(log, tiles) end
  end
end
return out
