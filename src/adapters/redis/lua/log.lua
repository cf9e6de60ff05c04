-- A scoring read of an entity kept as a log (layout in apply.lua): its values as one string, one per line (no
-- value holds a newline), so the client takes one bulk reply instead of one per value; "@" alone when the
-- entity is kept as tiles, to be read with read.lua.
local meta = redis.call('HGET', KEYS[1], '')
if meta and string.byte(meta, 1) == 64 then return '@' end
return table.concat(redis.call('HVALS', KEYS[1]), '\n')
