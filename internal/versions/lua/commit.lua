-- Commits a reservation after Kafka acknowledged its record.
--
-- KEYS: meta, ids, offsets, epoch and slot hash of the stream's slot.
-- ARGV: token, offset, first version, event count, partition, stream
--       name, then per event: id, content hash.
--
-- Replies: OK (committed now or before, by a resolver or a rebuild),
-- NOINDEX (the index was lost; the rebuild will find the record),
-- LOSTSTREAM (the stream lost keys; its repair will find the record), LOST
-- (the lease was resolved without this record and the stream moved on:
-- the record is superseded).
local first = tonumber(ARGV[3])
local count = tonumber(ARGV[4])
local m = redis.call('HMGET', KEYS[1], 'v', 'rt', 'rr')

local function apply()
  redis.call('HSET', KEYS[1], 'v', tostring(first + count - 1), 'p', ARGV[5], 'o', ARGV[2])
  redis.call('HDEL', KEYS[1], 'rt', 'rv', 'rn', 'rp', 'rd')
  for i = 1, count do
    redis.call('HSET', KEYS[2], ARGV[5 + 2 * i], tostring(first + i - 1) .. ':' .. ARGV[6 + 2 * i])
  end
  redis.call('ZADD', KEYS[3], first, ARGV[2])
  if first == 1 then
    redis.call('HSET', KEYS[5], 's' .. ARGV[6], ARGV[5])
  end
  return 'OK'
end

if m[2] == ARGV[1] then
  return apply()
end
if redis.call('HGET', KEYS[2], ARGV[7]) == ARGV[3] .. ':' .. ARGV[8] then
  return 'OK'
end
if redis.call('EXISTS', KEYS[4]) == 0 then
  return 'NOINDEX'
end

-- The reservation is gone. Either the stream lost its keys (see
-- reserve.lua), or a resolver released the lease before this record
-- landed.
local version = tonumber(m[1]) or 0
if m[3] then
  return 'LOSTSTREAM'
end
if m[1] then
  if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('EXISTS', KEYS[3]) == 0 then
    return 'LOSTSTREAM'
  end
elseif first > 1 or redis.call('HEXISTS', KEYS[5], 's' .. ARGV[6]) == 1
    or redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then
  return 'LOSTSTREAM'
end
-- Released, and nothing took the record's versions since: the record
-- continues the stream in the topic, as a rebuild would find, so it counts.
if not m[2] and version == first - 1 then
  return apply()
end
return 'LOST'
