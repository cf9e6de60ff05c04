-- The scoring reads of entities kept as logs (layout in apply.lua), one per key of KEYS: each its values as one
-- string, one per line (no value holds a newline), so the client takes one bulk reply per entity instead of one
-- per value; "@" alone for an entity kept as tiles, to be read with read.lua. The keys of a turn's requests
-- share a call on a single node (one per key on a Cluster).
local out = {}
for k = 1, #KEYS do
  local meta = redis.call('HGET', KEYS[k], '')
  if meta and string.byte(meta, 1) == 64 then
    out[k] = '@'
  else
    out[k] = table.concat(redis.call('HVALS', KEYS[k]), '\n')
  end
end
return out
