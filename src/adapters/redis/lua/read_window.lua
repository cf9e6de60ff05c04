-- KEYS: as apply_tx.lua. ARGV: 1 from (exclusive, ms), 2 to (inclusive, ms)
-- Returns a flat list: id, t, "seq|amount", fraud (0|1) for each transaction in (from, to].
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], ARGV[2], 'WITHSCORES')
local n = #rows / 2
if n == 0 then return {} end
local ids = {}
for i = 1, n do ids[i] = rows[2 * i - 1] end
-- unpack() is bounded by Lua's stack, so fetch in slices.
local details, labels = {}, {}
for i = 1, n, 1000 do
  local slice = { unpack(ids, i, math.min(i + 999, n)) }
  local d = redis.call('HMGET', KEYS[2], unpack(slice))
  local l = redis.call('HMGET', KEYS[3], unpack(slice))
  for j = 1, #slice do
    details[i + j - 1] = d[j]
    labels[i + j - 1] = l[j]
  end
end
local out = {}
for i = 1, n do
  local l = labels[i]
  out[#out + 1] = ids[i]
  out[#out + 1] = rows[2 * i]
  out[#out + 1] = details[i] or '0|0'
  out[#out + 1] = (l and string.sub(l, -1) == '1') and 1 or 0
end
return out
