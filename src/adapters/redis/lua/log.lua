-- The scoring reads of entities kept as logs (layout in apply.lua), one per key of KEYS: each its values as one
-- string, one per line (no value holds a newline), so the client takes one bulk reply per entity instead of one
-- per value; "@" alone for an entity kept as tiles, to be read with read.lua. The keys of a turn's requests
-- share a call on a single node (one per key on a Cluster).
-- A key that cannot be read (not a hash) answers its own error, not the whole call's.
local out = {}
for k = 1, #KEYS do
  local meta = redis.pcall('HGET', KEYS[k], '')
  if type(meta) == 'table' and meta.err then
    out[k] = meta
  elseif meta and string.byte(meta, 1) == 64 then
    out[k] = '@'
  else
    local values = redis.pcall('HVALS', KEYS[k])
    if values.err then out[k] = values else out[k] = table.concat(values, '\n') end
  end
end
return out
