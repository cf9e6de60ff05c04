-- KEYS: as apply_tx.lua. ARGV: 1 tx id, 2 t (ms), 3 fraud (0|1), 4 horizon ms, 5 ttl ms
-- Returns 0 applied, 1 duplicate (same verdict already stored), 2 late.
-- A label may arrive before its transaction; it waits in the label hash and is joined on read.
local t = tonumber(ARGV[2])
local newest = tonumber(redis.call('HGET', KEYS[2], '~newest'))
if newest and t <= newest - tonumber(ARGV[4]) then return 2 end
local prev = redis.call('HGET', KEYS[3], ARGV[1])
if prev and string.sub(prev, -1) == ARGV[3] then return 1 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return 0
