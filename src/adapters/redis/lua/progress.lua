-- Records one worker's progress in the hash of all workers' progress, drops the records of workers that have
-- not written for `ttl` (they died without removing theirs), and pushes the hash's expiry back: when every
-- worker is gone, the hash goes too.
--
-- KEYS[1]: the hash. ARGV: 1 member, 2 at (ms), 3 progressAt (ms), 4 lag, 5 ttl (ms).
-- Each field is a member; its value "<at> <progressAt> <lag>".
local at = tonumber(ARGV[2])
local oldest = at - tonumber(ARGV[5])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local t = tonumber(string.match(all[i + 1], '^(%S+)'))
  if t == nil or t < oldest then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
