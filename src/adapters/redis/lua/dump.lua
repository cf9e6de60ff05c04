-- Every value of one entity (layout in apply.lua), for reads of every record: KEYS: its log, then its tiles.
-- Returns { <values of the log>, <values of the tiles> }, one snapshot.
return { redis.call('HVALS', KEYS[1]), redis.call('HVALS', KEYS[2]) }
