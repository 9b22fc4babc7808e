-- Commits a reservation after Kafka acknowledged its record.
--
-- KEYS: meta, ids, offsets, epoch of the stream's slot.
-- ARGV: token, offset, first version, event count, partition, then per
--       event: id, content hash.
--
-- Replies: OK (committed now or before, by a resolver or a rebuild),
-- NOINDEX (the index was lost; the rebuild will find the record), LOST (the
-- lease was resolved without this record: it is superseded).
local first = tonumber(ARGV[3])
local count = tonumber(ARGV[4])
if redis.call('HGET', KEYS[1], 'rt') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'v', tostring(first + count - 1), 'p', ARGV[5], 'o', ARGV[2])
  redis.call('HDEL', KEYS[1], 'rt', 'rv', 'rn', 'rp', 'rd')
  for i = 1, count do
    redis.call('HSET', KEYS[2], ARGV[4 + 2 * i], tostring(first + i - 1) .. ':' .. ARGV[5 + 2 * i])
  end
  redis.call('ZADD', KEYS[3], first, ARGV[2])
  return 'OK'
end
if redis.call('HGET', KEYS[2], ARGV[6]) == ARGV[3] .. ':' .. ARGV[7] then
  return 'OK'
end
if redis.call('EXISTS', KEYS[4]) == 0 then
  return 'NOINDEX'
end
return 'LOST'
