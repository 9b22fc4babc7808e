-- Merges records read from the topic into a stream's index during a
-- rebuild or a repair. Merging only raises a stream's version, so
-- concurrent rebuilds, or a rebuild racing live commits, never move a
-- stream backwards.
--
-- KEYS: meta, ids, offsets, slot hash of the stream's slot.
-- ARGV: last version, partition, last offset, record count, stream name,
--       then per record: first version, offset; then per event: id,
--       "version:content hash".
local v = tonumber(redis.call('HGET', KEYS[1], 'v')) or 0
if tonumber(ARGV[1]) > v then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'p', ARGV[2], 'o', ARGV[3])
end
local records = tonumber(ARGV[4])
for i = 1, records do
  redis.call('ZADD', KEYS[3], ARGV[4 + 2 * i], ARGV[5 + 2 * i])
end
for i = 6 + 2 * records, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[4], 's' .. ARGV[5], ARGV[2])
return 'OK'
